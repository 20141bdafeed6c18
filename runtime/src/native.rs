//! `_amber`: the native functions Python code uses to reach the calling
//! transaction. They read a thread-local context that the worker sets for
//! the duration of one call.

use crate::TxnHandle;
use amber_storage::{StorageError, Store};
use rustpython_vm::{
    builtins::{PyBytesRef, PyStrRef},
    AsObject, PyObjectRef, PyResult, VirtualMachine,
};
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

/// Runs SQL for `amber.sql()` inside the calling transaction.
pub trait SqlCallback: Send + Sync {
    /// `params_json` is a JSON array; returns a JSON array of row arrays, or
    /// (sqlstate, message).
    fn run(
        &self,
        sql: &str,
        params_json: &str,
        txn: &TxnHandle,
    ) -> std::result::Result<String, (String, String)>;
}

static SQL_CALLBACK: OnceLock<Arc<dyn SqlCallback>> = OnceLock::new();

pub fn set_sql_callback(cb: Arc<dyn SqlCallback>) {
    let _ = SQL_CALLBACK.set(cb);
}

pub struct CallContext {
    pub txn: TxnHandle,
    pub store: Store,
}

thread_local! {
    static CONTEXT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
}

pub fn set_context(ctx: CallContext) {
    CONTEXT.with(|c| *c.borrow_mut() = Some(ctx));
}

pub fn clear_context() {
    CONTEXT.with(|c| *c.borrow_mut() = None);
}

fn with_ctx<R>(
    vm: &VirtualMachine,
    f: impl FnOnce(&CallContext) -> Result<R, StorageError>,
) -> PyResult<R> {
    CONTEXT.with(|c| {
        let guard = c.borrow();
        let ctx = guard.as_ref().ok_or_else(|| {
            vm.new_runtime_error(
                "no transaction: persistent objects are only reachable inside a call",
            )
        })?;
        f(ctx).map_err(|e| vm.new_runtime_error(e.to_string()))
    })
}

fn lock(txn: &TxnHandle) -> Result<std::sync::MutexGuard<'_, amber_storage::Txn>, StorageError> {
    txn.lock()
        .map_err(|_| StorageError::Engine("transaction lock poisoned".into()))
}

fn native_get(key: PyBytesRef, vm: &VirtualMachine) -> PyResult<Option<String>> {
    let raw = with_ctx(vm, |ctx| lock(&ctx.txn)?.get(key.as_bytes()))?;
    match raw {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| vm.new_runtime_error("corrupt stored value")),
    }
}

fn native_put(key: PyBytesRef, value: PyStrRef, vm: &VirtualMachine) -> PyResult<()> {
    with_ctx(vm, |ctx| {
        lock(&ctx.txn)?.put(key.as_bytes(), value.to_string_lossy().as_bytes())
    })
}

fn native_delete(key: PyBytesRef, vm: &VirtualMachine) -> PyResult<()> {
    with_ctx(vm, |ctx| lock(&ctx.txn)?.delete(key.as_bytes()))
}

fn native_scan(prefix: PyBytesRef, vm: &VirtualMachine) -> PyResult<PyObjectRef> {
    let rows = with_ctx(vm, |ctx| lock(&ctx.txn)?.scan_prefix(prefix.as_bytes()))?;
    let mut items = Vec::with_capacity(rows.len());
    for (k, v) in rows {
        let v = String::from_utf8(v).map_err(|_| vm.new_runtime_error("corrupt stored value"))?;
        let pair = vm.new_tuple((vm.ctx.new_bytes(k), vm.ctx.new_str(v)));
        items.push(pair.into());
    }
    Ok(vm.ctx.new_list(items).into())
}

fn native_new_oid(vm: &VirtualMachine) -> PyResult<u64> {
    with_ctx(vm, |ctx| ctx.store.allocate_oid())
}

fn native_sql(query: PyStrRef, params: PyStrRef, vm: &VirtualMachine) -> PyResult<String> {
    let cb = SQL_CALLBACK
        .get()
        .ok_or_else(|| vm.new_runtime_error("amber.sql is not available"))?;
    let txn = CONTEXT.with(|c| c.borrow().as_ref().map(|ctx| ctx.txn.clone()));
    let txn = txn.ok_or_else(|| vm.new_runtime_error("no transaction"))?;
    cb.run(&query.to_string_lossy(), &params.to_string_lossy(), &txn)
        .map_err(|(state, msg)| {
            let exc = vm.new_runtime_error(msg);
            let _ = exc
                .as_object()
                .set_attr("sqlstate", vm.ctx.new_str(state), vm);
            exc
        })
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
        "new_oid",
        vm.new_function("new_oid", native_new_oid).into(),
        vm,
    )?;
    dict.set_item("sql", vm.new_function("sql", native_sql).into(), vm)?;
    let module = vm.new_module("_amber", dict, None);
    vm.sys_module
        .get_attr("modules", vm)?
        .set_item("_amber", module.into(), vm)?;
    Ok(())
}
