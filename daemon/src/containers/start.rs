//! Starting a container: mount its rootfs, write the bundle (OCI spec with Docker's defaults),
//! spawn its monitor (or take the one `prestart` spawned at create), join networks, wire
//! waiting attaches, then let it run.

use super::monitor_client;
use super::{timestamp, Container, ContainerRecord};
use crate::error::ServiceError;
use crate::jsonv::merge_env;
use crate::state::Ctx;
use berth_core::DriverError;
use berth_monitor_proto::{Failure, MonitorConfig, Ready, Reply};
use berth_runtime::spec::{MountSpec, NetNs, SpecOptions, Ulimit};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The strings of an optional list (none = empty).
fn strs(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn signal_number(name: &str) -> i32 {
    super::signal::signal_number(name).unwrap_or(libc::SIGTERM)
}

/// The container's stop signal.
pub fn stop_signal(c: &Container) -> i32 {
    c.view(|r| signal_number(r.config.stop_signal.as_deref().unwrap_or("SIGTERM")))
}

fn host_resolv() -> String {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.trim();
            !(l.starts_with("nameserver") && (l.contains("127.") || l.contains("::1")))
        })
        .collect();
    let mut out = lines.join("\n");
    if !out.contains("nameserver") {
        out.push_str("\nnameserver 8.8.8.8\nnameserver 8.8.4.4");
    }
    out.push('\n');
    out
}

/// The container's /etc/hosts: the defaults, `--add-host` entries, the lines of its links
/// ([`super::links::hosts_lines`]), then its own address.
pub fn hosts_text(rec: &ContainerRecord, ip: Option<&str>, links: &[String]) -> String {
    let hostname = rec.config.hostname.as_str();
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
    for h in strs(&rec.host_config.extra_hosts) {
        if let Some((name, addr)) = h.split_once(':') {
            hosts.push_str(&format!("{addr}\t{name}\n"));
        }
    }
    for l in links {
        hosts.push_str(l);
        hosts.push('\n');
    }
    if let Some(ip) = ip {
        hosts.push_str(&format!("{ip}\t{hostname}\n"));
    }
    hosts
}

/// Writes /etc/hosts, /etc/hostname and /etc/resolv.conf for the container.
pub fn write_net_files(
    dir: &Path,
    rec: &ContainerRecord,
    ip: Option<&str>,
    links: &[String],
) -> std::io::Result<()> {
    let hostname = rec.config.hostname.as_str();
    std::fs::write(dir.join("hosts"), hosts_text(rec, ip, links))?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    let dns = strs(&rec.host_config.dns);
    let resolv = if let Some(r) = crate::network::endpoints::driver_resolv(rec) {
        r
    } else if crate::network::dns::embedded(rec) {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        crate::network::dns::resolv_conf(&host)
    } else if dns.is_empty() {
        host_resolv()
    } else {
        let mut r: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
        // `--dns-search`, `--dns-option` (and a CRI pod's DNS config) with the servers.
        for (key, v) in [
            ("search", strs(&rec.host_config.dns_search)),
            ("options", strs(&rec.host_config.dns_options)),
        ] {
            if !v.is_empty() {
                r.push_str(&format!("{key} {}\n", v.join(" ")));
            }
        }
        r
    };
    std::fs::write(dir.join("resolv.conf"), resolv)
}

fn ulimits(v: &Option<Vec<berth_api::types::container::Ulimit>>) -> Vec<Ulimit> {
    v.iter()
        .flatten()
        .map(|u| Ulimit {
            name: u.name.clone(),
            soft: u64::try_from(u.soft).unwrap_or(0),
            hard: u64::try_from(u.hard).unwrap_or(0),
        })
        .collect()
}

/// Builds the spec options of a container.
fn options(
    ctx: &Ctx,
    c: &Container,
    rec: &ContainerRecord,
    rootfs: &Path,
) -> Result<SpecOptions, ServiceError> {
    let cfg = &rec.config;
    let hc = &rec.host_config;
    let dir = ctx.containers.dir(&c.id);
    let mut args = strs(&cfg.entrypoint).to_vec();
    args.extend_from_slice(strs(&cfg.cmd));
    // Link variables first: the container's own environment wins, as dockerd's.
    let mut env = merge_env(super::links::env(ctx, rec, true)?, strs(&cfg.env));
    let hostname = cfg.hostname.clone();
    env.push(format!("HOSTNAME={hostname}"));
    if cfg.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let user = berth_runtime::user::resolve(rootfs, &cfg.user, strs(&hc.group_add))
        .map_err(|e| ServiceError::bad_request(e.to_string()))?;
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            if user.home.is_empty() {
                "/"
            } else {
                &user.home
            }
        ));
    }
    let mut mounts = crate::volumes::mounts::specs(rec);
    let mode = hc.network_mode.as_str();
    if mode != "host" {
        for f in ["resolv.conf", "hosts", "hostname"] {
            mounts.push(MountSpec {
                destination: format!("/etc/{f}"),
                kind: "bind".into(),
                source: dir.join(f).display().to_string(),
                options: vec!["rbind".into()],
            });
        }
    }
    let netns = match mode {
        "host" => NetNs::Host,
        m if m.starts_with("container:") => {
            let other = ctx.containers.get(&m["container:".len()..])?;
            if !other.running() {
                return Err(ServiceError::conflict(format!(
                    "cannot join network of a non running container: {}",
                    other.id
                )));
            }
            NetNs::Path(format!("/proc/{}/ns/net", other.pid()))
        }
        _ => NetNs::New,
    };
    let pod_ns = |p: &Option<String>| p.clone().map_or(NetNs::Host, NetNs::Path);
    let (netns, ipc_ns, uts_ns) = match &rec.pod {
        Some(p) => (pod_ns(&p.net), pod_ns(&p.ipc), pod_ns(&p.uts)),
        None => (netns, NetNs::New, NetNs::New),
    };
    let pid_ns = pod_pid_ns(ctx, rec)?;
    let devices = berth_runtime::devices::from_docker(hc.extra.get("Devices"))
        .map_err(|e| ServiceError::bad_request(e.to_string()))?;
    let sysctls = sysctls(hc, &netns)?;
    let (quota, period) = super::update::cpu_quota_period(hc);
    let sec = berth_runtime::security::parse(strs(&hc.security_opt))
        .map_err(ServiceError::bad_request)?;
    Ok(SpecOptions {
        id: c.id.clone(),
        args,
        env,
        cwd: cfg.working_dir.clone(),
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        hostname,
        rootfs: rootfs.display().to_string(),
        readonly_rootfs: hc.readonly_rootfs,
        tty: cfg.tty,
        mounts,
        rootfs_propagation: crate::volumes::propagation::rootfs(rec)?,
        cap_add: strs(&hc.cap_add).to_vec(),
        cap_drop: strs(&hc.cap_drop).to_vec(),
        privileged: hc.privileged,
        no_new_privileges: sec.no_new_privileges,
        memory: hc.memory,
        memory_swap: hc.memory_swap,
        cpu_quota: quota,
        cpu_period: period,
        cpu_shares: u64::try_from(hc.cpu_shares).unwrap_or(0),
        cpuset_cpus: hc.cpuset_cpus.clone(),
        cpuset_mems: hc.cpuset_mems.clone(),
        pids_limit: hc.pids_limit.unwrap_or(0),
        ulimits: ulimits(&hc.ulimits),
        shm_size: hc.shm_size,
        netns,
        ipc_ns,
        uts_ns,
        pid_ns,
        devices,
        cgroup_path: rec.cgroup_path(),
        user: cfg.user.clone(),
        group_add: strs(&hc.group_add).to_vec(),
        // `systempaths=unconfined` clears both lists; else `MaskedPaths`/`ReadonlyPaths` as
        // given, or Docker's defaults.
        masked_paths: match sec.systempaths_unconfined {
            true => Some(Vec::new()),
            false => hc.masked_paths.clone(),
        },
        readonly_paths: match sec.systempaths_unconfined {
            true => Some(Vec::new()),
            false => hc.readonly_paths.clone(),
        },
        seccomp: sec.seccomp,
        sysctls,
        oom_score_adj: hc.oom_score_adj as i32,
        init: match hc.init.unwrap_or(ctx.config.init) {
            true => Some(init_binary(ctx)?.display().to_string()),
            false => None,
        },
        // Mounted in the template namespace only, so only for a container made there.
        shared_mounts: match from_template(ctx, rec) {
            true => (ctx.containers.mount_template.as_ref())
                .and_then(|t| t.shared_mounts())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            false => String::new(),
        },
        defer_memory_cgroup: super::defers_memory_cgroup(rec),
    })
}

/// Whether the container may be made in the template mount namespace, which holds only the
/// mounts that existed when berthd started. Not when it needs a mount made later: a CRI pod's
/// pinned namespaces (and kubelet's propagation from the host), or a host folder given with
/// `-v`/`--mount type=bind` (it may lie on, or hold, a file system mounted since: the template
/// would show what is under it); such containers start from berthd's own namespace, as all did
/// before templates. Named volumes live in the data root and are plain folders.
fn from_template(ctx: &Ctx, rec: &ContainerRecord) -> bool {
    rec.pod.is_none()
        && crate::volumes::mounts::specs(rec)
            .iter()
            .all(|m| m.kind != "bind" || Path::new(&m.source).starts_with(&ctx.config.data_root))
}

/// The PID namespace of a CRI pod's container (`PodNamespaces::pid`): its own, the host's,
/// another running container's, or the pod's pinned one. Every other container has its own.
fn pod_pid_ns(ctx: &Ctx, rec: &ContainerRecord) -> Result<NetNs, ServiceError> {
    let Some(pid) = rec.pod.as_ref().and_then(|p| p.pid.as_deref()) else {
        return Ok(NetNs::New);
    };
    if pid == "host" {
        return Ok(NetNs::Host);
    }
    let Some(target) = pid.strip_prefix("container:") else {
        return Ok(NetNs::Path(pid.to_string()));
    };
    let other = ctx.containers.get(target)?;
    if !other.running() {
        return Err(ServiceError::conflict(format!(
            "cannot join the PID namespace of a non running container: {}",
            other.id
        )));
    }
    Ok(NetNs::Path(format!("/proc/{}/ns/pid", other.pid())))
}

/// `HostConfig.Sysctls`, each allowed by runc's rules (the container always has IPC and UTS
/// namespaces of its own; a network one other than the host's unless `--network host`, or
/// `container:X` with X on the host's), or Docker's start error.
fn sysctls(
    hc: &berth_api::types::container::HostConfig,
    netns: &NetNs,
) -> Result<std::collections::BTreeMap<String, String>, ServiceError> {
    let private = berth_runtime::sysctl::Private {
        net: match netns {
            NetNs::Host => false,
            NetNs::New => true,
            // Another container's: the host's if that one runs with `--network host`.
            NetNs::Path(p) => !berth_runtime::sysctl::HostNs::current().is_host("network", p),
        },
        ipc: true,
        uts: true,
    };
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in hc.sysctls.iter().flatten() {
        berth_runtime::sysctl::check(k, private).map_err(|e| {
            ServiceError::bad_request(format!(
                "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: {e}: unknown"
            ))
        })?;
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

/// The binary `--init` binds into the container: `init-path`, else Docker's `docker-init` or
/// Debian's `tini-static` on `PATH`.
fn init_binary(ctx: &Ctx) -> Result<PathBuf, ServiceError> {
    if let Some(p) = &ctx.config.init_path {
        return Ok(p.clone());
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let dirs: Vec<&str> = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/usr/libexec/docker"])
        .collect();
    for name in ["docker-init", "tini-static"] {
        if let Some(p) = dirs
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
        {
            return Ok(p);
        }
    }
    Err(ServiceError::internal(
        "exec: \"docker-init\": executable file not found in $PATH",
    ))
}

/// The rootfs mount point of a container.
pub fn rootfs(ctx: &Ctx, id: &str) -> PathBuf {
    ctx.containers.state_dir(id).join("bundle").join("rootfs")
}

/// Mounts the container's filesystem at its rootfs path (idempotent).
pub fn mount_rootfs(ctx: &Ctx, id: &str) -> Result<PathBuf, ServiceError> {
    let root = rootfs(ctx, id);
    std::fs::create_dir_all(&root)
        .map_err(|e| ServiceError::internal(format!("creating {}: {e}", root.display())))?;
    if is_mounted(&root) {
        return Ok(root);
    }
    let mounts = ctx.storage.mounts(id)?;
    berth_core::mount::mount_all(&mounts, &root)
        .map_err(|e| ServiceError::internal(format!("mounting the container's filesystem: {e}")))?;
    Ok(root)
}

/// Whether something is mounted at `p` (asked for `p` alone: the mount table grows with
/// every running container).
pub fn is_mounted(p: &Path) -> bool {
    berth_core::mount::is_mount_point(p).unwrap_or(false)
}

/// Docker's text for a process that could not be started.
fn start_error_text(msg: &str) -> String {
    format!(
        "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: {msg}: unknown"
    )
}

/// The error of a start the monitor reported failed: a command that could not be executed
/// keeps its exit code (typed from the init on, [`DriverError::Exec`]); any other failure is
/// the caller's configuration.
fn start_error(f: Failure) -> ServiceError {
    let message = start_error_text(&f.error);
    match f.exit_code {
        Some(code) => ServiceError::Driver(DriverError::Exec { code, message }),
        None => ServiceError::bad_request(message),
    }
}

/// The exit code Docker records for a failed start: the command's (127 not found, 126 not
/// executable), else 128.
fn start_error_code(e: &ServiceError) -> i64 {
    match e {
        ServiceError::Driver(DriverError::Exec { code, .. }) => i64::from(*code),
        _ => 128,
    }
}

/// Starts container `c` (not running). Blocking work runs on the blocking pool.
pub async fn start(ctx: &Ctx, c: &Arc<Container>) -> Result<(), ServiceError> {
    let _op = super::lock::op(c).await?;
    start_held(ctx, c).await
}

/// [`start`] with `c`'s op lock already held by the caller (`start`, `restart`).
pub async fn start_held(ctx: &Ctx, c: &Arc<Container>) -> Result<(), ServiceError> {
    if c.running() {
        return Err(ServiceError::not_modified());
    }
    match start_locked(ctx, c).await {
        Ok(()) => Ok(()),
        Err(e) => {
            failed(ctx, c, &e).await;
            Err(e)
        }
    }
}

/// Records a failed start (exit code, error), cleans up, and honours AutoRemove.
async fn failed(ctx: &Ctx, c: &Arc<Container>, e: &ServiceError) {
    let left = super::exit::leave_network(ctx, c).await;
    super::exit::publish_left(ctx, c, &left);
    let _ = berth_core::mount::unmount(&rootfs(ctx, &c.id));
    let code = start_error_code(e);
    let auto = c.update(|r| {
        r.state.set_start_failed(code, &e.to_string());
        super::exit::auto_remove(r)
    });
    let _ = ctx.containers.save(c);
    c.events.send_modify(|l| {
        l.exits += 1;
        l.exit_code = code;
        l.running = false;
    });
    if auto {
        let _ = super::exit::remove_with_volumes(ctx, c, true).await;
    }
}

async fn start_locked(ctx: &Ctx, c: &Arc<Container>) -> Result<(), ServiceError> {
    // The monitor of the last run may still be removing the cgroup this start makes again,
    // and the last run's rootfs may still be flushing.
    c.monitor_gone().await;
    super::teardown::flush_detached(c).await;
    let pid = match super::prestart::take(ctx, c).await {
        Some(pid) => pid,
        None => {
            let (ctx2, c2) = (ctx.clone(), c.clone());
            tokio::task::spawn_blocking(move || spawn_monitor(&ctx2, &c2)).await??
        }
    };
    // Networking happens here, before the process runs.
    let ip = match crate::containers::exit::join_network(ctx, c, pid).await {
        Ok(ip) => ip,
        Err(e) => {
            // Nothing half set up: the created init is killed and the exit recorded.
            monitor_client::kill_all(&ctx.containers.monitor_sock(&c.id)).await;
            // An init whose command cannot run fails its set-up before it reports ready, and
            // may be gone before the join could use its namespace: that is the start's error.
            let e = match set_up_failure(ctx, c).await {
                Some(f) => start_error(f),
                None => e,
            };
            super::exit::watch(ctx.clone(), c.clone());
            return Err(e);
        }
    };
    // Written without an address with the bundle; again now only if there is one.
    if ip.is_some() {
        let dir = ctx.containers.dir(&c.id);
        let rec = c.record();
        let links = super::links::hosts_lines(ctx, &rec);
        let _ = write_net_files(&dir, &rec, ip.as_deref(), &links);
        super::links::refresh_parents(ctx, c);
    }
    // Recorded as running before the init is let go, and saved while it execs: after a crash
    // in between, `restore` finds a running record and asks its monitor (or its exit.json)
    // what became of it; a failed start below puts the status back (Docker leaves a container
    // whose process could not start `created`) and `failed` records the error.
    let before = c.update(|r| {
        let before = r.state.status.clone();
        r.state.set_running(i64::from(pid), &timestamp());
        r.manually_stopped = false;
        super::health::init(r);
        before
    });
    let undo = |c: &Container| c.update(|r| r.state.undo_running(&before));
    let (ctx2, c2) = (ctx.clone(), c.clone());
    let saved = tokio::task::spawn_blocking(move || ctx2.containers.save(&c2));
    // The attaches waiting for this start; one that comes later sees the container running
    // and wires itself (`api::containers_io::attach` decides under the same lock).
    let sock = ctx.containers.monitor_sock(&c.id);
    let pending: Vec<_> = c
        .pending
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for p in pending {
        super::streams::wire(sock.clone(), p, c.tty()).await;
    }
    let (reply, waiting) = monitor_client::start_and_wait(&sock).await;
    let saved = saved.await?;
    let (reply, waiting) = match reply {
        Ok(r) => (r, waiting),
        // The init failed its set-up and the monitor finished before reading `start`: the
        // reason is in its exit record.
        Err(e) => match exit_failure(&ctx.containers.state_dir(&c.id)).flatten() {
            Some(f) => (Reply::Failure(f), None),
            None => {
                undo(c);
                return Err(ServiceError::internal(e.to_string()));
            }
        },
    };
    if let Reply::Failure(f) = reply {
        // The monitor cleans up and exits by itself; make sure it is gone before returning.
        let _ = monitor_client::wait_reply(waiting).await;
        undo(c);
        return Err(start_error(f));
    }
    saved?;
    c.events.send_modify(|l| l.running = true);
    super::exit::watch_with(ctx.clone(), c.clone(), waiting);
    ctx.events
        .publish("container", "start", &c.id, super::exit::attrs(c));
    super::health::start(ctx, c);
    // The next monitor is spawned once this container has exited (`exit::on_exit`), or has
    // run for a while: any earlier, its exec would compete for the CPU with this container's
    // set-up, run and exit.
    super::spawner::refill_later(ctx, std::time::Duration::from_millis(100));
    Ok(())
}

/// Why the init of `c` ended before its start, when it failed its set-up (its monitor writes
/// that to `exit.json`, removed before every start): `None` for an init that was killed or
/// is still there after a short wait.
async fn set_up_failure(ctx: &Ctx, c: &Container) -> Option<Failure> {
    let sdir = ctx.containers.state_dir(&c.id);
    for _ in 0..50 {
        if let Some(failure) = exit_failure(&sdir) {
            return failure;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}

/// The monitor's exit record in the state folder `sdir`: `None` while there is none (or it
/// is unreadable), else the start failure it tells of, `None` inside when there is none (the
/// init was killed or exited by itself).
fn exit_failure(sdir: &Path) -> Option<Option<Failure>> {
    monitor_client::exit_record(sdir).map(|r| r.start_failure())
}

/// Mounts the rootfs, writes the bundle and spawns the monitor, which clones the init and
/// lets it set itself up; returns the init's PID. The init waits for the monitor's `start`.
pub(super) fn spawn_monitor(ctx: &Ctx, c: &Container) -> Result<i32, ServiceError> {
    // An earlier run's memory cgroup still waiting for the reaper goes first: this run's
    // must count this run only.
    ctx.containers.reaper.starting();
    if c.view(super::defers_memory_cgroup) {
        if let Some(m) = super::cgroup(c).memory_dir() {
            ctx.containers.reaper.take(&m);
        }
    }
    let rootfs = mount_rootfs(ctx, &c.id)?;
    let sdir = ctx.containers.state_dir(&c.id);
    let bundle = sdir.join("bundle");
    let _ = std::fs::remove_file(sdir.join("exit.json"));
    let dir = ctx.containers.dir(&c.id);
    let rec = c.record();
    write_net_files(&dir, &rec, None, &super::links::hosts_lines(ctx, &rec))
        .map_err(|e| ServiceError::internal(format!("writing network files: {e}")))?;
    crate::volumes::mounts::seed(&rootfs, &rec);
    let opts = options(ctx, c, &rec, &rootfs)?;
    let spec = berth_runtime::spec::build_json(&opts)
        .map_err(|e| ServiceError::bad_request(e.to_string()))?;
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap_or_default(),
    )
    .map_err(|e| ServiceError::internal(format!("writing the bundle: {e}")))?;
    let runtime_name = Some(rec.host_config.runtime.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ctx.config.default_runtime.clone());
    let runtime = ctx
        .runtimes
        .get(&runtime_name)
        .map(|c| crate::runtimes::for_container(c, sdir.join("oci")))
        .ok_or_else(|| ServiceError::bad_request(crate::runtimes::unknown(&runtime_name)))?;
    let cfg = &rec.config;
    let console = rec
        .host_config
        .console_size
        .filter(|[h, _]| *h > 0)
        .map(|[h, w]| [clamp_u16(h.into()), clamp_u16(w.into())]);
    let rotation = super::logconfig::rotation(&rec);
    // A CRI pod's container logs in the CRI's format where kubelet said.
    let cri_log = rec.pod.as_ref().and_then(|p| p.log_path.clone());
    let template = match from_template(ctx, &rec) {
        true => ctx.containers.mount_template.as_ref(),
        false => None,
    };
    let mcfg = MonitorConfig {
        log_format: match cri_log {
            Some(_) => berth_monitor_proto::LogFormat::Cri,
            None => berth_monitor_proto::LogFormat::JsonFile,
        },
        log_path: cri_log.or_else(|| Some(rec.log_path.clone()).filter(|p| !p.is_empty())),
        log_max_size: rotation.and_then(|r| r.max_size),
        log_max_file: rotation.map(|r| r.max_file),
        tty: cfg.tty,
        open_stdin: cfg.open_stdin,
        stdin_once: cfg.stdin_once,
        console_size: console,
        mount_ns: template.map(|t| t.path()),
        mount_ns_staged: template.is_some_and(|t| t.staged()),
        ..MonitorConfig::new(c.id.clone(), bundle.display().to_string(), runtime)
    };
    monitor_client::write_config(&sdir, &mcfg)
        .map_err(|e| ServiceError::internal(e.to_string()))?;
    let r = ctx.containers.spawner.monitor(&sdir)?;
    match monitor_client::read_ready(r, monitor_client::READY_TIMEOUT) {
        Ok(Ready::Ready { pid, .. }) => Ok(pid),
        Ok(Ready::Failed(f)) => {
            let _ = berth_core::mount::unmount(&rootfs);
            Err(start_error(f))
        }
        Err(e) => {
            let _ = berth_core::mount::unmount(&rootfs);
            Err(ServiceError::internal(e.to_string()))
        }
    }
}

/// A terminal dimension as the monitor takes it (a larger one is the largest).
fn clamp_u16(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Creates the run-time folders of a container.
pub fn prepare_dirs(ctx: &Ctx, id: &str) -> std::io::Result<()> {
    crate::modes::private_dir_all(&ctx.containers.state_dir(id).join("bundle").join("rootfs"))
}
