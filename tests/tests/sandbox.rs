//! The sandbox-escape suite: procedures that try to reach the host, the
//! catalog, other modules' data, the server's memory or its time, or to
//! leave state behind for later calls. Each attack asserts its own outcome
//! (the error and SQLSTATE a user sees, or a harmless result), and after
//! each one another session checks that the server answers and committed
//! data are intact.

use super::{code, connect, deploy};
use amber_tests::Server;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const VAULT: &str = r#"
import amber
from amber import Persistent

class Safe(Persistent):
    owner: str
    balance: int = 0

def total() -> int:
    return sum(s.balance for s in Safe.all())

def first_key() -> bytes:
    s = min(Safe.all(), key=lambda s: s.id)
    return amber._oid_key(Safe.__amber__.cid, s.id)
"#;

/// One function per attack. Module state used by the state attacks is
/// un-annotated on purpose (not persistent).
const ATTACK: &str = r#"
import typing, json, math, decimal, re
import amber
from amber import Persistent

class Thing(Persistent):
    n: int = 0
    price: decimal.Decimal | None = None

seen = []
class Counter:
    hits = 0

def _sys():
    return typing.sys

def read_etc_passwd() -> str:
    return open('/etc/passwd').read()

def io_open() -> str:
    return _sys().modules['io'].open('/etc/passwd').read()

def underscore_io_fileio() -> str:
    return _sys().modules['_io'].FileIO('/etc/passwd').read()

def real_fileio() -> str:
    return str(_sys().modules['io'].FileIO('/etc/passwd').read())

def proc_environ() -> str:
    return str(_sys().modules['io'].FileIO('/proc/self/environ').read())

def proc_cmdline() -> str:
    return str(_sys().modules['io'].FileIO('/proc/self/cmdline').read())

def subclasses_walk() -> str:
    for c in object.__subclasses__():
        if c.__name__ == 'FileIO':
            return str(c('/etc/passwd').read())
    return 'none'

def traceback_from_passwd() -> str:
    code = compile("def f():\n    raise ValueError('boom')\nf()\n", '/etc/passwd', 'exec')
    exec(code, {})
    return 'unreachable'

def code_replace() -> str:
    def f():
        raise ValueError('boom')
    f.__code__ = f.__code__.replace(co_filename='/etc/passwd')
    f()
    return 'unreachable'

def code_type_new() -> str:
    c = (lambda: 1).__code__
    t = type(c)
    t(0, 0, 0, 0, 0, 0, b'', (), (), (), '', '', '', 1, b'', b'', (), ())
    return 'made a code object'

def marshal_loads() -> str:
    _sys().modules['marshal'].loads(b'\xe3')
    return 'loaded'

def stdin_readline() -> str:
    return repr(_sys().stdin.readline())

def builtin_input() -> str:
    return input()

def print_to_log() -> str:
    print('AMBER-SANDBOX-MARKER printed')
    _sys().__stderr__.write('AMBER-SANDBOX-MARKER stderr\n')
    _sys().stdout.write('AMBER-SANDBOX-MARKER stdout\n')
    return 'printed'

def host_identity() -> str:
    s = _sys()
    return repr((s.argv, getattr(s, 'orig_argv', None), s.executable, s.path, s.prefix))

def environment() -> str:
    os = _sys().modules['os']
    return repr((dict(os.environ), os.getenv('HOME'), os.getenv('PATH')))

def os_system() -> str:
    os = _sys().modules['os']
    return str(os.system('touch /tmp/amber-sandbox-pwned'))

def os_listdir() -> str:
    return repr(_sys().modules['posix'].listdir('/'))

def import_socket() -> str:
    import socket
    return 'imported'

def import_underscore_socket() -> str:
    import _socket
    return 'imported'

def import_subprocess() -> str:
    import subprocess
    return 'imported'

def import_sys() -> str:
    import sys
    return 'imported'

def import_spoofed_globals() -> str:
    m = __import__('sys', {'__name__': 'x'})
    return 'imported ' + m.__name__

def import_globals_of_import() -> str:
    return repr(__import__.__globals__)

def import_after_editing_deployed() -> str:
    import builtins
    builtins.__amber_deployed__.add('sys')
    import sys
    return 'imported'

def import_relative() -> str:
    from . import secrets
    return 'imported'

def thread_start() -> str:
    t = _sys().modules.get('_thread')
    box = []
    try:
        t.start_new_thread(box.append, (1,))
    except Exception:
        return 'refused'
    # A stub that runs the function inline is no thread.
    return 'inline' if box == [1] else 'concurrent'

def signal_ignore_interrupts() -> str:
    sig = _sys().modules.get('_signal')
    if sig is not None:
        sig.signal(10, sig.SIG_IGN)
    while True:
        pass

def raw_catalog_write() -> str:
    amber._amber.put(b"c\x00m\x00zz", "x")
    return 'wrote'

def raw_catalog_read() -> str:
    return str(amber._amber.get(b"c\x00m\x00vault"))

def raw_catalog_scan() -> str:
    return str(amber._amber.scan(b"c"))

def raw_oid_high_water() -> str:
    amber._amber.put(b"s\x00oid", "1")
    return 'wrote'

def raw_other_module_object(key: bytes) -> str:
    amber._amber.put(key, '{"owner":"mallory","balance":1000000}')
    return 'wrote'

def raw_other_module_delete(key: bytes) -> str:
    amber._amber.delete(key)
    return 'deleted'

def raw_other_module_read(key: bytes) -> str:
    return str(amber._amber.get(key))

def raw_forged_oid() -> str:
    key = amber._oid_key(Thing.__amber__.cid, 10**15)
    amber._amber.put(key, '{"n":1,"price":null}')
    return 'wrote'

def raw_garbage_value() -> str:
    t = Thing(n=1)
    amber._flush_objects()
    amber._amber.put(amber._oid_key(Thing.__amber__.cid, t.id), 'not json')
    return 'wrote'

def raw_wrong_type() -> str:
    t = Thing(n=1)
    amber._flush_objects()
    amber._amber.put(amber._oid_key(Thing.__amber__.cid, t.id), '{"n":"x","price":null}')
    return 'wrote'

def raw_error_swallowed() -> str:
    try:
        amber._amber.put(b"c\x00m\x00zz", "x")
        amber._amber.get(b"o")
    except Exception:
        pass
    Thing(n=77)
    return 'swallowed'

def exponent_decimal() -> int:
    return Thing(n=5, price=decimal.Decimal('1E+3')).id

def frames_reach_prelude() -> str:
    f = _sys()._getframe()
    while f.f_back is not None:
        f = f.f_back
    g = f.f_globals
    g['_amber'].put(b"c\x00m\x00zz", "x")
    return 'wrote'

def gc_objects() -> str:
    gc = _sys().modules['gc']
    for o in gc.get_objects():
        if type(o).__name__ == '_CallState':
            o.snap.clear()
    return 'walked'

def monkeypatch_json() -> str:
    json.dumps = lambda *a, **k: 'PATCHED'
    return json.dumps(1)

def check_json() -> str:
    return json.dumps([1])

def monkeypatch_amber() -> str:
    amber._flush_objects = lambda: None
    return 'patched'

def check_amber_flush() -> int:
    return Thing(n=42).id

def monkeypatch_builtins() -> str:
    import builtins
    builtins.len = lambda x: -1
    return str(len([1]))

def check_builtins() -> str:
    return str(len([1, 2]))

def monkeypatch_modules() -> str:
    _sys().modules['math'] = None
    return 'patched'

def check_modules() -> str:
    import math
    return str(math.floor(2.5))

def append_global(x: int) -> int:
    seen.append(x)
    return len(seen)

def append_then_fail(x: int) -> int:
    seen.append(x)
    raise ValueError('rolled back')

def class_attribute() -> int:
    Counter.hits += 1
    return Counter.hits

def bomb_bytes() -> int:
    return len(bytes(10**13))

def bomb_str() -> int:
    return len('x' * 10**10)

def bomb_list() -> int:
    xs = []
    while True:
        xs.append([0] * 10**6)

def recursion() -> int:
    def f(n):
        return f(n + 1)
    return f(0)

def deep_literal() -> int:
    return len(repr(eval('[' * 100000 + ']' * 100000)))

def base_exception_loop() -> int:
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass

def native_bigint() -> int:
    return len(str(10**10**8))

def native_regex() -> int:
    return 1 if re.match('(a+)+$', 'a' * 64 + 'b') else 0

def quick() -> int:
    return 1

def huge_result() -> str:
    return 'x' * (300 << 20)
"#;

#[derive(Debug)]
enum Expect {
    /// The call fails with this SQLSTATE.
    Fails(&'static str),
    /// The call fails with this SQLSTATE and the message or detail does
    /// not contain this text.
    FailsWithout(&'static str, &'static str),
    /// The call returns text that does not contain any of these.
    ReturnsWithout(&'static [&'static str]),
    /// The call returns exactly this text.
    Returns(&'static str),
}

/// Two sessions (the attacker's and an observer's) on a server with the
/// vault's committed data and the attack module deployed.
async fn vault_and_attack(server: &Server) -> (Client, Client) {
    let client = connect(server).await;
    let observer = connect(server).await;
    deploy(&client, "vault", VAULT).await;
    client
        .batch_execute("INSERT INTO vault.safe (owner, balance) VALUES ('ada', 1000), ('bob', 500)")
        .await
        .unwrap();
    deploy(&client, "attack", ATTACK).await;
    (client, observer)
}

async fn intact(observer: &Client) {
    let total: i64 = observer
        .query_one("SELECT vault.total()", &[])
        .await
        .expect("the server answers another session")
        .get(0);
    assert_eq!(total, 1500, "committed data intact");
    let n: i64 = observer
        .query_one("SELECT count(*) FROM vault.safe", &[])
        .await
        .expect("the vault table is readable")
        .get(0);
    assert_eq!(n, 2);
}

async fn attempt(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<String, tokio_postgres::Error> {
    client.query_one(sql, params).await.map(|r| {
        r.try_get::<_, String>(0)
            .or_else(|_| r.try_get::<_, i64>(0).map(|n| n.to_string()))
            .unwrap_or_default()
    })
}

fn check(name: &str, outcome: &Result<String, tokio_postgres::Error>, expect: &Expect) {
    match (outcome, expect) {
        (Err(e), Expect::Fails(state)) => assert_eq!(&code(e), state, "{name}: {e:?}"),
        (Err(e), Expect::FailsWithout(state, text)) => {
            assert_eq!(&code(e), state, "{name}: {e:?}");
            let db = e.as_db_error().expect("db error");
            let shown = format!("{} {}", db.message(), db.detail().unwrap_or(""));
            assert!(!shown.contains(text), "{name} leaked {text:?}: {shown}");
        }
        (Ok(v), Expect::ReturnsWithout(texts)) => {
            for t in *texts {
                assert!(!v.contains(t), "{name} leaked {t:?}: {v}");
            }
        }
        (Ok(v), Expect::Returns(want)) => assert_eq!(v, want, "{name}"),
        (other, _) => panic!("{name}: expected {expect:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_escapes_fail_and_harm_no_one() {
    let server = Server::start_captured();
    let (client, observer) = vault_and_attack(&server).await;
    let binary = amber_tests::amber_binary();
    let binary = binary.to_str().expect("utf-8 path").to_string();
    let data = server.data.to_str().expect("utf-8 path").to_string();
    let leaks: &'static [&'static str] = Box::leak(
        vec![
            Box::leak(binary.into_boxed_str()) as &str,
            Box::leak(data.into_boxed_str()) as &str,
            "root:x:0",
            "PATH=",
        ]
        .into_boxed_slice(),
    );
    use Expect::*;
    let attacks: Vec<(&str, Expect)> = vec![
        // Files, through every object that can open one.
        ("read_etc_passwd", Fails("P0001")),
        ("io_open", Fails("P0001")),
        ("underscore_io_fileio", Fails("P0001")),
        ("real_fileio", Fails("P0001")),
        ("proc_environ", Fails("P0001")),
        ("proc_cmdline", Fails("P0001")),
        ("subclasses_walk", FailsWithout("XX000", "root:x:0")),
        // Tracebacks and code objects.
        ("traceback_from_passwd", FailsWithout("P0001", "root:x:0")),
        ("code_replace", FailsWithout("P0001", "root:x:0")),
        ("code_type_new", Fails("P0001")),
        ("marshal_loads", Fails("P0001")),
        // The server's own process state.
        ("stdin_readline", Returns("''")),
        ("builtin_input", Fails("P0001")),
        ("print_to_log", Returns("printed")),
        ("host_identity", ReturnsWithout(leaks)),
        ("environment", ReturnsWithout(leaks)),
        // Sockets, processes, threads.
        ("os_system", Fails("P0001")),
        ("os_listdir", Fails("P0001")),
        ("import_socket", Fails("P0001")),
        ("import_underscore_socket", Fails("P0001")),
        ("import_subprocess", Fails("P0001")),
        ("thread_start", ReturnsWithout(&["concurrent"])),
        // The import allow-list.
        ("import_sys", Fails("P0001")),
        ("import_spoofed_globals", Fails("P0001")),
        ("import_globals_of_import", Fails("P0001")),
        ("import_after_editing_deployed", Fails("P0001")),
        ("import_relative", Fails("P0001")),
        // Raw keys: the catalog, the id allocator, other modules' objects.
        ("raw_catalog_write", Fails("42501")),
        ("raw_catalog_read", Fails("42501")),
        ("raw_catalog_scan", Fails("42501")),
        ("raw_oid_high_water", Fails("42501")),
        ("raw_forged_oid", Fails("42501")),
        ("raw_garbage_value", Fails("22P02")),
        ("raw_wrong_type", Fails("22P02")),
        ("raw_error_swallowed", Fails("42501")),
        ("frames_reach_prelude", Fails("42501")),
        ("gc_objects", Returns("walked")),
        // Memory and recursion.
        ("bomb_bytes", Fails("53200")),
        ("bomb_str", Fails("53200")),
        ("bomb_list", Fails("53200")),
        ("recursion", Fails("P0001")),
    ];
    assert!(attacks.len() >= 40);
    for (name, expect) in &attacks {
        let outcome = attempt(&client, &format!("SELECT attack.{name}()"), &[]).await;
        check(name, &outcome, expect);
        intact(&observer).await;
    }
    // A deep literal fails the call (RecursionError, or a stack overflow
    // that ends only the call's process), never the server.
    let deep = attempt(&client, "SELECT attack.deep_literal()", &[]).await;
    assert!(deep.is_err(), "deep_literal: {deep:?}");
    intact(&observer).await;
    assert!(
        !server.log_text().contains("AMBER-SANDBOX-MARKER"),
        "procedure output reached the server's log"
    );
    assert!(!std::path::Path::new("/tmp/amber-sandbox-pwned").exists());

    // Other modules' objects, by raw key.
    let hex: String = observer
        .query_one("SELECT encode(vault.first_key(), 'hex')", &[])
        .await
        .expect("the vault's own procedure reads its key")
        .get(0);
    let safe_key: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(safe_key.len(), 17, "an object key");
    for f in [
        "raw_other_module_object",
        "raw_other_module_delete",
        "raw_other_module_read",
    ] {
        let outcome = attempt(&client, &format!("SELECT attack.{f}($1)"), &[&safe_key]).await;
        check(f, &outcome, &Fails("42501"));
        intact(&observer).await;
    }

    // A value Python spells differently is stored in SQL's form.
    let id: i64 = client
        .query_one("SELECT attack.exponent_decimal()", &[])
        .await
        .unwrap()
        .get(0);
    let rows = client
        .simple_query(&format!("SELECT price FROM attack.thing WHERE id = {id}"))
        .await
        .unwrap();
    let price = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(price.as_deref(), Some("1000"));
    let rows = client
        .query("SELECT * FROM attack.thing", &[])
        .await
        .unwrap();
    assert!(!rows.is_empty(), "the class stays readable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_leaves_state_for_the_next() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy(&client, "attack", ATTACK).await;
    // Each check runs many times, so that every worker runs it after the
    // patching call.
    let pairs = [
        ("monkeypatch_json", "check_json", "[1]"),
        ("monkeypatch_builtins", "check_builtins", "2"),
        ("monkeypatch_modules", "check_modules", "2"),
    ];
    for (patch, check_fn, want) in pairs {
        let _ = attempt(&client, &format!("SELECT attack.{patch}()"), &[]).await;
        for _ in 0..6 {
            let got = attempt(&client, &format!("SELECT attack.{check_fn}()"), &[])
                .await
                .unwrap_or_else(|e| panic!("{check_fn}: {e}"));
            assert_eq!(got, want, "{check_fn} after {patch}");
        }
    }
    // A patched flush does not stop later calls from storing objects.
    attempt(&client, "SELECT attack.monkeypatch_amber()", &[])
        .await
        .unwrap();
    let id = attempt(&client, "SELECT attack.check_amber_flush()", &[])
        .await
        .unwrap();
    let n: i64 = client
        .query_one(
            "SELECT n FROM attack.thing WHERE id = $1",
            &[&id.parse::<i64>().unwrap()],
        )
        .await
        .expect("the object was stored")
        .get(0);
    assert_eq!(n, 42);
    // Un-annotated globals and class attributes start over in every call,
    // committed or rolled back.
    for x in 0..6i64 {
        let len = attempt(&client, "SELECT attack.append_global($1)", &[&x])
            .await
            .unwrap();
        assert_eq!(len, "1", "seen.append({x})");
        let e = attempt(&client, "SELECT attack.append_then_fail($1)", &[&x])
            .await
            .unwrap_err();
        assert_eq!(code(&e), "P0001");
        let hits = attempt(&client, "SELECT attack.class_attribute()", &[])
            .await
            .unwrap();
        assert_eq!(hits, "1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_end_any_call_in_bounded_time() {
    let server = Server::start();
    let (client, observer) = vault_and_attack(&server).await;
    client
        .batch_execute("SET statement_timeout = 300")
        .await
        .unwrap();
    // Loops that catch the interrupt, native work that never checks for
    // it, a handler that ignores the interrupt signal: all end within the
    // kill grace (1 s) past the deadline, plus scheduling.
    for f in [
        "base_exception_loop",
        "native_bigint",
        "native_regex",
        "signal_ignore_interrupts",
    ] {
        let started = Instant::now();
        let e = attempt(&client, &format!("SELECT attack.{f}()"), &[])
            .await
            .unwrap_err();
        assert_eq!(code(&e), "57014", "{f}: {e:?}");
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(300 + 2_000 + 1_500),
            "{f} took {took:?}"
        );
        intact(&observer).await;
    }
    // No interrupt outlives its call: quick calls right after are never
    // cancelled.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    for _ in 0..30 {
        assert_eq!(
            attempt(&client, "SELECT attack.quick()", &[])
                .await
                .unwrap(),
            "1"
        );
    }
    // Cancel reaches a call that catches everything.
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    let started = Instant::now();
    let e = attempt(&client, "SELECT attack.base_exception_loop()", &[])
        .await
        .unwrap_err();
    canceller.await.unwrap().expect("cancel sent");
    assert_eq!(code(&e), "57014");
    assert!(started.elapsed() < Duration::from_secs(5));
    intact(&observer).await;

    // A module whose top-level code never ends: the deploy is cancelled by
    // statement_timeout, and holds no lock meanwhile.
    client
        .batch_execute("SET statement_timeout = 1500")
        .await
        .unwrap();
    let slow = tokio::spawn({
        let conn = server.conn_string();
        async move {
            let (c, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.batch_execute("SET statement_timeout = 5000")
                .await
                .unwrap();
            c.batch_execute("CREATE MODULE forever AS $$\nwhile True:\n    pass\n$$")
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    observer
        .batch_execute("CREATE MODULE other AS $$\ndef f() -> int:\n    return 1\n$$")
        .await
        .expect("another deploy is not blocked");
    // Not blocked: it ends while the other module is still loading (that
    // one holds on for 5 s, until its statement_timeout).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a deploy waited {:?} for another one's module code",
        started.elapsed()
    );
    assert!(!slow.is_finished());
    let e = slow.await.unwrap().unwrap_err();
    assert_eq!(code(&e), "57014");
    let e = client
        .batch_execute("CREATE MODULE hog AS $$\nx = bytes(10**13)\n$$")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "53200");
    intact(&observer).await;

    // A result over the limit (256 MiB) fails the call with 54000.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let e = attempt(&client, "SELECT attack.huge_result()", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "54000", "{e:?}");
    intact(&observer).await;
}

const ATOMIC: &str = r#"
import amber
from amber import Persistent

class Row(Persistent):
    n: int

def insert_then_fail() -> str:
    try:
        amber.sql("INSERT INTO atomic.row (n) VALUES (1), (2), (NULL)")
    except Exception as e:
        caught = getattr(e, 'sqlstate', '?')
    else:
        caught = 'none'
    rows = amber.sql("SELECT count(*) FROM atomic.row")[0][0]
    return f"{caught} {rows}"

def slow_sql() -> int:
    return amber.sql("SELECT count(*) FROM generate_series(1, 100000000000)")[0][0]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amber_sql_statements_are_atomic_and_bounded() {
    let server = Server::start();
    let client = connect(&server).await;
    deploy(&client, "atomic", ATOMIC).await;
    // The failed statement leaves none of its rows, and the procedure,
    // which caught its error, goes on and commits.
    let got = attempt(&client, "SELECT atomic.insert_then_fail()", &[])
        .await
        .unwrap();
    assert_eq!(got, "23502 0");
    let n: i64 = client
        .query_one("SELECT count(*) FROM atomic.row", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // The statement runs under the call's deadline.
    client
        .batch_execute("SET statement_timeout = 300")
        .await
        .unwrap();
    let started = Instant::now();
    let e = attempt(&client, "SELECT atomic.slow_sql()", &[])
        .await
        .unwrap_err();
    assert_eq!(code(&e), "57014", "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
