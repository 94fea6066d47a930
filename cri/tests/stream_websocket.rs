//! The streaming server's WebSocket channels end to end over a real TCP connection: an exec
//! URL from the server, the RFC 6455 handshake with a channel protocol, stdin sent on channel
//! 0, the command's output on channel 1 and its v4 status (exit code 3) on channel 3, then
//! the close frame — in the binary and the base64 form. The backend is a stand-in process
//! (this crate knows no engine); berthd's own exec is what `tests/tests/cri_streaming.rs`
//! drives with crictl over SPDY.

use base64::Engine;
use berth_cri::stream::backend::{Duplex, ExecSpec, Session, StreamBackend, StreamOpts};
use berth_cri::stream::{self, StreamRequest};
use berth_cri::{CriError, CriResult};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A "process" that answers `got:<its first input>` and exits 3.
struct Stand;

impl StreamBackend for Stand {
    async fn exec(&self, _spec: ExecSpec) -> CriResult<Session> {
        let (mut in_r, in_w) = tokio::io::simplex(4096);
        let (out_r, mut out_w) = tokio::io::simplex(4096);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let n = in_r.read(&mut buf).await.unwrap_or(0);
            let _ = out_w.write_all(b"got:").await;
            let _ = out_w.write_all(&buf[..n]).await;
            drop(out_w);
            let _ = tx.send(3);
        });
        Ok(Session {
            stdin: Some(Box::new(in_w)),
            stdout: Some(Box::new(out_r)),
            stderr: None,
            resize: None,
            exit: Box::pin(async move { rx.await.ok() }),
        })
    }
    async fn attach(&self, _id: &str, _o: StreamOpts) -> CriResult<Session> {
        Err(CriError::Unimplemented("attach"))
    }
    async fn port_forward(&self, _pod: &str, _port: u16) -> CriResult<Box<dyn Duplex>> {
        Err(CriError::Unimplemented("port_forward"))
    }
}

/// A masked client frame (payload under 126 bytes).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one server frame: (opcode, payload).
async fn server_frame(s: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await.expect("frame header");
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let len = match h[1] & 0x7f {
        126 => usize::from(s.read_u16().await.expect("len")),
        127 => s.read_u64().await.expect("len") as usize,
        n => usize::from(n),
    };
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.expect("payload");
    (h[0] & 0x0f, p)
}

async fn exec_over(protocol: &str) {
    let (listener, streaming) = stream::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(stream::serve(
        listener,
        streaming.clone(),
        Arc::new(Stand),
        std::future::pending(),
    ));
    let opts = StreamOpts {
        stdin: true,
        stdout: true,
        ..Default::default()
    };
    let url = streaming
        .url(StreamRequest::Exec(ExecSpec {
            container_id: "c".into(),
            cmd: vec!["x".into()],
            opts,
        }))
        .expect("url");
    let path = url.split_once(&addr.to_string()).expect("our address").1;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.expect("response"));
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(
        head.contains(&format!("sec-websocket-protocol: {protocol}")),
        "{head}"
    );
    let base64 = protocol.contains("base64");
    let stdin = if base64 {
        let mut m = b"0".to_vec();
        m.extend(
            base64::engine::general_purpose::STANDARD
                .encode("ping")
                .bytes(),
        );
        client_frame(0x1, &m)
    } else {
        client_frame(0x2, b"\x00ping")
    };
    s.write_all(&stdin).await.expect("stdin");
    let mut channels: [Vec<u8>; 5] = Default::default();
    loop {
        let (op, p) = server_frame(&mut s).await;
        if op == 0x8 {
            break;
        }
        let Some((&ch, rest)) = p.split_first() else {
            continue;
        };
        let (ch, data) = if base64 {
            let d = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .expect("base64");
            (ch - b'0', d)
        } else {
            (ch, rest.to_vec())
        };
        channels[usize::from(ch)].extend(data);
    }
    assert_eq!(channels[1], b"got:ping");
    let status: serde_json::Value = serde_json::from_slice(&channels[3]).expect("status");
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");
    server.abort();
}

#[tokio::test]
async fn exec_streams_over_binary_websocket_channels() {
    exec_over("v4.channel.k8s.io").await;
}

#[tokio::test]
async fn exec_streams_over_base64_websocket_channels() {
    exec_over("v4.base64.channel.k8s.io").await;
}
