//! CRI containers in berthd: each is an ordinary berth container (created, started, stopped,
//! removed and exec'd through the daemon's container services, so `docker ps` shows it as
//! `k8s_<name>_<pod>_<namespace>_<uid>_<attempt>`, as dockershim named them) whose record
//! names its pod, whose namespaces it joins at start. The CRI's metadata it has no Docker
//! field for (its name, attempt, annotations, log path) is kept in labels under
//! `io.berth.cri.`, hidden again from the CRI's answers.

use super::{blocking, cri_error, Engine};
use crate::containers::Container;
use crate::error::ServiceError;
use berth_api::types::container::ExecConfig;
use berth_cri::backend::{
    BindMount, ContainerBackend, ContainerInfo, ContainerSpec, ContainerState, ExecOutput, PidMode,
    SeccompProfile,
};
use berth_cri::{CriError, CriResult};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

const NAME: &str = "io.berth.cri.name";
const ATTEMPT: &str = "io.berth.cri.attempt";
const LOG_PATH: &str = "io.berth.cri.log-path";
const IMAGE: &str = "io.berth.cri.image";
const ANNOTATION: &str = "io.berth.cri.annotation.";
/// The most an `ExecSync` keeps of each stream (the CRI's cap; the rest is read and dropped).
const EXEC_CAP: u64 = 16 << 20;

/// How long an `ExecSync` past its timeout waits for its killed command to be reaped.
const REAP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The largest seccomp profile file read from the node.
const MAX_PROFILE: u64 = 4 << 20;

/// The `--security-opt seccomp=…` a CRI profile is (none: berth's default profile); a
/// localhost profile's file is read here, as the docker CLI reads `seccomp=FILE`.
fn seccomp_opt(p: &SeccompProfile) -> CriResult<Option<String>> {
    match p {
        SeccompProfile::RuntimeDefault => Ok(None),
        SeccompProfile::Unconfined => Ok(Some("seccomp=unconfined".into())),
        SeccompProfile::Localhost(path) => {
            let f = std::fs::File::open(path)
                .map_err(|e| CriError::InvalidArgument(format!("seccomp profile {path}: {e}")))?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_PROFILE), &mut text)
                .map_err(|e| CriError::InvalidArgument(format!("seccomp profile {path}: {e}")))?;
            Ok(Some(format!("seccomp={text}")))
        }
    }
}

/// The Docker create request for `spec` in the pod `pod`.
fn create_body(spec: &ContainerSpec, pod: &super::pods::PodRecord) -> CriResult<Value> {
    let mut labels: BTreeMap<String, String> = spec.labels.clone();
    labels.insert(NAME.into(), spec.name.clone());
    labels.insert(ATTEMPT.into(), spec.attempt.to_string());
    labels.insert(LOG_PATH.into(), spec.log_path.clone());
    labels.insert(IMAGE.into(), spec.image.clone());
    for (k, v) in &spec.annotations {
        labels.insert(format!("{ANNOTATION}{k}"), v.clone());
    }
    let binds: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| {
            let mode = if m.readonly { "ro" } else { "rw" };
            format!(
                "{}:{}:{mode},{}",
                m.host_path, m.container_path, m.propagation
            )
        })
        .collect();
    let mut sec = Vec::new();
    if spec.no_new_privs {
        sec.push("no-new-privileges".to_string());
    }
    if !spec.privileged {
        sec.extend(seccomp_opt(&spec.seccomp)?);
    }
    let mut body = json!({
        "Image": spec.image,
        "Env": spec.env,
        "WorkingDir": spec.working_dir,
        "Labels": labels,
        "Tty": spec.tty,
        "OpenStdin": spec.stdin,
        "StdinOnce": spec.stdin_once,
        "User": spec.user,
        "HostConfig": {
            "NetworkMode": if pod.spec.host_network { "host" } else { "none" },
            "Binds": binds,
            "Privileged": spec.privileged,
            "ReadonlyRootfs": spec.readonly_rootfs,
            "Devices": spec.devices.iter().map(|d| json!({
                "PathOnHost": d.host_path,
                "PathInContainer": d.container_path,
                "CgroupPermissions": d.permissions,
            })).collect::<Vec<_>>(),
            "CapAdd": spec.cap_add,
            "CapDrop": spec.cap_drop,
            "GroupAdd": spec.supplemental_groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
            "SecurityOpt": sec,
            "Dns": pod.spec.dns.servers,
            "DnsSearch": pod.spec.dns.searches,
            "DnsOptions": pod.spec.dns.options,
            // The pod's sysctls, set by each container's init in the pod's namespaces.
            "Sysctls": pod.spec.sysctls,
            // The pod's cgroup parent (kubelet's pod cgroup), made if missing, never removed.
            "CgroupParent": pod.spec.cgroup_parent,
        },
    });
    super::stats::create_resources(&spec.resources, &mut body["HostConfig"])?;
    if !pod.spec.host_network {
        body["Hostname"] = json!(pod.spec.hostname);
    }
    if let Some(p) = &spec.masked_paths {
        body["HostConfig"]["MaskedPaths"] = json!(p);
    }
    if let Some(p) = &spec.readonly_paths {
        body["HostConfig"]["ReadonlyPaths"] = json!(p);
    }
    if !spec.command.is_empty() {
        body["Entrypoint"] = json!(spec.command);
        body["Cmd"] = json!(spec.args);
    } else if !spec.args.is_empty() {
        body["Cmd"] = json!(spec.args);
    }
    Ok(body)
}

/// A record's RFC 3339 time as ns since the epoch (0 for Docker's zero time).
fn nanos(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .filter(|n| *n > 0)
        .unwrap_or(0)
}

/// A pod container in the CRI's terms (None: not a pod's).
fn info(c: &Container) -> Option<ContainerInfo> {
    c.view(|r| {
        let pod = r.pod.as_ref()?;
        let labels = r.config.labels.clone().unwrap_or_default();
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let s = &r.state;
        let state = match s.status.as_str() {
            "created" => ContainerState::Created,
            "running" | "paused" | "restarting" => ContainerState::Running,
            "exited" | "dead" => ContainerState::Exited,
            _ => ContainerState::Unknown,
        };
        let reason = match state {
            ContainerState::Exited if s.oom_killed => "OOMKilled",
            ContainerState::Exited if s.exit_code == 0 => "Completed",
            ContainerState::Exited => "Error",
            _ => "",
        };
        Some(ContainerInfo {
            id: r.id.clone(),
            spec: ContainerSpec {
                pod_id: pod.id.clone(),
                name: get(NAME),
                attempt: get(ATTEMPT).parse().unwrap_or(0),
                image: get(IMAGE),
                labels: labels
                    .iter()
                    .filter(|(k, _)| !k.starts_with("io.berth.cri."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                annotations: labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(ANNOTATION)?.to_string(), v.clone())))
                    .collect(),
                log_path: get(LOG_PATH),
                mounts: r
                    .mounts
                    .iter()
                    .filter(|m| m.kind == "bind")
                    .map(|m| BindMount {
                        container_path: m.destination.clone(),
                        host_path: m.source.clone(),
                        readonly: !m.rw,
                        propagation: m.propagation.clone(),
                    })
                    .collect(),
                ..Default::default()
            },
            image_id: r.image.clone(),
            state,
            created_at: nanos(&r.created),
            started_at: nanos(&s.started_at),
            finished_at: nanos(&s.finished_at),
            exit_code: i32::try_from(s.exit_code).unwrap_or(-1),
            reason: reason.into(),
            message: s.error.clone(),
        })
    })
}

impl Engine {
    /// The pod container `id` names (NotFound when there is none).
    pub(super) fn pod_container(&self, id: &str) -> CriResult<Arc<Container>> {
        let c = self.ctx.containers.get(id).map_err(cri_error)?;
        if c.view(|r| r.pod.is_none()) {
            return Err(CriError::NotFound(format!("container {id} is no pod's")));
        }
        Ok(c)
    }
}

impl Engine {
    /// Refuses to start a container that joins its pod's PID namespace once the pod's init
    /// is gone (the namespace is then dead: nothing can be started in it).
    fn check_pod_init(&self, c: &Container) -> CriResult<()> {
        let Some((pod_id, pid)) = c.view(|r| r.pod.as_ref().map(|p| (p.id.clone(), p.pid.clone())))
        else {
            return Ok(());
        };
        let Some(pod) = self.pods.find(&pod_id)? else {
            return Ok(());
        };
        let dir = self.pods.run_dir(&pod.id);
        let joins = pid.is_some() && pid == pod.pid_ns(&dir) && pod.has_init();
        if joins && !super::pod_init::alive(&dir, pod.init_pid) {
            return Err(CriError::FailedPrecondition(format!(
                "pod sandbox {} is not ready: the init of its PID namespace has exited",
                pod.id
            )));
        }
        Ok(())
    }
}

/// Reads `r` to its end, keeping at most [`EXEC_CAP`] bytes.
async fn capped(r: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(r) = r {
        let mut r = r;
        let _ = (&mut r).take(EXEC_CAP).read_to_end(&mut out).await;
        let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
    }
    out
}

impl ContainerBackend for Engine {
    async fn create_container(&self, spec: ContainerSpec) -> CriResult<String> {
        let pod = self
            .pods
            .find(&spec.pod_id)?
            .ok_or_else(|| CriError::NotFound(format!("pod sandbox {} not found", spec.pod_id)))?;
        if !pod.ready {
            return Err(CriError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let name = format!(
            "k8s_{}_{}_{}_{}_{}",
            spec.name, pod.spec.name, pod.spec.namespace, pod.spec.uid, spec.attempt
        );
        // The CRI log file's folder must exist before the container is prepared (at create,
        // `containers::prestart`), when its monitor opens the log.
        if let Some(dir) = std::path::Path::new(&spec.log_path).parent() {
            let dir = dir.to_path_buf();
            blocking(move || std::fs::create_dir_all(&dir).map_err(CriError::internal)).await?;
        }
        let mut ns = pod.namespaces(&self.pods.run_dir(&pod.id));
        ns.log_path = Some(spec.log_path.clone()).filter(|p| !p.is_empty());
        ns.pid = match &spec.pid {
            PidMode::Pod => ns.pid,
            PidMode::Container => None,
            PidMode::Node => Some("host".into()),
            PidMode::Target(t) => {
                let other = self.pod_container(t)?;
                if other.view(|r| r.pod.as_ref().map(|p| p.id != pod.id)) != Some(false) {
                    return Err(CriError::InvalidArgument(format!(
                        "the PID namespace target {t} is not a container of pod {}",
                        pod.id
                    )));
                }
                Some(format!("container:{}", other.id))
            }
        };
        let body = create_body(&spec, &pod)?;
        crate::containers::create::create_in(&self.ctx, Some(&name), body, Some(ns))
            .await
            .map_err(cri_error)
    }

    async fn start_container(&self, id: &str) -> CriResult<()> {
        let c = self.pod_container(id)?;
        self.check_pod_init(&c)?;
        crate::containers::start::start(&self.ctx, &c)
            .await
            .map_err(cri_error)
    }

    async fn stop_container(&self, id: &str, timeout: i64) -> CriResult<()> {
        let c = match self.pod_container(id) {
            Err(CriError::NotFound(_)) => return Ok(()),
            other => other?,
        };
        match crate::containers::stop::stop(&self.ctx, &c, Some(timeout.max(0)), None).await {
            Ok(()) | Err(ServiceError::NotModified) => Ok(()),
            Err(e) => Err(cri_error(e)),
        }
    }

    async fn remove_container(&self, id: &str) -> CriResult<()> {
        let c = match self.pod_container(id) {
            Err(CriError::NotFound(_)) => return Ok(()),
            other => other?,
        };
        match crate::containers::remove::remove(&self.ctx, &c, true, true).await {
            Ok(()) | Err(ServiceError::NotFound(_)) => Ok(()),
            Err(e) => Err(cri_error(e)),
        }
    }

    async fn container(&self, id: &str) -> CriResult<Option<ContainerInfo>> {
        match self.ctx.containers.get(id) {
            Ok(c) => Ok(info(&c)),
            Err(ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(cri_error(e)),
        }
    }

    async fn list_containers(&self) -> CriResult<Vec<ContainerInfo>> {
        Ok(self
            .ctx
            .containers
            .all()
            .iter()
            .filter_map(|c| info(c))
            .collect())
    }

    async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout: i64) -> CriResult<ExecOutput> {
        let c = self.pod_container(id)?;
        let config = ExecConfig {
            cmd,
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let exec_id = crate::containers::exec::create(&self.ctx, &c, config).map_err(cri_error)?;
        let mut s = crate::containers::exec::start(&self.ctx, &exec_id, false)
            .await
            .map_err(cri_error)?;
        let (out, err) = (s.child.stdout.take(), s.child.stderr.take());
        let run = async {
            let (stdout, stderr) = tokio::join!(capped(out), capped(err));
            let status = s.child.wait().await;
            (stdout, stderr, status)
        };
        let limit = u64::try_from(timeout).ok().filter(|t| *t > 0);
        let done = match limit {
            Some(t) => tokio::time::timeout(std::time::Duration::from_secs(t), run)
                .await
                .ok(),
            None => Some(run.await),
        };
        let Some((stdout, stderr, status)) = done else {
            // The command in the container is killed and its helper, its parent, reaps it and
            // exits (a helper killed first would leave it, a zombie, to the host's init,
            // still seen in the container). The helper is killed only if it does not exit;
            // its command dies with it then.
            crate::containers::exec::signal_command(s.child.id(), libc::SIGKILL);
            if tokio::time::timeout(REAP_PATIENCE, s.child.wait())
                .await
                .is_err()
            {
                let _ = s.child.kill().await;
            }
            crate::containers::exec::finish(&self.ctx, &c, &exec_id, -1);
            return Err(CriError::DeadlineExceeded(format!(
                "command timed out after {timeout}s"
            )));
        };
        let code = status
            .ok()
            .and_then(|st| st.code())
            .map(i64::from)
            .unwrap_or(-1);
        crate::containers::exec::finish(&self.ctx, &c, &exec_id, code);
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code: i32::try_from(code).unwrap_or(-1),
        })
    }
}
