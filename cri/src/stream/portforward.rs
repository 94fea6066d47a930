//! kubelet's `portforward.k8s.io` protocol over SPDY: for each forwarded connection the client
//! opens an `error` and a `data` stream carrying the same `port` and `requestID` headers. Once
//! both are there berth connects to the port inside the pod and relays the data stream both
//! ways (the client's end of input half-closes the pod side); when the pod side ends, the
//! data stream is half-closed and so is the error stream, which carries a message if the
//! forward failed. Pairs left incomplete expire, and only so many wait at once.

use super::backend::StreamBackend;
use super::conn::{Conn, Stream};
use super::spdy::headers;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The protocol's name in `X-Stream-Protocol-Version`.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// How long half a pair waits for the other half.
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// The most incomplete pairs at once.
const MAX_PENDING: usize = 32;

/// Half or all of a pair.
#[derive(Default)]
struct Pair {
    data: Option<Stream>,
    error: Option<Stream>,
}

/// Serves port forwards to the pod `pod_id` on `conn` until the client goes.
pub async fn serve<B: StreamBackend>(mut conn: Conn, pod_id: String, backend: Arc<B>) {
    let mut pending: HashMap<String, (Instant, Pair)> = HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    while let Some(s) = conn.next_stream().await {
        // Finished forwards are reaped as streams come.
        while forwards.try_join_next().is_some() {}
        let h = &s.headers;
        let id = headers::get(h, "requestID")
            .or_else(|| headers::get(h, "port"))
            .unwrap_or("")
            .to_string();
        let kind = headers::get(h, "streamType").unwrap_or("").to_string();
        pending.retain(|_, (at, _)| at.elapsed() < PAIR_TIMEOUT);
        if !pending.contains_key(&id) && pending.len() >= MAX_PENDING {
            s.tx.close().await;
            continue;
        }
        let entry = pending
            .entry(id.clone())
            .or_insert_with(|| (Instant::now(), Pair::default()));
        match kind.as_str() {
            "data" if entry.1.data.is_none() => entry.1.data = Some(s),
            "error" if entry.1.error.is_none() => entry.1.error = Some(s),
            _ => {
                s.tx.close().await;
                continue;
            }
        }
        if entry.1.data.is_some() && entry.1.error.is_some() {
            if let Some((
                _,
                Pair {
                    data: Some(d),
                    error: Some(e),
                },
            )) = pending.remove(&id)
            {
                forwards.spawn(forward(backend.clone(), pod_id.clone(), d, e));
            }
        }
    }
    forwards.abort_all();
    conn.finish().await;
}

/// Relays one pair to its port in the pod.
pub(crate) async fn forward<B: StreamBackend>(
    backend: Arc<B>,
    pod: String,
    mut data: Stream,
    error: Stream,
) {
    let port = headers::get(&data.headers, "port")
        .unwrap_or("")
        .to_string();
    let failed = match port.parse::<u16>() {
        Ok(p) if p > 0 => match backend.port_forward(&pod, p).await {
            Ok(c) => {
                let (mut r, mut w) = tokio::io::split(c);
                let up = tokio::spawn(async move {
                    while let Some(b) = data.rx.recv().await {
                        if w.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                    let _ = w.shutdown().await;
                });
                let mut buf = vec![0u8; 32 << 10];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if !data.tx.write(&buf[..n]).await {
                                break;
                            }
                        }
                    }
                }
                up.abort();
                None
            }
            Err(e) => Some(format!("error forwarding port {p} to pod {pod}: {e}")),
        },
        _ => Some(format!("invalid port {port:?}")),
    };
    if let Some(m) = failed {
        error.tx.write(m.as_bytes()).await;
    }
    data.tx.close().await;
    error.tx.close().await;
}
