//! The embedded DNS server, as Docker's at 127.0.0.11: containers whose network mode is a
//! user-defined network get `nameserver 127.0.0.11` and resolve the containers that share a
//! user network with them by name, short id and network aliases; other names are forwarded to
//! the `--dns` servers or the host's resolvers, from the host's side (so a loopback resolver
//! such as 127.0.0.53 works too).
//!
//! Cost per container: one UDP socket and one TCP listener bound to 127.0.0.11:53 *inside* the
//! container's network namespace (a short-lived thread `setns`es in, binds, and exits; the
//! sockets keep their namespace), served by two tokio tasks of berthd — no thread, process or
//! firewall rule per container. The tasks are aborted when the container leaves its networks
//! and re-created for running containers when berthd restarts.
//!
//! Bounds against a container flooding it: each container's server answers at most
//! [`IN_FLIGHT`] queries at once (UDP queries past that are dropped, as a busy resolver does;
//! clients retry) and holds at most [`TCP_CLIENTS`] TCP connections, each given [`TCP_IDLE`]
//! per message; queries larger than [`MAX_QUERY`] are ignored. A container whose networks are
//! all `--internal` gets no upstream forwarding (as Docker's resolver): its peers' names
//! resolve, any other name is answered REFUSED at once.

use super::dns_msg::{self, TYPE_A, TYPE_AAAA};
use super::{endpoints, PREDEFINED};
use crate::containers::{Container, ContainerRecord};
use crate::state::Ctx;
use berth_api::types::network::EndpointSettings;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;

/// The resolver's address inside containers.
pub const ADDR: &str = "127.0.0.11";
/// How long a forwarded query may take per upstream server.
const UPSTREAM_PATIENCE: Duration = Duration::from_secs(3);
/// Upstream servers tried per query (as the C library's resolver: 3), so a query is answered
/// or given up within `MAX_UPSTREAMS * UPSTREAM_PATIENCE`.
const MAX_UPSTREAMS: usize = 3;
/// How long a TCP client may stay idle (and take to send one message).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Queries one container's server answers at once (UDP and TCP together).
const IN_FLIGHT: usize = 64;
/// TCP connections one container's server holds at once.
const TCP_CLIENTS: usize = 16;
/// The largest query read (a query has one question: a few hundred bytes at most).
const MAX_QUERY: usize = 4096;

/// The running servers, by container id.
#[derive(Default)]
pub struct Servers {
    tasks: Mutex<HashMap<String, Vec<AbortHandle>>>,
}

impl Servers {
    /// Stops container `id`'s server (nothing running is fine).
    pub fn stop(&self, id: &str) {
        let tasks = self.tasks.lock().ok().and_then(|mut m| m.remove(id));
        for t in tasks.into_iter().flatten() {
            t.abort();
        }
    }

    fn insert(&self, id: &str, tasks: Vec<AbortHandle>) {
        if let Ok(mut m) = self.tasks.lock() {
            if let Some(old) = m.insert(id.to_string(), tasks) {
                old.iter().for_each(AbortHandle::abort);
            }
        }
    }
}

/// Whether a container uses the embedded server: its network mode is a user network.
pub fn embedded(rec: &ContainerRecord) -> bool {
    let mode = rec.host_config.network_mode.as_str();
    !(mode.is_empty()
        || mode == "default"
        || PREDEFINED.contains(&mode)
        || mode.starts_with("container:"))
}

/// `/etc/resolv.conf` for a container on the embedded server: 127.0.0.11 plus the host's
/// `search` and `options` lines, `ndots:0` as Docker.
pub fn resolv_conf(host: &str) -> String {
    let mut out = format!("nameserver {ADDR}\n");
    let mut options = Vec::new();
    for l in host.lines().map(str::trim) {
        if l.starts_with("search ") || l.starts_with("domain ") {
            out.push_str(l);
            out.push('\n');
        } else if let Some(o) = l.strip_prefix("options ") {
            options.extend(
                o.split_whitespace()
                    .filter(|o| !o.starts_with("ndots:"))
                    .map(str::to_string),
            );
        }
    }
    options.push("ndots:0".into());
    out.push_str(&format!("options {}\n", options.join(" ")));
    out
}

/// Starts container `c`'s server inside the namespace of its process `pid` (when it uses one).
pub async fn serve(ctx: &Ctx, c: &Container, pid: i64) {
    // Only with an address on a user network (a `null` network has no loopback route to it).
    let used = c.view(|r| {
        embedded(r)
            && r.network_settings
                .networks
                .iter()
                .any(|(n, ep)| !PREDEFINED.contains(&n.as_str()) && !ep.ip_address.is_empty())
    });
    if !used {
        return;
    }
    let path = format!("/proc/{pid}/ns/net");
    let bound = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let ns = std::fs::File::open(&path)?;
        berth_core::netns::run_in(&ns, || {
            let addr = SocketAddr::new(IpAddr::V4(ADDR.parse().unwrap_or(Ipv4Addr::LOCALHOST)), 53);
            let u = std::net::UdpSocket::bind(addr)?;
            u.set_nonblocking(true)?;
            let t = std::net::TcpListener::bind(addr)?;
            t.set_nonblocking(true)?;
            Ok((u, t))
        })
    })
    .await;
    let (u, t) = match bound {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::warn!("embedded DNS for {}: {e}", c.id),
        Err(e) => return tracing::warn!("embedded DNS for {}: {e}", c.id),
    };
    let (Ok(u), Ok(t)) = (UdpSocket::from_std(u), TcpListener::from_std(t)) else {
        return tracing::warn!("embedded DNS for {}: registering the sockets", c.id);
    };
    let busy = Arc::new(Semaphore::new(IN_FLIGHT));
    let udp = tokio::spawn(serve_udp(
        ctx.clone(),
        c.id.clone(),
        Arc::new(u),
        busy.clone(),
    ));
    let tcp = tokio::spawn(serve_tcp(ctx.clone(), c.id.clone(), t, busy));
    ctx.networks
        .dns
        .insert(&c.id, vec![udp.abort_handle(), tcp.abort_handle()]);
}

/// Re-creates the servers of running containers after berthd restarted.
pub async fn restore_all(ctx: &Ctx) {
    for c in ctx.containers.all() {
        if c.running() {
            serve(ctx, &c, c.pid()).await;
        }
    }
}

async fn serve_udp(ctx: Ctx, id: String, sock: Arc<UdpSocket>, busy: Arc<Semaphore>) {
    let mut buf = vec![0u8; MAX_QUERY];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(got) => got,
            // A client's ICMP error reported on our socket: not ours to stop for.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => return tracing::warn!("embedded DNS for {id}: {e}"),
        };
        // Too many queries of this container in flight: drop this one (the client retries).
        let Ok(permit) = busy.clone().try_acquire_owned() else {
            continue;
        };
        let (ctx, id, sock, q) = (ctx.clone(), id.clone(), sock.clone(), buf[..n].to_vec());
        tokio::spawn(async move {
            if let Some(reply) = handle(&ctx, &id, &q).await {
                let _ = sock.send_to(&reply, from).await;
            }
            drop(permit);
        });
    }
}

async fn serve_tcp(ctx: Ctx, id: String, l: TcpListener, busy: Arc<Semaphore>) {
    let clients = Arc::new(Semaphore::new(TCP_CLIENTS));
    loop {
        // At the bound, connections wait in the listen backlog until one ends.
        let Ok(slot) = clients.clone().acquire_owned().await else {
            return;
        };
        let Ok((s, _)) = l.accept().await else {
            return;
        };
        let (ctx, id, busy) = (ctx.clone(), id.clone(), busy.clone());
        tokio::spawn(async move {
            tcp_client(ctx, id, s, busy).await;
            drop(slot);
        });
    }
}

async fn tcp_client(ctx: Ctx, id: String, mut s: TcpStream, busy: Arc<Semaphore>) {
    loop {
        let read = async {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let len = usize::from(u16::from_be_bytes(len));
            if len > MAX_QUERY {
                return Err(std::io::Error::other("query too large"));
            }
            let mut q = vec![0u8; len];
            s.read_exact(&mut q).await?;
            Ok::<_, std::io::Error>(q)
        };
        let q = match tokio::time::timeout(TCP_IDLE, read).await {
            Ok(Ok(q)) => q,
            _ => return,
        };
        let Ok(permit) = busy.acquire().await else {
            return;
        };
        let reply = handle(&ctx, &id, &q).await;
        drop(permit);
        let Some(reply) = reply else {
            return;
        };
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if s.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// Answers one query of container `id`: its peers' names here, anything else upstream.
async fn handle(ctx: &Ctx, id: &str, q: &[u8]) -> Option<Vec<u8>> {
    let qn = dns_msg::parse(q)?;
    if let Some(addrs) = lookup(ctx, id, &qn.name) {
        let addrs: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|a| match a {
                IpAddr::V4(_) => qn.qtype == TYPE_A,
                IpAddr::V6(_) => qn.qtype == TYPE_AAAA,
            })
            .collect();
        return Some(dns_msg::answer(q, &qn, &addrs, 0));
    }
    if !forwards(ctx, id) {
        return Some(dns_msg::answer(q, &qn, &[], dns_msg::REFUSED));
    }
    let ups = upstreams(ctx, id);
    for up in ups {
        if let Some(r) = forward(up, q).await {
            return Some(r);
        }
    }
    Some(dns_msg::answer(q, &qn, &[], dns_msg::SERVFAIL))
}

/// The addresses (IPv4 and IPv6) of `name` — or of `name.<network>` — among the containers
/// sharing a user network with `id`.
fn lookup(ctx: &Ctx, id: &str, name: &str) -> Option<Vec<IpAddr>> {
    let me = ctx.containers.get(id).ok()?;
    // A link on a user network: its alias names the target for this container alone.
    let target = me.view(|r| crate::containers::links::dns_target(r, name));
    let name = target.as_deref().unwrap_or(name);
    let live = |ep: &EndpointSettings| !ep.endpoint_id.is_empty();
    let mine: Vec<String> = me.view(|r| {
        r.network_settings
            .networks
            .iter()
            .filter(|(n, ep)| !PREDEFINED.contains(&n.as_str()) && live(ep))
            .map(|(n, _)| n.clone())
            .collect()
    });
    let mut out = Vec::new();
    for c in ctx.containers.all() {
        c.view(|rec| {
            if !rec.state.running || rec.state.restarting {
                return;
            }
            for net in &mine {
                let Some(ep) = rec.network_settings.networks.get(net) else {
                    continue;
                };
                let scoped = name
                    .len()
                    .checked_sub(net.len() + 1)
                    .filter(|&i| name.is_char_boundary(i))
                    .map(|i| name.split_at(i))
                    .filter(|(_, tail)| {
                        tail[1..].eq_ignore_ascii_case(net) && tail.starts_with('.')
                    })
                    .map(|(head, _)| head);
                let hit = live(ep)
                    && endpoints::dns_names(rec, ep).iter().any(|n| {
                        n.eq_ignore_ascii_case(name)
                            || scoped.is_some_and(|h| n.eq_ignore_ascii_case(h))
                    });
                if !hit {
                    continue;
                }
                let v6 = ep.global_ipv6_address.parse::<IpAddr>();
                for ip in [ep.ip_address.parse::<IpAddr>(), v6].into_iter().flatten() {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
        });
    }
    (!out.is_empty()).then_some(out)
}

/// Whether container `id` may have names forwarded upstream: not when every network it is on
/// is `--internal` (such a container must not reach outside, not even through berthd).
fn forwards(ctx: &Ctx, id: &str) -> bool {
    let Ok(me) = ctx.containers.get(id) else {
        return false;
    };
    let live: Vec<String> = me.view(|r| {
        r.network_settings
            .networks
            .iter()
            .filter(|(_, ep)| !ep.endpoint_id.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    });
    live.iter()
        .any(|name| ctx.networks.get(name).is_ok_and(|n| !n.internal))
}

/// Where names not ours go: the container's `--dns` servers, else the host's resolvers.
fn upstreams(ctx: &Ctx, id: &str) -> Vec<SocketAddr> {
    let dns = ctx
        .containers
        .get(id)
        .map(|c| c.view(|r| r.host_config.dns.clone().unwrap_or_default()))
        .unwrap_or_default();
    let servers = if dns.is_empty() {
        std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .collect()
    } else {
        dns
    };
    servers
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .filter(|ip| ip.to_string() != ADDR)
        .map(|ip| SocketAddr::new(ip, 53))
        .take(MAX_UPSTREAMS)
        .collect()
}

/// Sends `q` to `up` from the host's namespace; the reply, if one comes in time.
async fn forward(up: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    let local: SocketAddr = if up.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let sock = UdpSocket::bind(local).await.ok()?;
    sock.connect(up).await.ok()?;
    sock.send(q).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(UPSTREAM_PATIENCE, sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    (buf.len() >= 2 && buf[..2] == q[..2]).then_some(buf)
}
