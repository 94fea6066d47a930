//! Port forwarding over WebSocket, kubelet's second wire for it, against berthd: the URL of a
//! CRI `PortForward` call (made with a tonic client, as kubelet does; crictl 1.26 speaks SPDY
//! only) is opened by a real WebSocket client (tungstenite), which receives each channel's
//! port (2 bytes little-endian) first, sends an HTTP request on the data channel to busybox
//! `httpd` on the pod's own loopback and reads the answer back; a port nothing listens on is
//! reported on its error channel; berth closes the connection once every port is done. Binary
//! channels with the request's ports, base64 channels with the `port` query parameters, and
//! the refusals (no port, an unknown subprotocol). Skipped without crictl.

use base64::Engine;
use berth_tests::{Crictl, TestDaemon};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).expect("write config");
    p.display().to_string()
}

/// The streaming URL of a CRI `PortForward` for `pod` and `ports`, over the CRI socket.
fn port_forward_url(socket: PathBuf, pod: &str, ports: Vec<i32>) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let channel = tonic::transport::Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await
            .expect("connect to the CRI socket");
        let r = RuntimeServiceClient::new(channel)
            .port_forward(k8s_cri::v1::PortForwardRequest {
                pod_sandbox_id: pod.to_string(),
                port: ports,
            })
            .await
            .expect("PortForward");
        r.into_inner().url
    })
}

type Ws = tungstenite::WebSocket<TcpStream>;

/// Opens `url` (http) as a WebSocket offering `protocol`: the socket, or the HTTP refusal.
fn open(url: &str, protocol: Option<&str>) -> Result<Ws, (u16, String)> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut req = ws_url.as_str().into_client_request().expect("request");
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
    }
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host")
        .to_string();
    let tcp = TcpStream::connect(&host).expect("connect to the streaming server");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    match tungstenite::client::client(req, tcp) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            let body = r.body().clone().unwrap_or_default();
            Err((r.status().as_u16(), String::from_utf8_lossy(&body).into()))
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// A message on the wire for `data` on channel `ch`.
fn channel_message(ch: u8, base64: bool, data: &[u8]) -> Message {
    if base64 {
        let b = base64::engine::general_purpose::STANDARD.encode(data);
        Message::text(format!("{}{b}", char::from(b'0' + ch)))
    } else {
        let mut p = vec![ch];
        p.extend_from_slice(data);
        Message::binary(p)
    }
}

/// Reads every message until berth closes: what each channel received, in order.
fn read_all(ws: &mut Ws, base64: bool) -> BTreeMap<u8, Vec<Vec<u8>>> {
    let mut got: BTreeMap<u8, Vec<Vec<u8>>> = BTreeMap::new();
    loop {
        let (ch, data) = match ws.read() {
            Ok(Message::Binary(b)) if !base64 && !b.is_empty() => (b[0], b[1..].to_vec()),
            Ok(Message::Text(t)) if base64 && !t.is_empty() => {
                let t = t.as_bytes();
                let d = base64::engine::general_purpose::STANDARD
                    .decode(&t[1..])
                    .expect("base64");
                (t[0] - b'0', d)
            }
            Ok(Message::Close(_)) => break,
            Ok(m) if m.is_ping() || m.is_pong() => continue,
            Ok(m) => panic!("unexpected message {m:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("reading: {e}"),
        };
        got.entry(ch).or_default().push(data);
    }
    got
}

#[test]
fn port_forward_over_websocket_channels() {
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    d.import_busybox();
    let pod_cfg = write(
        d.dir(),
        "pod.json",
        &json!({
            "metadata": {"name": "pfws", "namespace": "default", "uid": "uid-pfws", "attempt": 0},
            "log_directory": d.dir().join("pod-logs"),
        }),
    );
    let p = c.ok(&["runp", &pod_cfg]).trim().to_string();
    let web = "mkdir -p /www && echo hello-over-websocket > /www/index.html && \
               exec httpd -f -p 8080 -h /www";
    let main = write(
        d.dir(),
        "main.json",
        &json!({
            "metadata": {"name": "web"},
            "image": {"image": "busybox"},
            "command": ["sh", "-c", web],
            "log_path": "web.log",
        }),
    );
    let a = c.ok(&["create", &p, &main, &pod_cfg]).trim().to_string();
    c.ok(&["start", &a]);
    let socket = d.exec_root().join("cri.sock");
    let get = b"GET / HTTP/1.0\r\n\r\n";

    // Binary channels, the ports named in the CRI request; httpd answers through channel 0.
    // httpd may not listen yet right after start: tried a few times.
    let mut answer = String::new();
    for _ in 0..50 {
        let url = port_forward_url(socket.clone(), &p, vec![8080]);
        let mut ws = open(&url, Some("v4.channel.k8s.io")).expect("upgrade");
        ws.send(channel_message(0, false, get)).expect("send");
        let got = read_all(&mut ws, false);
        let data = got.get(&0).cloned().unwrap_or_default();
        let errors = got.get(&1).cloned().unwrap_or_default();
        assert_eq!(data.first().map(Vec::as_slice), Some(&[0x90, 0x1f][..]));
        assert_eq!(errors.first().map(Vec::as_slice), Some(&[0x90, 0x1f][..]));
        answer = String::from_utf8_lossy(&data[1..].concat()).into_owned();
        if answer.contains("hello-over-websocket") {
            assert_eq!(errors.len(), 1, "no error: {errors:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answer.contains("200 OK"), "{answer}");
    assert!(answer.contains("hello-over-websocket"), "{answer}");

    // Base64 channels, the ports from the query: 8080 on channels 0/1, and port 9, where
    // nothing listens, on 2/3 — its failure on its error channel.
    let url = port_forward_url(socket.clone(), &p, vec![]);
    let mut ws = open(
        &format!("{url}?port=8080&port=9"),
        Some("v4.base64.channel.k8s.io"),
    )
    .expect("upgrade");
    ws.send(channel_message(0, true, get)).expect("send");
    let got = read_all(&mut ws, true);
    assert_eq!(got[&2][0], vec![9, 0]);
    assert_eq!(got[&3][0], vec![9, 0]);
    let failure = String::from_utf8_lossy(&got[&3][1..].concat()).into_owned();
    assert!(failure.contains("error forwarding port 9"), "{failure}");
    let answer = String::from_utf8_lossy(&got[&0][1..].concat()).into_owned();
    assert!(answer.contains("hello-over-websocket"), "{answer}");
    assert_eq!(got[&1].len(), 1, "no error on 8080: {:?}", got[&1]);

    // No subprotocol: binary channels, as kubelet's.
    let url = port_forward_url(socket.clone(), &p, vec![8080]);
    let mut ws = open(&url, None).expect("upgrade without a subprotocol");
    ws.send(channel_message(0, false, get)).expect("send");
    let got = read_all(&mut ws, false);
    assert!(String::from_utf8_lossy(&got[&0][1..].concat()).contains("hello-over-websocket"));

    // Refusals: no port at all; a subprotocol kubelet does not speak for port forwarding.
    let url = port_forward_url(socket.clone(), &p, vec![]);
    let (code, body) = open(&url, Some("v4.channel.k8s.io")).expect_err("refused");
    assert_eq!(code, 400);
    assert!(body.contains("\"port\" is required"), "{body}");
    let url = port_forward_url(socket.clone(), &p, vec![8080]);
    let (code, _) = open(&url, Some("portforward.k8s.io")).expect_err("refused");
    assert_eq!(code, 403);

    c.ok(&["stopp", &p]);
    c.ok(&["rmp", &p]);
}
