//! Serving an axum router on a loopback port, over plain HTTP or TLS, until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running server: its address, and a handle that stops it when dropped or signalled.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Server {
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `127.0.0.1:port` (0 picks a free port) and serves `router`, with TLS when `tls` is set.
pub async fn serve(
    router: axum::Router,
    port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Server> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let (shutdown, mut stopped) = watch::channel(false);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(_) => continue,
                },
                _ = stopped.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            let acceptor = acceptor.clone();
            let mut conn_stop = stopped.clone();
            tokio::spawn(async move {
                let builder = Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls_stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let conn = builder
                            .serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                        tokio::select! { _ = conn => {}, _ = conn_stop.changed() => {} }
                    }
                    None => {
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        tokio::select! { _ = conn => {}, _ = conn_stop.changed() => {} }
                    }
                }
            });
        }
    });
    Ok(Server { addr, shutdown })
}
