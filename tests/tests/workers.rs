//! Idle Python workers are stopped and started again by the next call,
//! which finds everything as it was.

use super::{connect, deploy};
use amber_tests::Server;
use std::time::{Duration, Instant};

const COUNTER: &str = r#"
hits: int = 0

def hit() -> int:
    global hits
    hits += 1
    return hits
"#;

/// The server's child processes (its Python workers).
fn workers(server: &Server) -> usize {
    let pid = server.pid().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...: comm may hold spaces, so split
            // after its closing parenthesis.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(|p| p == pid))
                .unwrap_or(false)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_stop_and_the_next_call_starts_one() {
    let server = Server::start_with_env(&[("AMBER_PYTHON_IDLE_SECS", "1")]);
    let c = connect(&server).await;
    deploy(&c, "ctr", COUNTER).await;
    assert_eq!(
        c.query_one("SELECT ctr.hit()", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1
    );
    assert!(workers(&server) >= 1, "a worker served the call");

    let deadline = Instant::now() + Duration::from_secs(10);
    while workers(&server) > 0 {
        assert!(
            Instant::now() < deadline,
            "idle workers still running after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The next call starts a worker; the module's state is the stored one.
    assert_eq!(
        c.query_one("SELECT ctr.hit()", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2
    );
    assert!(workers(&server) >= 1);
    assert_eq!(
        c.query_one("SELECT ctr.hit()", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        3
    );
}
