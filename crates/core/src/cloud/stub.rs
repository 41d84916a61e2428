//! Test only: a stub of EKS's REST-JSON API on 127.0.0.1 for the real SDK, recording every
//! request and answering from a routine (`x-amzn-errortype` from the answer's `__type`).

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the stub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Value,
}

pub type Answer = fn(&str, &str) -> (u16, Value);

/// Serves EKS's REST-JSON on 127.0.0.1 until dropped; every request is recorded.
pub struct Stub {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn stub(answer: Answer) -> Stub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Headers, then `content-length` bytes of body; the SDK keeps connections
                    // alive, so several requests may come on one.
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = &buf[head_end..head_end + length];
                    let mut first = head.lines().next().unwrap_or_default().split(' ');
                    let method = first.next().unwrap_or_default().to_string();
                    let path = first.next().unwrap_or_default().to_string();
                    log.lock().unwrap().push(Seen {
                        method: method.clone(),
                        path: path.clone(),
                        body: serde_json::from_slice(body).unwrap_or(Value::Null),
                    });
                    let (status, reply) = answer(&method, &path);
                    let text = reply.to_string();
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                        text.len()
                    );
                    if let Some(kind) = reply.get("__type").and_then(Value::as_str) {
                        out.push_str(&format!("x-amzn-errortype: {kind}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&text);
                    if socket.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                    buf.drain(..head_end + length);
                }
            });
        }
    });
    Stub { url, seen, task }
}

pub fn eks(url: &str) -> aws_sdk_eks::Client {
    let config = aws_sdk_eks::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(url)
        .build();
    aws_sdk_eks::Client::from_conf(config)
}
