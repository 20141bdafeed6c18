//! `_amber.dumps`: the compact JSON of a value the prelude stores or
//! returns (an object's state, a module variable, a call's result), made
//! natively. RustPython's `json.dumps` with separators runs its pure
//! Python encoder, about 40 µs for a two-attribute state: most of what
//! loading an object cost (its state is encoded once when loaded, to
//! detect changes, and again at the end of the call).
//!
//! It takes exactly `None`, `bool`, `int`, finite `float`, `str`, `list`,
//! `tuple` and `dict` with `str` keys (no subclasses: their own methods
//! might say otherwise); for anything else it gives `None` and the prelude
//! uses `json.dumps`. The host parses and checks what it is given, so the
//! spelling (`1e300` for `1e+300`, UTF-8 for `\u00e9`) need not be
//! Python's; it is the same for equal values, which is what change
//! detection compares.

use rustpython_vm::{
    builtins::{PyDict, PyFloat, PyInt, PyList, PyStr, PyTuple},
    AsObject, PyObject, PyObjectRef, PyResult, VirtualMachine,
};
use std::fmt::Write as _;

/// Deepest nesting encoded natively (deeper: `json.dumps`, which has its
/// own recursion limit).
const DEPTH_MAX: usize = 64;

/// Longest text encoded natively; a larger value goes to `json.dumps`
/// (and then meets the limits on stored values and results).
const BYTES_MAX: usize = 64 << 20;

pub fn native_dumps(obj: PyObjectRef, vm: &VirtualMachine) -> PyResult<Option<String>> {
    let mut out = String::new();
    Ok(write(&obj, vm, &mut out, 0).then_some(out))
}

/// Appends `obj`'s JSON to `out`; false if it is not a value this encodes.
fn write(obj: &PyObject, vm: &VirtualMachine, out: &mut String, depth: usize) -> bool {
    if depth > DEPTH_MAX || out.len() > BYTES_MAX {
        return false;
    }
    let t = &vm.ctx.types;
    let class = obj.class();
    if vm.is_none(obj) {
        out.push_str("null");
    } else if class.is(t.bool_type) {
        let yes = obj.is(vm.ctx.true_value.as_object());
        out.push_str(if yes { "true" } else { "false" });
    } else if class.is(t.int_type) {
        let Some(i) = obj.downcast_ref::<PyInt>() else {
            return false;
        };
        let _ = write!(out, "{}", i.as_bigint());
    } else if class.is(t.float_type) {
        let Some(f) = obj.downcast_ref::<PyFloat>() else {
            return false;
        };
        match serde_json::Number::from_f64(f.to_f64()) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            // NaN and the infinities: `json.dumps` spells them.
            None => return false,
        }
    } else if class.is(t.str_type) {
        let Some(s) = obj.downcast_ref::<PyStr>().and_then(|s| s.to_str()) else {
            return false;
        };
        // Checked before the copy: a huge string goes to `json.dumps`,
        // whose result then meets the result limit (54000), not the
        // memory limit through copies made here.
        if s.len() > BYTES_MAX - out.len() {
            return false;
        }
        match serde_json::to_string(s) {
            Ok(quoted) => out.push_str(&quoted),
            Err(_) => return false,
        }
    } else if class.is(t.list_type) {
        let Some(list) = obj.downcast_ref::<PyList>() else {
            return false;
        };
        let items: Vec<PyObjectRef> = list.borrow_vec().to_vec();
        return write_array(&items, vm, out, depth);
    } else if class.is(t.tuple_type) {
        let Some(tuple) = obj.downcast_ref::<PyTuple>() else {
            return false;
        };
        return write_array(tuple.as_slice(), vm, out, depth);
    } else if class.is(t.dict_type) {
        let Some(dict) = obj.downcast_ref::<PyDict>() else {
            return false;
        };
        out.push('{');
        for (i, (k, v)) in dict.items_vec().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if !k.class().is(t.str_type) || !write(k, vm, out, depth + 1) {
                return false;
            }
            out.push(':');
            if !write(v, vm, out, depth + 1) {
                return false;
            }
        }
        out.push('}');
    } else {
        return false;
    }
    true
}

fn write_array(items: &[PyObjectRef], vm: &VirtualMachine, out: &mut String, depth: usize) -> bool {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if !write(item, vm, out, depth + 1) {
            return false;
        }
    }
    out.push(']');
    true
}
