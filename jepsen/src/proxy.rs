//! A TCP proxy between the clients and the server, so the nemesis can cut
//! every client connection at once, at any point of a transaction
//! (including while COMMIT is in flight).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Most proxied connections at once; more are refused (clients retry).
const CONNECTIONS_MAX: usize = 1024;

pub struct Proxy {
    pub port: u16,
    connections: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    accept_task: AbortHandle,
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to `upstream_port`.
    pub async fn start(upstream_port: u16) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections: Arc<Mutex<HashMap<u64, AbortHandle>>> = Arc::default();
        let conns = connections.clone();
        let next_id = AtomicU64::new(0);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let conns2 = conns.clone();
                // Registered under the lock the task's own removal takes, so
                // a connection that ends at once leaves no stale entry.
                let Ok(mut registry) = conns.lock() else {
                    continue;
                };
                if registry.len() >= CONNECTIONS_MAX {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream_port)).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    if let Ok(mut c) = conns2.lock() {
                        c.remove(&id);
                    }
                });
                registry.insert(id, task.abort_handle());
            }
        });
        Ok(Proxy {
            port,
            connections,
            accept_task: accept.abort_handle(),
        })
    }

    /// Drops every open connection (both sockets close); returns how many.
    pub fn cut_all(&self) -> usize {
        let Ok(mut c) = self.connections.lock() else {
            return 0;
        };
        let n = c.len();
        for (_, h) in c.drain() {
            h.abort();
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut_all();
    }
}
