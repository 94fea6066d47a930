//! berthd: the berth daemon. Parses flags and `daemon.json`, loads the driver plugins, takes
//! the data-root lock, restores images and containers, and serves the Docker Engine API until
//! SIGTERM/SIGINT (SIGHUP reloads the log level). Any start-up failure is one line on stderr
//! and exit status 1, with nothing written to disk when the configuration or a plugin is at
//! fault.

#![recursion_limit = "256"]

mod api;
mod build;
mod config;
mod containers;
mod cri_glue;
mod error;
mod events;
mod filters;
mod idle;
mod images;
mod jsonv;
mod lock;
mod logging;
mod model;
mod modes;
mod network;
mod plugins;
mod runtimes;
mod server;
mod shutdown;
mod state;
mod tlsconf;
mod volumes;

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;

/// Command-line flags, as dockerd's.
#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "berth daemon: serves the Docker Engine API"
)]
struct Flags {
    /// Daemon socket(s) to listen on (unix:///path, tcp://host:port).
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root of persistent state.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of run-time state.
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Storage driver to use.
    #[arg(short = 's', long)]
    storage_driver: Option<String>,
    /// Path of the PID file.
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Daemon configuration file.
    #[arg(long, default_value = config::DEFAULT_CONFIG)]
    config_file: PathBuf,
    /// Debug mode.
    #[arg(short = 'D', long)]
    debug: bool,
    /// Log level (debug, info, warn, error, fatal).
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// Bridge device of the default network.
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// Address and prefix of the default bridge (CIDR).
    #[arg(long)]
    bip: Option<String>,
    /// Enable inter-container communication on the default network (`--icc=false` turns
    /// it off).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    icc: Option<bool>,
    /// Use TLS on TCP hosts; implied by --tlsverify (`--tls=false` accepts an unencrypted
    /// TCP host that is not loopback).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    tls: Option<bool>,
    /// Use TLS and verify clients: only certificates signed by --tlscacert get in.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    tlsverify: Option<bool>,
    /// Trust only clients whose certificates this CA signed [default: /etc/berth/ca.pem].
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// Path to the TLS certificate file [default: /etc/berth/cert.pem].
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// Path to the TLS key file [default: /etc/berth/key.pem].
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Socket of the Kubernetes CRI server [default: unix:///run/berth/cri.sock].
    #[arg(long)]
    cri_socket: Option<String>,
}

fn main() {
    // Before any thread exists, so every thread and monitor inherits it (containers do not:
    // their processes go back to the normal policy before they exec).
    berth_core::sched::batch();
    // Two malloc arenas instead of one per thread (8 × cores by default): the blocking pool's
    // threads come and go, and each arena keeps its own free memory resident.
    // SAFETY: mallopt before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    // As dockerd: a descriptor or two per running container must not meet a soft limit of
    // 1,024; containers keep the original limit as their default.
    berth_core::nofile::raise();
    let flags = Flags::parse();
    if let Err(e) = run(flags) {
        let text = format!("{e:#}").replace('\n', " ");
        eprintln!("berthd: {text}");
        std::process::exit(1);
    }
}

fn run(flags: Flags) -> Result<()> {
    let explicit =
        std::env::args().any(|a| a == "--config-file" || a.starts_with("--config-file="));
    let file = config::read_file(&flags.config_file, explicit)?;
    let config_file = file.as_ref().map(|_| flags.config_file.clone());
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from));
    let fc = config::FlagConfig {
        hosts: flags.hosts,
        data_root: flags.data_root,
        exec_root: flags.exec_root,
        storage_driver: flags.storage_driver,
        pidfile: flags.pidfile,
        debug: flags.debug,
        log_level: flags.log_level,
        bridge: flags.bridge,
        bip: flags.bip,
        icc: flags.icc,
        tls: tlsconf::TlsFlags {
            tls: flags.tls,
            tlsverify: flags.tlsverify,
            tlscacert: flags.tlscacert,
            tlscert: flags.tlscert,
            tlskey: flags.tlskey,
        },
        cri_socket: flags.cri_socket,
    };
    let cfg = config::merge(fc, file, config_file, exe_dir)?;
    let tls = server::tls::acceptor(&cfg.tls)?;
    // Nothing may be written before the plugins loaded: only check the lock, then take it.
    lock::check_free(&cfg.data_root)?;
    let drivers = plugins::load(&cfg)?;
    let reload = logging::init(&cfg.log_level)?;
    for note in drivers.notes.iter().chain(&cfg.tls.notes) {
        tracing::warn!("{note}");
    }
    std::fs::create_dir_all(&cfg.data_root)
        .with_context(|| format!("creating {}", cfg.data_root.display()))?;
    let lock = lock::acquire(&cfg.data_root)?;
    // Before any store opens: an older data root is converted, a newer one refused.
    model::migrate::run(&cfg.data_root)?;
    std::fs::create_dir_all(&cfg.exec_root)
        .with_context(|| format!("creating {}", cfg.exec_root.display()))?;
    for root in [&cfg.data_root, &cfg.exec_root] {
        modes::lock_down(root).with_context(|| format!("restricting {}", root.display()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()?;
    let exec_root = cfg.exec_root.clone();
    let served = rt.block_on(serve(cfg, drivers, reload, tls));
    // Blocking work still running (a stuck driver call) must not hold the exit up for long.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    containers::mount_template::release(&exec_root);
    drop(lock);
    served
}

async fn serve(
    cfg: config::Config,
    drivers: plugins::Drivers,
    reload: logging::Reload,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<()> {
    let listeners = server::bind(&cfg.hosts, tls)?;
    std::fs::write(&cfg.pidfile, std::process::id().to_string())
        .with_context(|| format!("writing {}", cfg.pidfile.display()))?;
    let id = lock::daemon_id(&cfg.data_root)?;
    let images = berth_image::ImageStore::open(
        &cfg.data_root.join("image"),
        drivers.storage.clone(),
        cfg.max_layer_size,
    )
    .context("opening the image store")?;
    let containers = containers::Containers::open(&cfg)?;
    let volumes = volumes::Volumes::open(&cfg.data_root).context("opening the volume store")?;
    let networks = network::Networks::open(&cfg.data_root, &cfg.bridge, cfg.icc)
        .context("opening the network store")?;
    // The stores' folders may be new: they get the roots' mode too.
    for root in [&cfg.data_root, &cfg.exec_root] {
        modes::lock_down(root).with_context(|| format!("restricting {}", root.display()))?;
    }
    for (name, d) in drivers.extra_networks {
        networks.add_driver(&name, d);
    }
    let ctx = Arc::new(state::Daemon {
        config: cfg.clone(),
        storage: drivers.storage,
        network: drivers.network,
        registry: drivers.registry,
        plugins: drivers.infos,
        runtimes: drivers.runtimes,
        events: events::EventBus::default(),
        shutdown: shutdown::Shutdown::default(),
        started_at: std::time::Instant::now(),
        id,
        images,
        containers,
        volumes,
        networks,
    });
    if let Some(net) = ctx.network.clone() {
        let keep = ctx.networks.bridge_driver_ids();
        let user: Vec<berth_core::network::NetworkSpec> = ctx
            .networks
            .list()
            .iter()
            .filter_map(network::bridge_spec)
            .collect();
        // The default network, re-created (idempotently) at every start; stale kernel state
        // of networks berth no longer has is removed.
        let created = tokio::task::spawn_blocking(move || {
            let spec = berth_core::network::NetworkSpec {
                id: "bridge".into(),
                name: "bridge".into(),
                ..Default::default()
            };
            net.create_network(&spec)?;
            // User networks are re-created too (bridges, rules, port reservations).
            for spec in &user {
                if let Err(e) = net.create_network(spec) {
                    tracing::warn!("re-creating network {}: {e}", spec.name);
                }
            }
            net.reconcile(&keep)
        })
        .await;
        match created {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("creating the default bridge network: {e}"),
            Err(e) => tracing::warn!("creating the default bridge network: {e}"),
        }
    }
    network::recreate_plugin_networks(&ctx).await;
    containers::exit::restore(&ctx).await;
    let (inits, storage) = (
        containers::initlayer::InitLayers::of(&ctx),
        ctx.storage.clone(),
    );
    let _ = tokio::task::spawn_blocking(move || inits.remove_orphans(storage.as_ref())).await;
    network::dns::restore_all(&ctx).await;
    let ctx2 = ctx.clone();
    tokio::task::spawn_blocking(move || ctx2.containers.spawner.refill());
    // Start-up (plugin loading, stores, restore) is done: what it touched and freed need not
    // stay resident in an idle daemon.
    let _ = tokio::task::spawn_blocking(berth_runtime::memory::release_startup_pages).await;
    // From now on, memory goes back whenever the daemon goes idle after requests.
    tokio::spawn(idle::trimmer());
    let router = Arc::new(api::routes());
    let mut sockets = Vec::new();
    // Handlers first, so a signal sent as soon as the socket answers is never fatal.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    for l in listeners {
        if let server::Listener::Unix(_, p) = &l {
            sockets.push(p.clone());
        }
        let sd = ctx.shutdown.clone();
        tokio::spawn(server::serve(l, ctx.clone(), router.clone(), sd));
    }
    cri_glue::start(&ctx)?;
    tracing::info!(
        "berthd {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        cfg.hosts.join(", ")
    );
    use tokio::signal::unix::{signal, SignalKind};
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                logging::reload(&reload, cfg.config_file.as_deref());
                ctx.events.publish("daemon", "reload", &ctx.id, Default::default());
            }
        }
    }
    tracing::info!(
        "shutting down after {}s",
        ctx.started_at.elapsed().as_secs()
    );
    ctx.shutdown.trigger();
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    let left = ctx
        .shutdown
        .drained(std::time::Duration::from_secs(5))
        .await;
    if left > 0 {
        tracing::warn!("{left} connection(s) still open at shutdown; closing them");
    }
    crate::containers::prestart::cancel_all(&ctx).await;
    ctx.containers.reaper.flush();
    let storage = ctx.storage.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || storage.cleanup()).await {
        tracing::warn!("storage driver clean-up: {e}");
    }
    let _ = std::fs::remove_file(&cfg.pidfile);
    Ok(())
}
