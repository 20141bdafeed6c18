//! What pg_stat_activity shows: one entry per connected session (its
//! pid, client, application_name, state and current or last query), kept
//! by the engine and updated as each statement starts and ends.
//!
//! Bounded: an entry per connection (the server bounds connections) and
//! at most QUERY_BYTES_MAX of query text each (PostgreSQL's default
//! track_activity_query_size).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Bytes of a query's text kept (PostgreSQL's track_activity_query_size).
const QUERY_BYTES_MAX: usize = 1024;

/// One session as pg_stat_activity lists it. Times are microseconds
/// since the Unix epoch.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub pid: i32,
    pub application_name: String,
    pub client_addr: Option<String>,
    pub client_port: Option<i32>,
    pub backend_start_us: i64,
    pub xact_start_us: Option<i64>,
    pub query_start_us: Option<i64>,
    pub state_change_us: i64,
    pub state: &'static str,
    pub query: String,
}

#[derive(Debug, Default)]
pub struct Activity {
    backends: Mutex<BTreeMap<i32, Backend>>,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `text` cut to at most QUERY_BYTES_MAX bytes, on a character boundary.
fn truncated(text: &str) -> String {
    if text.len() <= QUERY_BYTES_MAX {
        return text.to_string();
    }
    let mut end = QUERY_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

impl Activity {
    fn with(&self, pid: i32, f: impl FnOnce(&mut Backend)) {
        if let Ok(mut b) = self.backends.lock() {
            if let Some(entry) = b.get_mut(&pid) {
                f(entry);
            }
        }
    }

    /// A session connected (after its startup settings).
    pub(crate) fn connect(
        &self,
        pid: i32,
        application_name: &str,
        client: Option<std::net::SocketAddr>,
    ) {
        let now = now_us();
        if let Ok(mut b) = self.backends.lock() {
            b.insert(
                pid,
                Backend {
                    pid,
                    application_name: truncated(application_name),
                    client_addr: client.map(|a| a.ip().to_string()),
                    client_port: client.map(|a| i32::from(a.port())),
                    backend_start_us: now,
                    xact_start_us: None,
                    query_start_us: None,
                    state_change_us: now,
                    state: "idle",
                    query: String::new(),
                },
            );
        }
    }

    pub(crate) fn disconnect(&self, pid: i32) {
        if let Ok(mut b) = self.backends.lock() {
            b.remove(&pid);
        }
    }

    /// A statement of `pid` started (`in_block`: inside BEGIN ... COMMIT).
    pub(crate) fn started(&self, pid: i32, query: &str, in_block: bool) {
        let now = now_us();
        self.with(pid, |e| {
            e.query = truncated(query);
            e.query_start_us = Some(now);
            if !in_block || e.xact_start_us.is_none() {
                e.xact_start_us = Some(now);
            }
            e.state = "active";
            e.state_change_us = now;
        });
    }

    /// The statement ended; the session is now in `state` (`idle`, `idle
    /// in transaction`, `idle in transaction (aborted)`), with its
    /// application_name (a SET may have changed it).
    pub(crate) fn finished(&self, pid: i32, state: &'static str, application_name: &str) {
        let now = now_us();
        self.with(pid, |e| {
            if state == "idle" {
                e.xact_start_us = None;
            }
            e.state = state;
            e.state_change_us = now;
            if e.application_name != application_name {
                e.application_name = truncated(application_name);
            }
        });
    }

    /// Every session, by pid.
    pub(crate) fn backends(&self) -> Vec<Backend> {
        self.backends
            .lock()
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default()
    }
}
