//! The images critest (cri-tools v1.26.1) pulls, as busybox-based stand-ins made locally: their
//! upstream names, the rootfs each is imported from and the image config (`import -c` lines:
//! users, entrypoints, labels) the specs expect. Facts from cri-tools `pkg/validate/consts.go`,
//! `image.go`, `multi_container_linux.go`, `security_context_linux.go` and its `images/`
//! Dockerfiles. Every image has its own config (an `io.berth.critest.image` label), so no two
//! share an ID except the three `test-image-tags` tags, which must.
//!
//! The digest-pinned `test-image-digest@sha256:9700f9…` cannot be made (it needs upstream's
//! bytes): harnesses skip its spec.

use crate::{busybox_rootfs_tar_with, plain_busybox_rootfs_tar_with, Extra, TestImageError};
use crate::{GROUP, PASSWD};
use std::path::Path;

/// Which rootfs tarball an image is imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rootfs {
    /// busybox plus the stand-in programs ([`rootfs_tar`]).
    Common,
    /// [`Rootfs::Common`] with `default-user` (1000) in `group-defined-in-image` (50000), as
    /// cri-tools' `images/image-predefined-group` makes with adduser/addgroup.
    PredefinedGroup,
}

/// Which busybox the rootfs is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busybox {
    /// Debian's dynamic busybox ([`crate::plain_busybox`]): its `sh` looks commands up in `PATH`
    /// like upstream's image, which the MaskedPaths spec needs (it masks `/bin/ls`).
    Plain,
    /// Debian's busybox-static (its `sh` runs its own applets whatever `PATH` holds).
    Static,
}

/// One image to import and push.
#[derive(Debug, Clone, Copy)]
pub struct CritestImage {
    /// The registry critest names it under (`gcr.io`, `registry.k8s.io`).
    pub registry: &'static str,
    /// The repository's folder (`k8s-staging-cri-tools`, `e2e-test-images`).
    pub dir: &'static str,
    /// The repository's last component (`test-image-1`).
    pub name: &'static str,
    /// Tags pushed, all the same image.
    pub tags: &'static [&'static str],
    /// The rootfs it is imported from.
    pub rootfs: Rootfs,
    /// `import -c` changes besides the identifying label.
    pub changes: &'static [&'static str],
}

/// Runs busybox httpd like the real nginx: `/usr/sbin/nginx` stays the process (so `pidof
/// nginx` finds it and `/var/run/nginx.pid` is its PID), its arguments carry "master process"
/// as the real master's title does, and it serves `/var/www` on the port in `$NGINX_PORT`.
const NGINX: &str = "#!/bin/sh\n\
# Stand-in for nginx (busybox httpd); critest greps /proc/1/cmdline for \"master process\".\n\
echo $$ > /var/run/nginx.pid\n\
httpd -f -p \"${NGINX_PORT:-80}\" -h /var/www &\n\
trap 'kill $!; exit 0' TERM INT\n\
wait\n";

/// Stand-in for the httpd image's `httpd-foreground`: logs the line critest looks for, then
/// serves `/var/www` on :80.
const HTTPD_FOREGROUND: &str = "#!/bin/sh\n\
echo \"[core:notice] AH00094: Command line: 'httpd -D FOREGROUND'\"\n\
exec httpd -f -v -p 80 -h /var/www\n";

/// `pgrep PATTERN` (busybox-static has none): PIDs whose name contains PATTERN.
const PGREP: &str = "#!/bin/sh\n\
[ -n \"$1\" ] || { echo 'usage: pgrep PATTERN' >&2; exit 2; }\n\
found=1\n\
for d in /proc/[0-9]*; do\n\
  read -r comm < \"$d/comm\" 2>/dev/null || continue\n\
  case \"$comm\" in *\"$1\"*) echo \"${d#/proc/}\"; found=0;; esac\n\
done\n\
exit $found\n";

/// `ipcs -m` (busybox-static has no `ipcs`): the System V shared memory segments of the
/// caller's IPC namespace, from `/proc/sysvipc/shm`, in util-linux's columns.
const IPCS: &str = "#!/bin/sh\n\
echo '------ Shared Memory Segments --------'\n\
echo 'key        shmid      owner      perms      bytes      nattch     status'\n\
tail -n +2 /proc/sysvipc/shm | while read -r key shmid perms size cpid lpid nattch uid rest; do\n\
  printf '%-10s %-10s %-10s %-10s %-10s %-10s\\n' \"$key\" \"$shmid\" \"$uid\" \"$perms\" \"$size\" \"$nattch\"\n\
done\n";

const INDEX_HTML: &str = "<html><body>berth critest stand-in</body></html>\n";

/// The images, as critest v1.26.1 names them (`hostnet-nginx-amd64`: critest appends GOARCH).
pub const IMAGES: &[CritestImage] = &[
    gcr("test-image-user-uid", &["latest"], &["USER 1002", SH]),
    gcr(
        "test-image-user-username",
        &["latest"],
        &["USER www-data", SH],
    ),
    gcr(
        "test-image-user-uid-group",
        &["latest"],
        &["USER 1003:1003", SH],
    ),
    gcr(
        "test-image-user-username-group",
        &["latest"],
        &["USER www-data:www-data", SH],
    ),
    CritestImage {
        rootfs: Rootfs::PredefinedGroup,
        ..gcr(
            "test-image-predefined-group",
            &["latest"],
            &["USER 1000", SH],
        )
    },
    gcr("test-image-1", &["latest"], &[SH]),
    gcr("test-image-2", &["latest"], &[SH]),
    gcr("test-image-3", &["latest"], &[SH]),
    gcr("test-image-tags", &["1", "2", "3"], &[SH]),
    gcr("test-image-latest", &["latest"], &[SH]),
    gcr("test-image-tag", &["test"], &[SH]),
    gcr("test-image-tag", &["all"], &[SH]),
    gcr(
        "hostnet-nginx-amd64",
        &["latest"],
        &[
            "ENV NGINX_PORT=12003",
            NGINX_ENTRYPOINT,
            NGINX_CMD,
            "EXPOSE 12003",
        ],
    ),
    e2e("busybox", &["1.29-2"], &[SH]),
    e2e(
        "nginx",
        &["1.14-2"],
        &[NGINX_ENTRYPOINT, NGINX_CMD, "EXPOSE 80"],
    ),
    e2e(
        "httpd",
        &["2.4.39-4"],
        &["CMD [\"httpd-foreground\"]", "EXPOSE 80"],
    ),
    e2e(
        "nonewprivs",
        &["1.3"],
        &["ENTRYPOINT [\"/usr/local/bin/nnp\"]"],
    ),
];

const SH: &str = "CMD [\"sh\"]";
const NGINX_ENTRYPOINT: &str = "ENTRYPOINT [\"/usr/sbin/nginx\"]";
const NGINX_CMD: &str = "CMD [\"-g\", \"daemon off;\", \"master process\"]";

/// `gcr.io/k8s-staging-cri-tools/<name>` on the common rootfs.
const fn gcr(
    name: &'static str,
    tags: &'static [&'static str],
    changes: &'static [&'static str],
) -> CritestImage {
    CritestImage {
        registry: "gcr.io",
        dir: "k8s-staging-cri-tools",
        name,
        tags,
        rootfs: Rootfs::Common,
        changes,
    }
}

/// `registry.k8s.io/e2e-test-images/<name>` on the common rootfs.
const fn e2e(
    name: &'static str,
    tags: &'static [&'static str],
    changes: &'static [&'static str],
) -> CritestImage {
    CritestImage {
        registry: "registry.k8s.io",
        dir: "e2e-test-images",
        name,
        tags,
        rootfs: Rootfs::Common,
        changes,
    }
}

impl CritestImage {
    /// The label that gives this image its own config (and ID): its upstream name and first
    /// tag (`test-image-tag:test` and `:all` are different images).
    pub fn label(&self) -> String {
        format!(
            "LABEL io.berth.critest.image={}/{}:{}",
            self.registry,
            self.path(),
            self.tags.first().copied().unwrap_or("latest")
        )
    }

    /// The repository path under its registry (`k8s-staging-cri-tools/test-image-1`): the
    /// same on the loopback registry.
    pub fn path(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }

    /// Every name critest pulls it by (`gcr.io/k8s-staging-cri-tools/test-image-tags:2`).
    pub fn upstream_names(&self) -> Vec<String> {
        self.tags
            .iter()
            .map(|t| format!("{}/{}:{t}", self.registry, self.path()))
            .collect()
    }
}

/// Writes the rootfs tarball `which` to `dest`: the busybox rootfs plus `/usr/sbin/nginx`,
/// `/usr/local/bin/httpd-foreground`, `/bin/pgrep`, `/bin/ipcs`, `/var/www/index.html`, `/var/run` and the
/// setuid-root `/usr/local/bin/nnp` ([`crate::effective_uid::effective_uid_elf`]), made of the
/// `busybox` given.
pub fn rootfs_tar(which: Rootfs, busybox: Busybox, dest: &Path) -> Result<(), TestImageError> {
    let nnp = crate::effective_uid::effective_uid_elf();
    let passwd =
        format!("{PASSWD}default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n");
    let group =
        format!("{GROUP}default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n");
    let mut extras = vec![
        dir("usr/local"),
        dir("usr/local/bin"),
        dir("var/run"),
        file("usr/sbin/nginx", 0o755, NGINX.as_bytes()),
        file(
            "usr/local/bin/httpd-foreground",
            0o755,
            HTTPD_FOREGROUND.as_bytes(),
        ),
        file("bin/pgrep", 0o755, PGREP.as_bytes()),
        file("bin/ipcs", 0o755, IPCS.as_bytes()),
        file("var/www/index.html", 0o644, INDEX_HTML.as_bytes()),
        file("usr/local/bin/nnp", 0o4755, &nnp),
    ];
    if which == Rootfs::PredefinedGroup {
        extras.push(dir("home/default-user"));
        extras.push(file("etc/passwd", 0o644, passwd.as_bytes()));
        extras.push(file("etc/group", 0o644, group.as_bytes()));
    }
    match busybox {
        Busybox::Plain => plain_busybox_rootfs_tar_with(dest, &extras),
        Busybox::Static => busybox_rootfs_tar_with(dest, &extras),
    }
}

fn dir(path: &str) -> Extra<'_> {
    Extra {
        path,
        mode: 0o755,
        data: None,
    }
}

fn file<'a>(path: &'a str, mode: u32, data: &'a [u8]) -> Extra<'a> {
    Extra {
        path,
        mode,
        data: Some(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_critests() {
        let names: Vec<String> = IMAGES.iter().flat_map(|i| i.upstream_names()).collect();
        for want in [
            "gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest",
            "gcr.io/k8s-staging-cri-tools/test-image-user-username-group:latest",
            "gcr.io/k8s-staging-cri-tools/test-image-tags:3",
            "gcr.io/k8s-staging-cri-tools/test-image-tag:all",
            "registry.k8s.io/e2e-test-images/busybox:1.29-2",
            "registry.k8s.io/e2e-test-images/nonewprivs:1.3",
            "gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing");
        }
        let labels: std::collections::HashSet<String> =
            IMAGES.iter().map(CritestImage::label).collect();
        assert_eq!(labels.len(), IMAGES.len(), "every image has its own config");
    }
}
