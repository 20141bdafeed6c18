//! The procedure sandbox: no file, socket, process or environment access.
//!
//! The interpreter is built without RustPython's `host_env` feature, so the
//! host modules (posix, socket, mmap, ...) do not exist at all. What remains
//! reachable is closed here: `open` raises, imports from user modules are
//! limited to an allow-list of pure modules, the recursion limit is capped.

use rustpython_vm::{compiler::Mode, scope::Scope, PyResult, VirtualMachine};

const SANDBOX_SOURCE: &str = r#"
import builtins, sys

def _closed_open(*args, **kwargs):
    raise PermissionError("file access is not allowed in Amber procedures")

builtins.open = _closed_open

_ALLOWED = frozenset("""
amber math cmath json re datetime decimal fractions numbers collections itertools
functools operator statistics dataclasses typing types random string enum
copy heapq bisect abc uuid textwrap unicodedata zoneinfo hashlib base64 struct
array contextlib warnings keyword reprlib pprint calendar
""".split())
_real_import = builtins.__import__
_deployed = set()

def _gated_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if importer in _deployed and level == 0:
        root = name.partition(".")[0]
        if root not in _ALLOWED and root not in _deployed:
            raise ImportError(f"import of {name!r} is not allowed in Amber procedures")
    return _real_import(name, globals, locals, fromlist, level)

builtins.__import__ = _gated_import
builtins.__amber_deployed__ = _deployed

def _no_recursion_change(limit):
    raise PermissionError("the recursion limit is fixed in Amber procedures")

sys.setrecursionlimit = _no_recursion_change
"#;

pub fn install(vm: &VirtualMachine, recursion_limit: usize) -> PyResult<()> {
    vm.recursion_limit.set(recursion_limit);
    let code = vm
        .compile(SANDBOX_SOURCE, Mode::Exec, "<amber sandbox>".to_owned())
        .map_err(|e| vm.new_runtime_error(format!("sandbox does not compile: {e}")))?;
    let scope = Scope::with_builtins(None, vm.ctx.new_dict(), vm);
    vm.run_code_obj(code, scope)?;
    Ok(())
}
