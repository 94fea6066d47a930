//! The CRI's engine-wide runtime facts: berth's version, readiness (the runtime is ready once
//! berthd serves; the network once a CNI configuration is there: [`super::network`]), and the
//! cgroup driver (berth places containers with cgroupfs under `<parent>/<id>`, the pod's
//! `linux.cgroup_parent` or `berth`).

use super::Engine;
use berth_cri::backend::{CgroupDriver, Condition, Health, RuntimeBackend};

impl RuntimeBackend for Engine {
    fn engine_version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    async fn health(&self) -> Health {
        let cfg = &self.ctx.config.cri;
        let c2 = cfg.clone();
        let (network, list) = tokio::task::spawn_blocking(move || super::network::condition(&c2))
            .await
            .unwrap_or_default();
        let info = serde_json::json!({
            "socket": cfg.socket.display().to_string(),
            "cniConfDir": cfg.cni_conf_dir.display().to_string(),
            "cniBinDir": cfg.cni_bin_dir.display().to_string(),
            "streamingAddress": cfg.streaming_address,
            "cgroupDriver": "cgroupfs",
            "dataRoot": self.ctx.config.data_root.display().to_string(),
            "storageDriver": self.ctx.storage.name(),
            "cniNetwork": list.as_ref().map(|l| l.name.clone()),
            "cniConfig": list.as_ref().map(|l| l.source.display().to_string()),
        });
        Health {
            runtime: Condition {
                ready: true,
                ..Default::default()
            },
            network,
            info: vec![("config".into(), info.to_string())],
        }
    }

    fn cgroup_driver(&self) -> CgroupDriver {
        CgroupDriver::Cgroupfs
    }

    fn on_request(&self) {
        // CRI requests count for the idle trimmer as Docker API requests do.
        crate::idle::request();
    }
}
