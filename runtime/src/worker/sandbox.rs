//! The procedure sandbox: no file, socket, process or environment access.
//!
//! The interpreter is built without RustPython's `host_env` feature, so the
//! host modules (posix, socket, mmap, ...) do not exist at all. What remains
//! reachable is closed here: `open` raises, imports from user modules are
//! limited to an allow-list of pure modules, the recursion limit is capped.

use rustpython_vm::{compiler::Mode, scope::Scope, PyResult, VirtualMachine};

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

_ALLOWED = frozenset("""
amber math cmath json re datetime decimal fractions numbers collections itertools
functools operator statistics dataclasses typing types random string enum
copy heapq bisect abc uuid textwrap unicodedata zoneinfo hashlib base64 struct
array contextlib warnings keyword reprlib pprint calendar
""".split())
_real_import = builtins.__import__
_deployed = set()

def _gated_import(name, globals=None, locals=None, fromlist=(), level=0):
    # A direct call of __import__ without globals is treated as user code.
    importer = (globals or {}).get("__name__", None) if globals is not None else None
    if (importer is None or importer in _deployed) and level == 0:
        root = name.partition(".")[0]
        if root not in _ALLOWED and root not in _deployed:
            raise ImportError(f"import of {name!r} is not allowed in Amber procedures")
    return _real_import(name, globals, locals, fromlist, level)

builtins.__import__ = _gated_import
builtins.__amber_deployed__ = _deployed

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
    let code = vm
        .compile(SANDBOX_SOURCE, Mode::Exec, "<amber sandbox>".to_owned())
        .map_err(|e| vm.new_runtime_error(format!("sandbox does not compile: {e}")))?;
    let scope = Scope::with_builtins(None, vm.ctx.new_dict(), vm);
    vm.run_code_obj(code, scope)?;
    Ok(())
}
