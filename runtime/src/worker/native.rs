//! `_amber`: how Python reaches the calling transaction from the worker
//! process. Reads are requests to the server; writes are buffered and sent
//! with the next request (or with the end of the call), so a call that
//! reads only what came with it costs no round trip. The server checks
//! every key and value; nothing here is trusted.

use crate::protocol::{self, FromWorker, KeyValue, Op, Reply, ToWorker, Write};
use rustpython_vm::{
    builtins::{PyBytesRef, PyStrRef},
    AsObject, PyObjectRef, PyResult, VirtualMachine,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::unix::net::UnixStream;

/// Buffered writes are sent once they reach this many bytes (or
/// [`WRITES_BUFFERED_MAX`] writes), so a call creating a million objects
/// holds a bounded buffer.
const WRITE_BYTES_BUFFERED_MAX: usize = 4 << 20;
const WRITES_BUFFERED_MAX: usize = 4096;
/// Object ids fetched per request.
const OIDS_PER_REQUEST: u32 = 64;

struct Conn {
    sock: UnixStream,
    writes: Vec<Write>,
    write_bytes: usize,
    /// Values the server read for this call before it started.
    prefetched: HashMap<Vec<u8>, Option<String>>,
    oids: Vec<u64>,
    in_call: bool,
}

thread_local! {
    static CONN: RefCell<Option<Conn>> = const { RefCell::new(None) };
}

pub fn connect(sock: UnixStream) {
    CONN.with(|c| {
        *c.borrow_mut() = Some(Conn {
            sock,
            writes: Vec::new(),
            write_bytes: 0,
            prefetched: HashMap::new(),
            oids: Vec::new(),
            in_call: false,
        })
    });
}

/// Sends a message to the server (outside a request: Ready, Done, ...).
pub fn send(msg: &FromWorker) -> std::io::Result<()> {
    CONN.with(|c| {
        let mut c = c.borrow_mut();
        let conn = c.as_mut().ok_or(std::io::ErrorKind::NotConnected)?;
        protocol::send(&mut conn.sock, msg)
    })
}

pub fn begin_call(prefetched: Vec<KeyValue>) {
    CONN.with(|c| {
        if let Some(conn) = c.borrow_mut().as_mut() {
            conn.prefetched = prefetched.into_iter().collect();
            conn.writes.clear();
            conn.write_bytes = 0;
            conn.in_call = true;
        }
    });
}

/// The call's writes not yet sent; ends the call.
pub fn end_call() -> Vec<Write> {
    CONN.with(|c| match c.borrow_mut().as_mut() {
        Some(conn) => {
            conn.in_call = false;
            conn.prefetched.clear();
            conn.write_bytes = 0;
            std::mem::take(&mut conn.writes)
        }
        None => Vec::new(),
    })
}

fn no_call(vm: &VirtualMachine) -> rustpython_vm::builtins::PyBaseExceptionRef {
    vm.new_runtime_error("no transaction: persistent objects are only reachable inside a call")
}

/// Sends the buffered writes and `op`; returns the server's reply. A
/// broken connection ends the process: the server has given up on us.
fn request(vm: &VirtualMachine, op: Op) -> PyResult<Reply> {
    CONN.with(|c| {
        let mut c = c.borrow_mut();
        let conn = c.as_mut().ok_or_else(|| no_call(vm))?;
        if !conn.in_call {
            return Err(no_call(vm));
        }
        let writes = std::mem::take(&mut conn.writes);
        conn.write_bytes = 0;
        if protocol::send(&mut conn.sock, &FromWorker::Request { writes, op }).is_err() {
            std::process::exit(super::EXIT_FAILED);
        }
        match protocol::recv::<ToWorker>(&mut conn.sock) {
            Ok(ToWorker::Reply(Reply::Error { sqlstate, message })) => {
                let exc = vm.new_runtime_error(message);
                exc.as_object()
                    .set_attr("sqlstate", vm.ctx.new_str(sqlstate), vm)?;
                Err(exc)
            }
            Ok(ToWorker::Reply(r)) => Ok(r),
            _ => std::process::exit(super::EXIT_FAILED),
        }
    })
}

fn unexpected(vm: &VirtualMachine) -> rustpython_vm::builtins::PyBaseExceptionRef {
    vm.new_runtime_error("unexpected reply from the server")
}

fn buffer(vm: &VirtualMachine, write: Write) -> PyResult<()> {
    let full =
        CONN.with(|c| -> PyResult<bool> {
            let mut c = c.borrow_mut();
            let conn = c.as_mut().ok_or_else(|| no_call(vm))?;
            if !conn.in_call {
                return Err(no_call(vm));
            }
            let (key, size) = match &write {
                Write::Put(k, v) => (k, k.len() + v.len()),
                Write::Delete(k) => (k, k.len()),
            };
            // A later read of this key must see the write, not the prefetch.
            conn.prefetched.remove(key);
            conn.write_bytes += size;
            conn.writes.push(write);
            Ok(conn.write_bytes >= WRITE_BYTES_BUFFERED_MAX
                || conn.writes.len() >= WRITES_BUFFERED_MAX)
        })?;
    if full {
        match request(vm, Op::Flush)? {
            Reply::Value(_) => {}
            _ => return Err(unexpected(vm)),
        }
    }
    Ok(())
}

fn native_get(key: PyBytesRef, vm: &VirtualMachine) -> PyResult<Option<String>> {
    let cached = CONN.with(|c| {
        c.borrow()
            .as_ref()
            .and_then(|conn| conn.prefetched.get(key.as_bytes()).cloned())
    });
    if let Some(v) = cached {
        return Ok(v);
    }
    match request(vm, Op::Get(key.as_bytes().to_vec()))? {
        Reply::Value(v) => Ok(v),
        _ => Err(unexpected(vm)),
    }
}

fn native_put(key: PyBytesRef, value: PyStrRef, vm: &VirtualMachine) -> PyResult<()> {
    let value = value
        .to_str()
        .ok_or_else(|| vm.new_value_error("stored values must be valid UTF-8"))?;
    buffer(vm, Write::Put(key.as_bytes().to_vec(), value.to_owned()))
}

fn native_delete(key: PyBytesRef, vm: &VirtualMachine) -> PyResult<()> {
    buffer(vm, Write::Delete(key.as_bytes().to_vec()))
}

fn native_scan(prefix: PyBytesRef, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
    let rows = match request(vm, Op::Scan(prefix.as_bytes().to_vec()))? {
        Reply::Rows(r) => r,
        _ => return Err(unexpected(vm)),
    };
    Ok(key_value_list(rows, vm))
}

fn native_index_scan(
    class_id: u64,
    index_id: u64,
    values: PyStrRef,
    vm: &VirtualMachine,
) -> PyResult<PyObjectRef> {
    let op = Op::IndexScan {
        class_id,
        index_id,
        values_json: values.to_string_lossy().into_owned(),
    };
    let rows = match request(vm, op)? {
        Reply::Rows(r) => r,
        _ => return Err(unexpected(vm)),
    };
    Ok(key_value_list(rows, vm))
}

/// `[(key, value), ...]` as Python sees a scan's rows.
fn key_value_list(rows: Vec<(Vec<u8>, String)>, vm: &VirtualMachine) -> PyObjectRef {
    let items: Vec<PyObjectRef> = rows
        .into_iter()
        .map(|(k, v)| {
            vm.new_tuple((vm.ctx.new_bytes(k), vm.ctx.new_str(v)))
                .into()
        })
        .collect();
    vm.ctx.new_list(items).into()
}

fn native_new_oid(vm: &VirtualMachine) -> PyResult<u64> {
    let next = CONN.with(|c| c.borrow_mut().as_mut().and_then(|conn| conn.oids.pop()));
    if let Some(oid) = next {
        return Ok(oid);
    }
    let mut oids = match request(vm, Op::NewOids(OIDS_PER_REQUEST))? {
        Reply::Oids(o) if !o.is_empty() => o,
        _ => return Err(unexpected(vm)),
    };
    // Handed out in ascending order.
    oids.reverse();
    let first = oids.pop().ok_or_else(|| unexpected(vm))?;
    CONN.with(|c| {
        if let Some(conn) = c.borrow_mut().as_mut() {
            conn.oids = oids;
        }
    });
    Ok(first)
}

fn native_sql(query: PyStrRef, params: PyStrRef, vm: &VirtualMachine) -> PyResult<String> {
    // The statement may change anything this call read: nothing prefetched
    // is current any more.
    CONN.with(|c| {
        if let Some(conn) = c.borrow_mut().as_mut() {
            conn.prefetched.clear();
        }
    });
    let op = Op::Sql {
        query: query.to_string_lossy().into_owned(),
        params_json: params.to_string_lossy().into_owned(),
    };
    match request(vm, op)? {
        Reply::Sql(rows) => Ok(rows),
        _ => Err(unexpected(vm)),
    }
}

pub fn install(vm: &VirtualMachine) -> PyResult<()> {
    let dict = vm.ctx.new_dict();
    dict.set_item("get", vm.new_function("get", native_get).into(), vm)?;
    dict.set_item("put", vm.new_function("put", native_put).into(), vm)?;
    dict.set_item(
        "delete",
        vm.new_function("delete", native_delete).into(),
        vm,
    )?;
    dict.set_item("scan", vm.new_function("scan", native_scan).into(), vm)?;
    dict.set_item(
        "index_scan",
        vm.new_function("index_scan", native_index_scan).into(),
        vm,
    )?;
    dict.set_item(
        "new_oid",
        vm.new_function("new_oid", native_new_oid).into(),
        vm,
    )?;
    dict.set_item("sql", vm.new_function("sql", native_sql).into(), vm)?;
    dict.set_item(
        "dumps",
        vm.new_function("dumps", super::dumps::native_dumps).into(),
        vm,
    )?;
    let module = vm.new_module("_amber", dict, None);
    vm.sys_module
        .get_attr("modules", vm)?
        .set_item("_amber", module.into(), vm)?;
    Ok(())
}
