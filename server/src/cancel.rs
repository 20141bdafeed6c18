//! Cancel requests: a registry from (backend pid, secret key) to the flag
//! that interrupts the session's running statement.

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::SecretKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Upper bound on registered connections (one entry per live connection).
const CONNECTIONS_MAX: usize = 100_000;

/// Backend pid -> (secret key bytes, the session's cancel flag).
type Sessions = HashMap<i32, (Vec<u8>, Arc<AtomicBool>)>;

#[derive(Default)]
pub struct CancelRegistry {
    sessions: Mutex<Sessions>,
    /// One generator for all connections, so backend pids are unique.
    pub keys: pgwire::api::RandomPidSecretKeyGenerator,
}

/// The key's bytes: protocol 3.0 sends an i32, 3.2 bytes; a cancel request
/// may arrive decoded either way.
fn key_bytes(key: &SecretKey) -> Vec<u8> {
    match key {
        SecretKey::I32(v) => v.to_be_bytes().to_vec(),
        SecretKey::Bytes(b) => b.to_vec(),
    }
}

impl CancelRegistry {
    pub fn register(&self, pid: i32, secret: SecretKey, flag: Arc<AtomicBool>) {
        if let Ok(mut m) = self.sessions.lock() {
            if m.len() < CONNECTIONS_MAX {
                m.insert(pid, (key_bytes(&secret), flag));
            }
        }
    }

    pub fn unregister(&self, pid: i32) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(&pid);
        }
    }
}

#[async_trait]
impl CancelHandler for CancelRegistry {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let Ok(m) = self.sessions.lock() else { return };
        // A wrong secret is ignored silently, as PostgreSQL does.
        if let Some((secret, flag)) = m.get(&request.pid) {
            if *secret == key_bytes(&request.secret_key) {
                tracing::info!(pid = request.pid, "cancel request");
                flag.store(true, Ordering::SeqCst);
            }
        }
    }
}
