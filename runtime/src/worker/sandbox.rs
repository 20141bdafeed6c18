//! The procedure sandbox, inside the worker: the interpreter's own view.
//!
//! The guarantee is the process boundary (a call's process has no file,
//! socket, process or thread system calls: `seccomp.rs`; storage only
//! through the server: `native.rs`). This module makes the interpreter say
//! so clearly instead of failing deep inside: `open` raises, the `os`
//! module is a stub, imports by deployed modules are limited to an
//! allow-list of pure modules (checked in Rust: nothing a procedure can
//! reach holds the real import function or the list), code objects can
//! only come from the compiler, the recursion limit is fixed.

use rustpython_vm::{
    builtins::{PyStr, PyTypeRef},
    compiler::Mode,
    function::FuncArgs,
    scope::Scope,
    PyObjectRef, PyResult, VirtualMachine,
};
use std::cell::RefCell;
use std::collections::HashSet;

/// Modules a deployed module may import (pure computation only).
const ALLOWED: &[&str] = &[
    "amber",
    "math",
    "cmath",
    "json",
    "re",
    "datetime",
    "decimal",
    "fractions",
    "numbers",
    "collections",
    "itertools",
    "functools",
    "operator",
    "statistics",
    "dataclasses",
    "typing",
    "types",
    "random",
    "string",
    "enum",
    "copy",
    "heapq",
    "bisect",
    "abc",
    "uuid",
    "textwrap",
    "unicodedata",
    "zoneinfo",
    "hashlib",
    "base64",
    "struct",
    "array",
    "contextlib",
    "warnings",
    "keyword",
    "reprlib",
    "pprint",
    "calendar",
];

thread_local! {
    /// The interpreter's own `__import__`, reachable from Rust only.
    static REAL_IMPORT: RefCell<Option<PyObjectRef>> = const { RefCell::new(None) };
    /// Names of deployed modules loaded in this interpreter.
    static DEPLOYED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// Marks `name` as a deployed module: its imports are checked.
pub fn mark_deployed(name: &str) {
    DEPLOYED.with(|d| d.borrow_mut().insert(name.to_string()));
}

/// `builtins.__import__`: the importing module is the calling frame's
/// (not the `globals` argument, which the caller chooses). Code of a
/// deployed module, or of no module at all, imports only allowed modules
/// and other deployed modules.
fn gated_import(args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    let name = args
        .args
        .first()
        .or_else(|| args.kwargs.get("name"))
        .and_then(|n| {
            n.downcast_ref::<PyStr>()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .ok_or_else(|| vm.new_type_error("__import__() argument 'name' must be str"))?;
    let level = args
        .args
        .get(4)
        .or_else(|| args.kwargs.get("level"))
        .map(|l| l.try_to_value::<i64>(vm))
        .transpose()?
        .unwrap_or(0);
    let importer: Option<String> = vm.current_frame().and_then(|f| {
        f.globals
            .get_item_opt("__name__", vm)
            .ok()
            .flatten()
            .and_then(|n| {
                n.downcast_ref::<PyStr>()
                    .map(|s| s.to_string_lossy().into_owned())
            })
    });
    let checked = match &importer {
        None => true,
        Some(m) => DEPLOYED.with(|d| d.borrow().contains(m)),
    };
    if checked {
        let root = name.split('.').next().unwrap_or("");
        let deployed = DEPLOYED.with(|d| d.borrow().contains(root));
        if level != 0 || !(ALLOWED.contains(&root) || deployed) {
            return Err(vm.new_import_error(
                format!("import of '{name}' is not allowed in Amber procedures"),
                vm.ctx.new_str(name.as_str()),
            ));
        }
    }
    let real = REAL_IMPORT
        .with(|r| r.borrow().clone())
        .ok_or_else(|| vm.new_runtime_error("import is not available"))?;
    real.call(args, vm)
}

fn refuse_code(_cls: PyTypeRef, _args: FuncArgs, vm: &VirtualMachine) -> PyResult {
    Err(vm.new_type_error("code objects can only be made by the compiler in Amber procedures"))
}

/// Code objects come from the compiler only: no `CodeType(...)`, no
/// `code.replace(...)` (hand-made bytecode is not checked by anything).
fn close_code_objects(vm: &VirtualMachine) {
    let code = vm.ctx.types.code_type;
    code.slots.new.store(Some(refuse_code));
    let mut attrs = code.attributes.write();
    attrs.shift_remove(vm.ctx.intern_str("replace"));
    attrs.shift_remove(vm.ctx.intern_str("__replace__"));
    attrs.shift_remove(vm.ctx.intern_str("__new__"));
}

const SANDBOX_SOURCE: &str = r#"
import builtins, sys, types, _io, _random
import gc  # for the worker itself (freeze before fork), not for procedures

# There is no host OS layer (RustPython is built without host_env). Pure
# modules that import `os` for a few names (random, tempfile-free parts of
# inspect/dataclasses) get a stub with no access to anything.
def _denied(*args, **kwargs):
    raise PermissionError("operating system access is not allowed in Amber procedures")

class _DeniedFileIO:
    def __init__(self, *args, **kwargs):
        _denied()

_io.FileIO = _DeniedFileIO

_os = types.ModuleType("os")
_os.name = "posix"
_os.sep = "/"
_os.altsep = None
_os.extsep = "."
_os.pathsep = ":"
_os.linesep = "\n"
_os.curdir = "."
_os.pardir = ".."
_os.defpath = "/bin:/usr/bin"
_os.devnull = "/dev/null"
_os.environ = {}
_os.environb = {}
_os.supports_bytes_environ = False
_os.error = OSError

def _urandom(n):
    n = int(n)
    if n < 0:
        raise ValueError("negative argument not allowed")
    return _random.Random().getrandbits(n * 8).to_bytes(n, "little") if n else b""

def _fspath(p):
    if isinstance(p, (str, bytes)):
        return p
    f = getattr(type(p), "__fspath__", None)
    if f is None:
        raise TypeError(f"expected str, bytes or os.PathLike object, not {type(p).__name__}")
    return f(p)

class PathLike:
    pass

def _getenv(key, default=None):
    return default

_os.urandom = _urandom
_os.fspath = _fspath
_os.fsencode = lambda p: _fspath(p).encode() if isinstance(_fspath(p), str) else _fspath(p)
_os.fsdecode = lambda p: _fspath(p).decode() if isinstance(_fspath(p), bytes) else _fspath(p)
_os.PathLike = PathLike
_os.getenv = _getenv
_os.cpu_count = lambda: 1
_os.getpid = lambda: 1
for _name in ("getcwd", "getcwdb", "listdir", "scandir", "stat", "lstat", "open", "remove",
              "unlink", "rename", "mkdir", "makedirs", "rmdir", "system", "popen", "execv",
              "kill", "chdir", "walk", "putenv", "unsetenv", "access", "readlink"):
    setattr(_os, _name, _denied)
sys.modules["os"] = _os
sys.modules["posix"] = _os
import posixpath as _posixpath
_os.path = _posixpath
sys.modules["os.path"] = _posixpath

def _closed_open(*args, **kwargs):
    raise PermissionError("file access is not allowed in Amber procedures")

builtins.open = _closed_open

# marshal.loads would turn bytes into code objects the compiler never made.
import marshal as _marshal
_marshal.loads = _denied
_marshal.load = _denied

def _no_recursion_change(limit):
    raise PermissionError("the recursion limit is fixed in Amber procedures")

sys.setrecursionlimit = _no_recursion_change

# Nothing about the host: the worker's command line, binary and paths.
sys.argv = [""]
sys.orig_argv = []
for _name in ("executable", "_base_executable", "prefix", "exec_prefix", "base_prefix",
              "base_exec_prefix", "platlibdir", "pycache_prefix"):
    if hasattr(sys, _name):
        setattr(sys, _name, "")
sys.path = []
"#;

pub fn install(vm: &VirtualMachine, recursion_limit: usize) -> PyResult<()> {
    vm.recursion_limit.set(recursion_limit);
    let real = vm.builtins.get_attr("__import__", vm)?;
    REAL_IMPORT.with(|r| *r.borrow_mut() = Some(real));
    let code = vm
        .compile(SANDBOX_SOURCE, Mode::Exec, "<amber sandbox>".to_owned())
        .map_err(|e| vm.new_runtime_error(format!("sandbox does not compile: {e}")))?;
    let scope = Scope::with_builtins(None, vm.ctx.new_dict(), vm);
    vm.run_code_obj(code, scope)?;
    vm.builtins.set_attr(
        "__import__",
        vm.new_function("__import__", gated_import),
        vm,
    )?;
    close_code_objects(vm);
    Ok(())
}
