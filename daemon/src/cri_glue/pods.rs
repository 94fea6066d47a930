//! CRI pod sandboxes in berthd: each is a record on disk (`<data-root>/cri/pods/<id>.json`,
//! written atomically) and, while ready, its namespaces pinned under
//! `<exec-root>/cri/pods/<id>/` ([`super::pod_ns`]) and, unless its containers' PID
//! namespaces are their own or the host's, the init of its PID namespace
//! ([`super::pod_init`]); no image. Its containers are ordinary berth containers whose record
//! names the pod (`ContainerRecord::pod`) and which join its namespaces at start; its network
//! comes from CNI ([`super::network`]: ADD at run, DEL at stop, what DEL needs kept in the
//! record). Stop and remove are idempotent, as kubelet expects. What a crash before the record
//! was written left is undone when the store is opened ([`super::pod_orphans`]).

use super::network::{self, PodNetwork};
use super::pod_cgroup;
use super::pod_init;
use super::pod_ns::{self, Own};
use super::pod_orphans::discard;
use super::{blocking, cri_error, Engine};
use crate::model::container::PodNamespaces;
use crate::state::Ctx;
use berth_cri::backend::{PidMode, PodBackend, PodInfo, PodSpec};
use berth_cri::{CriError, CriResult};
use berth_runtime::cgroups::Hierarchy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// A pod sandbox as stored: what it was asked to be (the hostname filled in) and its state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodRecord {
    pub id: String,
    #[serde(flatten)]
    pub spec: PodSpec,
    pub created_at: i64,
    pub ready: bool,
    /// The host PID of the init of its PID namespace (0: it has none).
    pub init_pid: i32,
    /// The cgroup its init lives in, `<parent>/<id>` ([`pod_cgroup`]; empty: none).
    pub cgroup: String,
    /// Its CNI attachment, until DEL undid it.
    pub network: Option<PodNetwork>,
}

impl PodRecord {
    /// As the CRI shows it, its containers on `runtime`; `ready` only while its init (if it
    /// has one) lives.
    fn info(&self, run_dir: &std::path::Path, runtime: &str) -> PodInfo {
        PodInfo {
            pid: self.init_pid,
            runtime: runtime.to_string(),
            cni_result: self.network.as_ref().and_then(|n| n.result.clone()),
            id: self.id.clone(),
            spec: self.spec.clone(),
            ready: self.ready && (!self.has_init() || pod_init::alive(run_dir, self.init_pid)),
            created_at: self.created_at,
            ip: self.ips().first().cloned().unwrap_or_default(),
            additional_ips: self.ips().iter().skip(1).cloned().collect(),
        }
    }

    /// Its addresses (none: loopback only, or the host's network).
    fn ips(&self) -> &[String] {
        self.network
            .as_ref()
            .map(|n| n.ips.as_slice())
            .unwrap_or(&[])
    }

    /// What its namespaces are: pinned files, or the host's.
    pub fn own(&self) -> Own {
        Own {
            net: !self.spec.host_network,
            ipc: !self.spec.host_ipc,
            uts: !self.spec.host_network,
        }
    }

    /// Whether it has a PID namespace of its own, with an init.
    pub fn has_init(&self) -> bool {
        self.spec.pid == PidMode::Pod
    }

    /// The PID namespace of a container of the pod that asks for the pod's (see
    /// `PodNamespaces::pid`): the pinned one of its init, the host's, or (the pod's
    /// containers have their own) one of its own.
    pub fn pid_ns(&self, run_dir: &std::path::Path) -> Option<String> {
        match self.spec.pid {
            PidMode::Pod => Some(pod_ns::path(run_dir, pod_init::KIND).display().to_string()),
            PidMode::Node => Some("host".into()),
            PidMode::Container | PidMode::Target(_) => None,
        }
    }

    /// The namespaces its containers join.
    pub fn namespaces(&self, run_dir: &std::path::Path) -> PodNamespaces {
        let own = self.own();
        let p =
            |yes: bool, kind: &str| yes.then(|| pod_ns::path(run_dir, kind).display().to_string());
        PodNamespaces {
            id: self.id.clone(),
            net: p(own.net, "net"),
            ipc: p(own.ipc, "ipc"),
            uts: p(own.uts, "uts"),
            pid: self.pid_ns(run_dir),
            log_path: None,
        }
    }
}

/// The pod records, in memory and on disk.
pub struct Pods {
    dir: PathBuf,
    run: PathBuf,
    map: Mutex<BTreeMap<String, PodRecord>>,
}

impl Pods {
    /// Opens the store (records under `<data-root>/cri/pods`, namespaces under
    /// `<exec-root>/cri/pods`); a pod whose namespaces are no longer pinned (a reboot) is not
    /// ready.
    pub fn open(ctx: &Ctx) -> std::io::Result<Pods> {
        let dir = ctx.config.data_root.join("cri").join("pods");
        crate::modes::private_dir_all(&dir)?;
        berth_core::atomic::clean_temps(&dir);
        let run = ctx.config.exec_root.join("cri").join("pods");
        let mut map = BTreeMap::new();
        // Every record's ID, readable or not: only a pod with none is an orphan.
        let mut known = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            if let Some(id) = e.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                known.insert(id.to_string());
            }
            let Ok(bytes) = std::fs::read(e.path()) else {
                continue;
            };
            let Ok(mut r) = serde_json::from_slice::<PodRecord>(&bytes) else {
                tracing::warn!("ignoring unreadable pod record {}", e.path().display());
                continue;
            };
            let own = r.own();
            let rd = run.join(&r.id);
            let held = ["net", "ipc", "uts"]
                .iter()
                .filter(|k| match **k {
                    "net" => own.net,
                    "ipc" => own.ipc,
                    _ => own.uts,
                })
                .all(|k| pod_ns::pinned(&rd, k));
            let init = !r.has_init() || pod_init::alive(&rd, r.init_pid);
            r.ready = r.ready && held && init;
            map.insert(r.id.clone(), r);
        }
        super::pod_orphans::sweep(&run, &known);
        Ok(Pods {
            dir,
            run,
            map: Mutex::new(map),
        })
    }

    fn lock(&self) -> CriResult<std::sync::MutexGuard<'_, BTreeMap<String, PodRecord>>> {
        self.map
            .lock()
            .map_err(|_| CriError::Internal("pod store lock poisoned".into()))
    }

    /// The run-time folder of pod `id`.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.run.join(id)
    }

    fn save(&self, r: &PodRecord) -> CriResult<()> {
        berth_core::atomic::write_json_atomic(&self.dir.join(format!("{}.json", r.id)), r)
            .map_err(CriError::internal)
    }

    /// The pod an ID or a unique ID prefix names.
    pub fn find(&self, key: &str) -> CriResult<Option<PodRecord>> {
        if key.is_empty() {
            return Ok(None);
        }
        let map = self.lock()?;
        if let Some(r) = map.get(key) {
            return Ok(Some(r.clone()));
        }
        let mut hits = map.values().filter(|r| r.id.starts_with(key));
        match (hits.next(), hits.next()) {
            (Some(r), None) => Ok(Some(r.clone())),
            (None, _) => Ok(None),
            _ => Err(CriError::InvalidArgument(format!(
                "pod sandbox ID prefix {key} is ambiguous"
            ))),
        }
    }
}

fn random_id() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl Engine {
    /// The berth containers of pod `id`.
    pub(super) fn pod_containers(
        &self,
        id: &str,
    ) -> Vec<std::sync::Arc<crate::containers::Container>> {
        self.ctx
            .containers
            .all()
            .into_iter()
            .filter(|c| c.view(|r| r.pod.as_ref().is_some_and(|p| p.id == id)))
            .collect()
    }
}

impl Engine {
    /// Attaches a new pod (its namespaces pinned) to the node's CNI network: the record,
    /// knowing what DEL will need, is written before ADD runs, so a crash during ADD leaves a
    /// not-ready pod whose stop undoes it. No configuration: loopback only (kubelet does not
    /// send such pods while `NetworkReady` is false).
    async fn join_network(&self, r: &mut PodRecord) -> CriResult<()> {
        if r.spec.host_network {
            return Ok(());
        }
        let cfg = self.ctx.config.cri.clone();
        let list = match network::load(&cfg) {
            Ok(Some(list)) => list,
            Ok(None) => {
                tracing::debug!("pod {}: no CNI configuration, loopback only", r.id);
                return Ok(());
            }
            Err(e) => {
                return Err(CriError::Internal(format!(
                    "failed to load the CNI configuration: {e}"
                )))
            }
        };
        let mut net = network::plan(r, list);
        r.network = Some(net.clone());
        self.pods.save(r)?;
        let (id, netns) = (r.id.clone(), pod_ns::path(&self.pods.run_dir(&r.id), "net"));
        let net = blocking(move || {
            network::attach(&cfg, &id, netns, &mut net)
                .map(|()| net)
                .map_err(|e| CriError::Internal(format!("failed to set up the pod's network: {e}")))
        })
        .await?;
        r.network = Some(net);
        Ok(())
    }
}

impl PodBackend for Engine {
    async fn run_pod(&self, spec: PodSpec) -> CriResult<String> {
        let mut spec = spec;
        // Refused here rather than at each container's create.
        crate::containers::cgroup_parent::check(&spec.cgroup_parent)
            .map_err(|e| CriError::InvalidArgument(e.to_string()))?;
        let id = random_id();
        // No hostname: the node's, as containerd does (kubelet always sends one).
        if spec.hostname.is_empty() {
            spec.hostname = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        let cgroup = match spec.pid {
            PidMode::Pod => pod_cgroup::path(&spec.cgroup_parent, &id)
                .map_err(|e| CriError::InvalidArgument(e.to_string()))?,
            _ => String::new(),
        };
        let mut r = PodRecord {
            id,
            spec,
            created_at: berth_cri::now_nanos(),
            ready: false,
            init_pid: 0,
            cgroup,
            network: None,
        };
        {
            let map = self.pods.lock()?;
            let same = |o: &&PodRecord| {
                (&o.spec.name, &o.spec.namespace, &o.spec.uid, o.spec.attempt)
                    == (&r.spec.name, &r.spec.namespace, &r.spec.uid, r.spec.attempt)
            };
            if let Some(o) = map.values().find(same) {
                return Err(CriError::FailedPrecondition(format!(
                    "the pod sandbox name {}_{}_{}_{} is reserved for {}",
                    r.spec.name, r.spec.namespace, r.spec.uid, r.spec.attempt, o.id
                )));
            }
        }
        if r.spec.hostname.len() > 64 {
            return Err(CriError::InvalidArgument(format!(
                "hostname {:?} is longer than 64 characters",
                r.spec.hostname
            )));
        }
        let dir = self.pods.run_dir(&r.id);
        let (own, host, init, id) = (r.own(), r.spec.hostname.clone(), r.has_init(), r.id.clone());
        let (d2, cg) = (dir.clone(), r.cgroup.clone());
        r.init_pid = blocking(move || {
            pod_ns::pin(&d2, own, &host).map_err(|e| {
                discard(&d2, "");
                CriError::internal(e)
            })?;
            if !init {
                return Ok(0);
            }
            let pid = pod_init::spawn(&d2, &id).map_err(|e| {
                discard(&d2, "");
                CriError::internal(e)
            })?;
            // Its cgroup (noted first, for the start-up sweep should berthd die before the
            // record is written), before anything of the pod runs in its namespace.
            let placed = pod_cgroup::note(&d2, &cg)
                .and_then(|()| pod_cgroup::place(Hierarchy::detect(), &cg, pid));
            if let Err(e) = placed {
                pod_init::end(&d2, pid);
                discard(&d2, &cg);
                return Err(CriError::Internal(format!("placing the pod init: {e}")));
            }
            Ok(pid)
        })
        .await?;
        // The network (a failed ADD undoes itself), then the record as ready; on a failure
        // the init, the pins, the cgroup and the folder go, and the record the network step
        // may have written.
        let made = match self.join_network(&mut r).await {
            Ok(()) => {
                r.ready = true;
                self.pods.save(&r)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = made {
            let (d2, pid, cg) = (dir.clone(), r.init_pid, r.cgroup.clone());
            let _ = blocking(move || {
                pod_init::end(&d2, pid);
                discard(&d2, &cg);
                Ok(())
            })
            .await;
            let _ = std::fs::remove_file(self.pods.dir.join(format!("{}.json", r.id)));
            return Err(e);
        }
        self.pods.lock()?.insert(r.id.clone(), r.clone());
        Ok(r.id)
    }

    async fn stop_pod(&self, id: &str) -> CriResult<()> {
        let Some(mut r) = self.pods.find(id)? else {
            return Ok(());
        };
        for c in self.pod_containers(&r.id) {
            if c.running() {
                match crate::containers::stop::stop(&self.ctx, &c, Some(0), None).await {
                    Ok(()) | Err(crate::error::ServiceError::NotModified) => {}
                    Err(e) => return Err(cri_error(e)),
                }
            }
        }
        let (dir, pid, cg) = (self.pods.run_dir(&r.id), r.init_pid, r.cgroup.clone());
        // DEL first, while the namespace is still there (a failure is answered: kubelet
        // retries the stop).
        if let Some(net) = r.network.clone() {
            let (cfg, id) = (self.ctx.config.cri.clone(), r.id.clone());
            let netns = pod_ns::pinned(&dir, "net").then(|| pod_ns::path(&dir, "net"));
            blocking(move || {
                network::detach(&cfg, &id, netns, &net).map_err(|e| {
                    CriError::Internal(format!("failed to tear down the pod's network: {e}"))
                })
            })
            .await?;
        }
        blocking(move || {
            // Ending the init ends whatever is left in its PID namespace; then its cgroup
            // (a failure is answered: kubelet retries the stop).
            pod_init::end(&dir, pid);
            pod_ns::release(&dir);
            pod_cgroup::remove(Hierarchy::detect(), &cg)
                .map_err(|e| CriError::Internal(format!("removing the pod's cgroup: {e}")))
        })
        .await?;
        if r.ready || r.network.is_some() {
            r.ready = false;
            r.network = None;
            self.pods.save(&r)?;
            self.pods.lock()?.insert(r.id.clone(), r);
        }
        Ok(())
    }

    async fn remove_pod(&self, id: &str) -> CriResult<()> {
        let Some(r) = self.pods.find(id)? else {
            return Ok(());
        };
        self.stop_pod(&r.id).await?;
        for c in self.pod_containers(&r.id) {
            match crate::containers::remove::remove(&self.ctx, &c, true, true).await {
                Ok(()) | Err(crate::error::ServiceError::NotFound(_)) => {}
                Err(e) => return Err(cri_error(e)),
            }
        }
        let _ = std::fs::remove_dir_all(self.pods.run_dir(&r.id));
        match std::fs::remove_file(self.pods.dir.join(format!("{}.json", r.id))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CriError::internal(e))
            }
            _ => {}
        }
        self.pods.lock()?.remove(&r.id);
        Ok(())
    }

    async fn pod(&self, id: &str) -> CriResult<Option<PodInfo>> {
        let rt = &self.ctx.config.default_runtime;
        Ok(self
            .pods
            .find(id)?
            .map(|r| r.info(&self.pods.run_dir(&r.id), rt)))
    }

    async fn list_pods(&self) -> CriResult<Vec<PodInfo>> {
        let pods: Vec<PodRecord> = self.pods.lock()?.values().cloned().collect();
        Ok(pods
            .iter()
            .map(|r| r.info(&self.pods.run_dir(&r.id), &self.ctx.config.default_runtime))
            .collect())
    }
}
