# The `amber` module every Amber Python module imports from.
#
# Objects live in the calling transaction: `_amber` (native) reads and writes
# keys of the current transaction. Within one call, an identity map holds each
# loaded object once; at the end of the call every loaded object is encoded
# again and written back if its encoding changed, so in-place mutation
# (`acct.tags.append(...)`) is persisted without marking anything dirty.
# Key layout and value encoding: see ARCHITECTURE.md.

import _amber
import json as _json
import datetime as _dt
import decimal as _decimal
import typing as _typing
import types as _types

__all__ = ["Persistent", "Error", "index", "unique", "sql"]


class Error(Exception):
    """Raise to fail the statement with a chosen SQLSTATE."""

    def __init__(self, sqlstate, message):
        super().__init__(message)
        self.sqlstate = str(sqlstate)
        self.message = str(message)


def index(*columns):
    return tuple(columns)


def unique(*columns):
    return tuple(columns)


def sql(query, *params):
    """Runs SQL in the calling transaction; returns a list of row tuples.

    The call's changes to loaded objects are written first, so the SQL sees
    them; afterwards loaded objects are brought up to date with what the SQL
    changed, so Python sees it and the end-of-call flush does not write the
    older state over it."""
    _flush_objects()
    result = _json.loads(_amber.sql(str(query), _json.dumps([_sql_param(p) for p in params])))
    _refresh_objects()
    types = result["types"]
    return [tuple(_dec(t, v) for t, v in zip(types, r)) for r in result["rows"]]


def _sql_type_of(v):
    """The column type name of a Python value given to amber.sql()."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, (bytes, bytearray)):
        return "bytes"
    if isinstance(v, _decimal.Decimal):
        return "numeric"
    if isinstance(v, _dt.datetime):
        return "timestamptz"
    if isinstance(v, _dt.date):
        return "date"
    if isinstance(v, Persistent):
        return "int"
    if isinstance(v, (list, tuple)):
        inner = next((_sql_type_of(x) for x in v if x is not None), "str")
        if inner.startswith("array:") or inner == "jsonb":
            return "jsonb"
        return "array:" + inner
    return "jsonb"


def _sql_param(v):
    """[type, value in the column encoding]: amber.sql() parameters keep
    their types (a Decimal stays numeric, bytes stay bytea)."""
    if v is None:
        return ["null", None]
    t = _sql_type_of(v)
    if isinstance(v, Persistent):
        return [t, v.id]
    return [t, _enc(t, v, "amber.sql() parameter")]


def _refresh_objects():
    """Brings loaded objects up to date with storage after a SQL statement.
    Compared by value (Python's encoding of the stored state), so an object
    the statement did not change keeps its Python state, references held
    into it included."""
    for oid, obj in list(_st.identity.items()):
        cls = type(obj)
        raw = _amber.get(_oid_key(_info(cls).cid, oid))
        if raw is None:
            # Deleted by the SQL: the object is no longer part of the call.
            del _st.identity[oid]
            _st.snap.pop(oid, None)
            continue
        state = _decode_state(_info(cls).columns, raw)
        enc = _encoding_or_none(cls, state)
        if enc is None or enc != _st.snap.get(oid):
            obj.__dict__.update(state)
            _st.snap[oid] = enc


# ---------------------------------------------------------------- call state

class _CallState:
    def __init__(self):
        self.identity = {}   # oid -> object
        self.snap = {}       # oid -> encoded state at load (None: new object)
        self.globals = {}    # name -> encoded value at load
        self.loaded_globals = []  # (name, type, nullable) loaded by the call
        self.module = None


_st = _CallState()


def _oid_key(cid, oid):
    return b"o" + cid.to_bytes(8, "big") + oid.to_bytes(8, "big")


def _class_prefix(cid):
    return b"o" + cid.to_bytes(8, "big")


def _global_key(modname, name):
    return b"g" + modname.encode() + b"\x00" + name.encode()


# ------------------------------------------------------------ value encoding

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _enc(t, v, where):
    if v is None:
        return None
    if t == "int":
        if not _is_int(v):
            raise TypeError(f"{where} must be int, not {type(v).__name__}")
        if v < -(2 ** 63) or v >= 2 ** 63:
            raise OverflowError(f"{where} is out of range for type bigint")
        return v
    if t == "float":
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"{where} must be float, not {type(v).__name__}")
        f = float(v)
        if f != f:
            return "NaN"
        if f in (float("inf"), float("-inf")):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if t == "str":
        if not isinstance(v, str):
            raise TypeError(f"{where} must be str, not {type(v).__name__}")
        if "\x00" in v:
            raise ValueError(f"{where}: strings may not contain NUL characters")
        return v
    if t == "bool":
        if not isinstance(v, bool):
            raise TypeError(f"{where} must be bool, not {type(v).__name__}")
        return v
    if t == "bytes":
        if not isinstance(v, (bytes, bytearray)):
            raise TypeError(f"{where} must be bytes, not {type(v).__name__}")
        return bytes(v).hex()
    if t == "numeric":
        if isinstance(v, bool) or not isinstance(v, (int, _decimal.Decimal)):
            raise TypeError(f"{where} must be Decimal, not {type(v).__name__}")
        if isinstance(v, int):
            return str(v)
        if v.is_snan():
            raise ValueError(f"{where}: a signaling NaN cannot be stored")
        if not v.is_finite():
            return str(v)
        # Positional notation, as numeric prints: Decimal('1E+3') is 1000.
        return format(v, "f")
    if t == "timestamptz":
        if not isinstance(v, _dt.datetime):
            raise TypeError(f"{where} must be datetime, not {type(v).__name__}")
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.timezone.utc)
        return v.astimezone(_dt.timezone.utc).isoformat()
    if t == "timestamp":
        # A wall-clock time (timestamp without time zone): naive; an
        # aware datetime is taken at UTC.
        if not isinstance(v, _dt.datetime):
            raise TypeError(f"{where} must be datetime, not {type(v).__name__}")
        if v.tzinfo is not None:
            v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return v.replace(tzinfo=_dt.timezone.utc).isoformat()
    if t == "date":
        if isinstance(v, _dt.datetime) or not isinstance(v, _dt.date):
            raise TypeError(f"{where} must be date, not {type(v).__name__}")
        return v.isoformat()
    if t == "jsonb":
        return _to_json_any(v)
    if t.startswith("ref:"):
        if isinstance(v, Persistent):
            return v.id
        if _is_int(v):
            return v
        raise TypeError(f"{where} must be {t[4:]}, not {type(v).__name__}")
    if t.startswith("array:"):
        inner = t[6:]
        if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
            raise TypeError(f"{where} must be a list, not {type(v).__name__}")
        return [_enc(inner, x, where + "[]") for x in v]
    raise TypeError(f"{where}: unknown type {t}")


def _to_json_any(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(v, dict):
        return {str(k): _to_json_any(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_to_json_any(x) for x in v]
    if isinstance(v, Persistent):
        return v.id
    if isinstance(v, _decimal.Decimal):
        return str(v)
    if isinstance(v, (_dt.date, _dt.datetime)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def _copy_json(v):
    """A deep copy of a JSON-shaped value (dicts, lists, scalars)."""
    if isinstance(v, dict):
        return {k: _copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_json(x) for x in v]
    return v


def _dec(t, v):
    if v is None:
        return None
    if t in ("int", "str", "bool", "jsonb") or t.startswith("ref:"):
        return v
    if t == "float":
        return float(v)
    if t == "bytes":
        return bytes.fromhex(v)
    if t == "numeric":
        return _decimal.Decimal(v)
    if t == "date":
        return _dt.date.fromisoformat(v)
    if t == "timestamptz":
        return _dt.datetime.fromisoformat(v)
    if t == "timestamp":
        return _dt.datetime.fromisoformat(v).replace(tzinfo=None)
    if t.startswith("array:"):
        inner = t[6:]
        return [_dec(inner, x) for x in v]
    raise TypeError(f"unknown type {t}")


# ------------------------------------------------------------ persistence

class _Ref:
    """Data descriptor for a reference attribute: the instance dict holds the
    referenced object's id, reading the attribute loads the object."""

    def __init__(self, name, target):
        self.name = name
        self.target = target

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        oid = obj.__dict__.get(self.name)
        if oid is None:
            return None
        target = type(obj).__amber__.module_classes.get(self.target)
        found = target.get(oid) if target is not None else None
        if found is None:
            raise LookupError(f"{self.target} {oid} referenced by {type(obj).__name__}.{self.name} does not exist")
        return found

    def __set__(self, obj, value):
        if value is None or _is_int(value):
            obj.__dict__[self.name] = value
        elif isinstance(value, Persistent):
            obj.__dict__[self.name] = value.id
        else:
            raise TypeError(f"{type(obj).__name__}.{self.name} must be {self.target}, not {type(value).__name__}")


class _ClassInfo:
    def __init__(self, cid, columns, subclass_ids, module_classes, indexes):
        self.cid = cid
        self.columns = columns            # [(name, type, nullable, has_default, default)]
        self.subclass_ids = subclass_ids  # this class's id first
        self.module_classes = module_classes
        self.indexes = indexes            # [(index id, [column names])]
        self.types = {c[0]: c[1] for c in columns}


class Persistent:
    """Base class of persistent objects: each subclass is a table."""

    def __init__(self, **attrs):
        info = _info(type(self))
        for name, t, nullable, has_default, default in info.columns:
            if name in attrs:
                setattr(self, name, attrs.pop(name))
            elif has_default:
                # A copy: a dict default must not be shared between objects
                # (nor outlive a rolled-back call that mutated it).
                self.__dict__[name] = _dec(t, _copy_json(default))
            elif nullable:
                self.__dict__[name] = None
            else:
                raise TypeError(f"{type(self).__name__}() missing required attribute '{name}'")
        if attrs:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument '{next(iter(attrs))}'")
        oid = _amber.new_oid()
        self.__dict__["id"] = oid
        _st.identity[oid] = self
        _st.snap[oid] = None

    @classmethod
    def get(cls, oid):
        if not _is_int(oid):
            raise TypeError(f"{cls.__name__}.get() takes an int id")
        obj = _st.identity.get(oid)
        if obj is not None:
            return obj if isinstance(obj, cls) else None
        info = _info(cls)
        for cid in info.subclass_ids:
            raw = _amber.get(_oid_key(cid, oid))
            if raw is not None:
                return _materialize(cid, oid, raw, info)
        return None

    @classmethod
    def all(cls):
        _flush_objects()
        info = _info(cls)
        found = []
        for cid in info.subclass_ids:
            for key, raw in _amber.scan(_class_prefix(cid)):
                oid = int.from_bytes(key[9:17], "big")
                found.append((oid, cid, raw))
        found.sort(key=lambda f: f[0])
        return iter([_st.identity.get(oid) or _materialize(cid, oid, raw, info) for oid, cid, raw in found])

    @classmethod
    def where(cls, **conditions):
        """The objects (subclasses' included) whose attributes equal the
        conditions, in id order. Each class is read through the index
        whose leading columns the conditions cover most, or scanned."""
        wanted = {}
        for k, v in conditions.items():
            wanted[k] = v.id if isinstance(v, Persistent) else v
        _flush_objects()
        info = _info(cls)
        found = {}
        for cid in info.subclass_ids:
            sub = _info(_class_of_cid(info, cid))
            for key, raw in _read_where(sub, cid, wanted):
                oid = int.from_bytes(key[9:17], "big")
                found[oid] = (cid, raw)
        out = []
        for oid in sorted(found):
            cid, raw = found[oid]
            obj = _st.identity.get(oid) or _materialize(cid, oid, raw, info)
            if all(obj.__dict__.get(k, getattr(obj, k, None)) == v for k, v in wanted.items()):
                out.append(obj)
        return out

    @classmethod
    def get_by(cls, **conditions):
        """The one object whose attributes equal the conditions (through
        an index where one covers them), or None; LookupError if several."""
        found = cls.where(**conditions)
        if len(found) > 1:
            raise LookupError(f"{cls.__name__}.get_by({', '.join(conditions)}) matches {len(found)} objects")
        return found[0] if found else None

    def delete(self):
        oid = self.__dict__.get("id")
        if oid is None or _st.identity.get(oid) is not self:
            raise LookupError(f"{type(self).__name__} object is not loaded in this transaction")
        _amber.delete(_oid_key(_info(type(self)).cid, oid))
        del _st.identity[oid]
        _st.snap.pop(oid, None)

    def __repr__(self):
        return f"<{type(self).__name__} id={self.__dict__.get('id')}>"


def _class_of_cid(info, cid):
    """The class of the module `info` belongs to whose id is `cid`."""
    for c in info.module_classes.values():
        sub = c.__dict__.get("__amber__")
        if sub is not None and sub.cid == cid:
            return c
    raise LookupError(f"no class with id {cid}")


def _read_where(info, cid, wanted):
    """(key, raw) of the objects of class `cid` that may match `wanted`:
    those of the index whose leading columns `wanted` covers most, or all."""
    best = None
    for iid, cols in info.indexes:
        n = 0
        while n < len(cols) and cols[n] in wanted:
            n += 1
        if n and (best is None or n > best[1]):
            best = (iid, n, cols)
    if best is None:
        return _amber.scan(_class_prefix(cid))
    iid, n, cols = best
    values = [_enc(info.types[c], wanted[c], f"where({c}=...)") for c in cols[:n]]
    return _amber.index_scan(cid, iid, _json.dumps(values))


def _info(cls):
    info = cls.__dict__.get("__amber__")
    if info is None:
        raise TypeError(f"class {cls.__name__} is not deployed")
    return info


def _materialize(cid, oid, raw, info):
    cls = _class_of_cid(info, cid)
    obj = cls.__new__(cls)
    d = obj.__dict__
    d.update(_decode_state(cls.__amber__.columns, raw))
    d["id"] = oid
    _st.identity[oid] = obj
    # Python's own encoding of what it loaded: the object is written back
    # only if that changes, however the stored bytes were spelled.
    _st.snap[oid] = _encoding_or_none(cls, d)
    return obj


def _decode_state(columns, raw):
    state = _json.loads(raw)
    return {name: _dec(t, state.get(name)) for name, t, _n, _h, _d in columns}


def _dumps(v):
    """Compact JSON of `v`: natively for plain values (`_amber.dumps`),
    else by `json.dumps`."""
    s = _amber.dumps(v)
    return s if s is not None else _json.dumps(v, separators=(",", ":"))


def _encode_state(cls, d):
    state = {}
    for name, t, nullable, has_default, default in _info(cls).columns:
        v = d.get(name)
        if v is None and not nullable:
            raise ValueError(f'null value in column "{name}" of {cls.__name__} violates not-null constraint')
        state[name] = _enc(t, v, f"{cls.__name__}.{name}")
    return _dumps(state)


def _encoding_or_none(cls, d):
    """The encoding of a loaded state, or None if it cannot be encoded
    (stored by an older shape): then any flush writes it."""
    try:
        return _encode_state(cls, d)
    except (TypeError, ValueError, OverflowError):
        return None


def _encode_object(obj):
    return _encode_state(type(obj), obj.__dict__)


def _flush_objects():
    for oid, obj in list(_st.identity.items()):
        raw = _encode_object(obj)
        if raw != _st.snap.get(oid):
            _amber.put(_oid_key(_info(type(obj)).cid, oid), raw)
            _st.snap[oid] = raw


def _flush_globals(mod):
    for name, t, nullable in _st.loaded_globals:
        v = mod.__dict__.get(name)
        if v is None and not nullable:
            raise ValueError(f"module variable {name} may not be None")
        raw = _dumps(_enc(t, v, name))
        if raw != _st.globals.get(name):
            _amber.put(_global_key(mod.__name__, name), raw)
            _st.globals[name] = raw


def _begin(mod, reads=None):
    """Starts a call: loads the module variables in `reads` (all of them if
    None) from the call's transaction. The others are taken out of the
    module's namespace for the call, so that a path to them the analysis
    missed fails with NameError instead of seeing the value the module was
    loaded with."""
    _st.identity = {}
    _st.snap = {}
    _st.globals = {}
    _st.module = mod
    _st.loaded_globals = []
    for name, t, nullable in mod.__amber_globals__:
        if reads is not None and name not in reads:
            mod.__dict__.pop(name, None)
            continue
        _st.loaded_globals.append((name, t, nullable))
        raw = _amber.get(_global_key(mod.__name__, name))
        value = _dec(t, _json.loads(raw)) if raw is not None else None
        mod.__dict__[name] = value
        # Python's encoding of the loaded value, whatever the stored
        # spelling: written back only if the call changes it.
        try:
            _st.globals[name] = _dumps(_enc(t, value, name))
        except (TypeError, ValueError, OverflowError):
            _st.globals[name] = None


def _end():
    _st.identity = {}
    _st.snap = {}
    _st.globals = {}
    _st.loaded_globals = []
    _st.module = None


def _invoke(mod, class_name, func_name, params, returns, args):
    """One call of the function on its JSON arguments; its JSON result."""
    if class_name is not None:
        cls = getattr(mod, class_name)
        oid = args[0]
        obj = cls.get(oid) if oid is not None else None
        if obj is None:
            raise LookupError(f"{class_name} with id {oid} does not exist")
        fn = getattr(obj, func_name)
        args = args[1:]
    else:
        fn = getattr(mod, func_name)
    decoded = []
    for (pname, ptype), a in zip(params, args):
        if ptype.startswith("ref:"):
            target = getattr(mod, ptype[4:])
            obj = target.get(a) if a is not None else None
            if a is not None and obj is None:
                raise LookupError(f"{ptype[4:]} with id {a} does not exist")
            decoded.append(obj)
        else:
            decoded.append(_dec(ptype, a))
    result = fn(*decoded)
    if returns == "void":
        return None
    if returns.startswith("setof:"):
        cls = getattr(mod, returns[6:])
        cols = _info(cls).columns
        rows = []
        for obj in result:
            if not isinstance(obj, cls):
                raise TypeError(f"{func_name}() must return {cls.__name__} objects, got {type(obj).__name__}")
            d = obj.__dict__
            rows.append([d.get("id")] + [_enc(t, d.get(n), n) for n, t, _nl, _hd, _df in cols])
        return rows
    return _enc(returns, result, f"{func_name}() result")


def _migrate(mod, class_name, old_types, batch):
    """Converts stored objects of an older version of `class_name` (their
    attributes by name, in that version's encoding, typed by `old_types`)
    into this version: each starts with the attributes it keeps (same
    name and type), the defaults of the others (None without one), then
    `__migrate__(self, old)` runs with `old` the older attributes as
    Python values. Returns [[id, new state], ...], or {"failed": id,
    "error": ...} for the first object that cannot be converted (nothing
    is written by this call: the server stores the states)."""
    cls = getattr(mod, class_name)
    info = _info(cls)
    old_type = dict(old_types)
    out = []
    for oid, state in batch:
        try:
            old = {name: _dec(t, state.get(name)) for name, t in old_types}
            old["id"] = oid
            obj = cls.__new__(cls)
            d = obj.__dict__
            for name, t, nullable, has_default, default in info.columns:
                if old_type.get(name) == t:
                    d[name] = old[name]
                elif has_default:
                    d[name] = _dec(t, _copy_json(default))
                else:
                    d[name] = None
            d["id"] = oid
            obj.__migrate__(old)
            out.append([oid, _encode_state(cls, d)])
        except Exception as e:
            return {"failed": oid, "error": f"{type(e).__name__}: {e}"}
    return out


def _call(mod, desc_json, args_json):
    """Entry point for SQL calls. Returns the JSON-encoded result.

    With `batch` in the description, `args_json` is a list of argument
    lists (the rows of a query calling the function) and the result the
    list of their results: the function runs once per row, in order, as
    consecutive calls in one transaction would (each sees what the ones
    before it changed), with one load of the module variables and one
    write of what changed at the end."""
    desc = _json.loads(desc_json)
    class_name = desc["class"]
    func_name = desc["func"]
    params = desc["params"]
    returns = desc["returns"]
    args = _json.loads(args_json)
    _begin(mod, desc.get("globals"))
    try:
        if desc.get("migrate"):
            return _json.dumps(_migrate(mod, class_name, desc["old"], args))
        if desc.get("batch"):
            out = [_invoke(mod, class_name, func_name, params, returns, row) for row in args]
        else:
            out = _invoke(mod, class_name, func_name, params, returns, args)
        _flush_objects()
        _flush_globals(mod)
        return _dumps(out)
    finally:
        _end()


# ------------------------------------------------------------ analysis

def _type_desc(ann, ns):
    """Returns (type name, nullable) for an annotation."""
    if isinstance(ann, str):
        ann = eval(ann, ns)
    if ann is None or ann is type(None):
        return "void", True
    origin = _typing.get_origin(ann)
    args = _typing.get_args(ann)
    if origin is _typing.Union or origin is _types.UnionType:
        non_null = [a for a in args if a is not type(None)]
        nullable = len(non_null) < len(args)
        if len(non_null) == 1:
            t, _ = _type_desc(non_null[0], ns)
            return t, nullable
        return "jsonb", nullable
    if ann is bool:
        return "bool", False
    if ann is int:
        return "int", False
    if ann is float:
        return "float", False
    if ann is str:
        return "str", False
    if ann is bytes:
        return "bytes", False
    if ann is _decimal.Decimal:
        return "numeric", False
    if ann is _dt.datetime:
        return "timestamptz", False
    if ann is _dt.date:
        return "date", False
    if ann is _typing.Any or ann is dict or origin is dict:
        return "jsonb", False
    if isinstance(ann, type) and issubclass(ann, Persistent):
        return "ref:" + ann.__name__, False
    if origin in (list, set, tuple, frozenset) or ann in (list, set, tuple, frozenset):
        if not args or (origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)):
            return "jsonb", False
        inner, _ = _type_desc(args[0], ns)
        if inner.startswith("array:") or inner in ("jsonb", "void"):
            return "jsonb", False
        return "array:" + inner, False
    raise TypeError(f"unsupported type annotation {ann!r}")


def _return_desc(ann, ns, fname):
    if ann is _MISSING:
        return "jsonb"
    if isinstance(ann, str):
        ann = eval(ann, ns)
    if ann is None or ann is type(None):
        return "void"
    origin = _typing.get_origin(ann)
    args = _typing.get_args(ann)
    import collections.abc as _abc
    if origin in (list, _abc.Iterator, _abc.Iterable, _abc.Generator) and args:
        a = args[0]
        if isinstance(a, str):
            a = eval(a, ns)
        if isinstance(a, type) and issubclass(a, Persistent):
            return "setof:" + a.__name__
    t, _ = _type_desc(ann, ns)
    return t


_MISSING = object()


def _annotations_of(obj):
    try:
        ann = obj.__annotations__
    except AttributeError:
        ann = None
    if ann is None:
        annotate = getattr(obj, "__annotate__", None)
        ann = annotate(1) if annotate is not None else {}
    return dict(ann)


def _function_desc(fn, ns, skip_self):
    code = fn.__code__
    names = list(code.co_varnames[: code.co_argcount])
    if skip_self:
        names = names[1:]
    ann = _annotations_of(fn)
    params = []
    for n in names:
        t = "jsonb"
        if n in ann:
            t, _ = _type_desc(ann[n], ns)
            if t == "void":
                raise TypeError(f"parameter {n} of {fn.__name__} cannot be None")
        params.append({"name": n, "type": t})
    returns = _return_desc(ann.get("return", _MISSING), ns, fn.__name__)
    return {"name": fn.__name__, "params": params, "returns": returns}


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper():
            prev_lower = i > 0 and (name[i - 1].islower() or name[i - 1].isdigit())
            next_lower = i + 1 < len(name) and name[i + 1].islower()
            if i > 0 and (prev_lower or (next_lower and name[i - 1].isupper())):
                out.append("_")
            out.append(c.lower())
        else:
            out.append(c)
    return "".join(out)


# Names through which code can reach a module variable without naming it
# (the module's namespace, frames, the import machinery, code run from a
# string): a function that uses one may read any module variable.
_REACHES_NAMESPACE = frozenset({
    "globals", "vars", "locals", "dir", "eval", "exec", "compile", "__import__",
    "__globals__", "__dict__", "__builtins__", "f_globals", "f_locals",
    "sys", "importlib", "inspect",
})
# Functions the compiler adds to evaluate annotations (never called by a
# procedure's own code).
_ANNOTATIONS_ONLY = frozenset({"__annotate__", "__annotate_func__"})
_INERT_TYPES = (type(None), bool, int, float, complex, str, bytes,
                _decimal.Decimal, _dt.date, _dt.time, _dt.timedelta, _dt.tzinfo)


def _callables_of(value):
    """The functions behind a class attribute (methods, static and class
    methods, property accessors)."""
    if isinstance(value, _types.FunctionType):
        return [value]
    if isinstance(value, (staticmethod, classmethod)):
        return [value.__func__]
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    return []


def _inert(value):
    """Whether a value can lead to no code (so no module variable)."""
    if isinstance(value, _INERT_TYPES):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_inert(v) for v in value)
    return False


def _code_names(code, out):
    """Every name a code object (and the code nested in it: lambdas,
    comprehensions, inner functions) looks up: globals, builtins and
    attribute names alike, and its string constants that could be names
    (`getattr(obj, "bump")` reaches a method by one)."""
    out.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, _types.CodeType):
            _code_names(const, out)
        elif isinstance(const, str) and const.isidentifier():
            out.add(const)


def _globals_read(fn, mod, persistent):
    """The module variables a call of `fn` may read or write, or None if
    that cannot be bounded (then a call loads every one of them).

    Over-approximated from the names its code uses: a module variable
    named anywhere (also as an attribute name), and the same for every
    function of the module it may reach: module functions and classes it
    names, methods of the module's classes named like any attribute it
    uses, every special method of the module's classes (called implicitly),
    closures and defaults. A name that reaches the namespace itself
    (`globals`, `sys`, the module's own name...) or a module-level value
    that may hold code (a dict of handlers) makes it unbounded."""
    ns = mod.__dict__
    modname = mod.__name__
    methods = {}       # attribute name -> the module's functions under it
    class_code = {}    # the module's class -> the module's functions it has
    for value in list(ns.values()):
        if isinstance(value, type) and getattr(value, "__module__", None) == modname:
            funcs = class_code.setdefault(value, [])
            for klass in value.__mro__:
                if getattr(klass, "__module__", None) != modname:
                    continue
                for aname, avalue in klass.__dict__.items():
                    if aname not in _ANNOTATIONS_ONLY:
                        found_here = _callables_of(avalue)
                        methods.setdefault(aname, []).extend(found_here)
                        funcs.extend(found_here)
    pending = [fn]
    for aname, fns in methods.items():
        if aname.startswith("__") and aname.endswith("__"):
            pending.extend(fns)
    found = set()
    seen = set()

    def reach(value):
        """Queues what `value` may run; False if it cannot be followed."""
        if isinstance(value, _types.FunctionType):
            pending.append(value)
        elif isinstance(value, type):
            pending.extend(class_code.get(value, ()))
        elif isinstance(value, _types.ModuleType):
            # A deployed module's code may import this one and read its
            # variables; the standard library's cannot.
            if hasattr(value, "__amber_source__"):
                return False
        elif _inert(value):
            pass
        else:
            return False
        return True

    while pending:
        f = pending.pop()
        if getattr(f, "__module__", None) != modname:
            # Amber's own methods on persistent classes, and functions of
            # other modules, never touch this module's variables.
            continue
        code = getattr(f, "__code__", None)
        if code is None:
            return None
        if id(code) in seen:
            continue
        seen.add(id(code))
        names = set()
        _code_names(code, names)
        if names & _REACHES_NAMESPACE or modname in names:
            return None
        held = list(f.__defaults__ or ()) + list((f.__kwdefaults__ or {}).values())
        for cell in f.__closure__ or ():
            try:
                held.append(cell.cell_contents)
            except ValueError:
                pass
        for value in held:
            if not reach(value):
                return None
        for name in names:
            if name in persistent:
                found.add(name)
                continue
            pending.extend(methods.get(name, ()))
            if name in ns and not reach(ns[name]):
                return None
    return sorted(found)


def _docstring(doc):
    """A docstring as a description: its lines without the indentation
    they share (as inspect.cleandoc), or None."""
    if not isinstance(doc, str) or not doc.strip():
        return None
    lines = doc.expandtabs().split("\n")
    rest = [ln for ln in lines[1:] if ln.strip()]
    indent = min((len(ln) - len(ln.lstrip()) for ln in rest), default=0)
    out = [lines[0].strip()] + [ln[indent:].rstrip() for ln in lines[1:]]
    return "\n".join(out).strip()


def _index_columns(entry, cname, attr, columns):
    """One entry of __indexes__/__unique__: an attribute name or a tuple of
    them (what `index(...)`/`unique(...)` return)."""
    cols = (entry,) if isinstance(entry, str) else entry
    if not isinstance(cols, (tuple, list)) or not cols or not all(isinstance(c, str) for c in cols):
        raise TypeError(f"{cname}.{attr}: each entry must be an attribute name or a tuple of names, not {entry!r}")
    names = {c["name"] for c in columns}
    for c in cols:
        if c not in names:
            raise TypeError(f"{cname}.{attr}: {c!r} is not an attribute of {cname}")
    if len(set(cols)) != len(cols):
        raise TypeError(f"{cname}.{attr}: {entry!r} names an attribute twice")
    return list(cols)


def _declared_indexes(cls, cname, columns):
    """The indexes a class declares (inherited declarations included), and
    one per reference attribute that no declared index starts with, so that
    "the objects referring to X" is a lookup."""
    out = []
    for attr, unique in (("__unique__", True), ("__indexes__", False)):
        entries = getattr(cls, attr, ())
        if isinstance(entries, str):
            entries = (entries,)
        if not isinstance(entries, (tuple, list)):
            raise TypeError(f"{cname}.{attr} must be a tuple, not {type(entries).__name__}")
        for entry in entries:
            cols = _index_columns(entry, cname, attr, columns)
            if not any(i["columns"] == cols and i["unique"] == unique for i in out):
                out.append({"columns": cols, "unique": unique, "constraint": unique})
    for c in columns:
        if c["type"].startswith("ref:") and not any(i["columns"][0] == c["name"] for i in out):
            out.append({"columns": [c["name"]], "unique": False})
    return out


def _analyze(mod):
    """Describes a freshly executed module as JSON (catalog ModuleShape)."""
    ns = mod.__dict__
    modname = mod.__name__
    classes = []
    functions = []
    glob = []
    persistent = {g for g in _annotations_of(mod) if not g.startswith("_")}

    def described(fn, is_method):
        desc = _function_desc(fn, ns, is_method)
        desc["globals"] = _globals_read(fn, mod, persistent)
        comment = _docstring(getattr(fn, "__doc__", None))
        if comment is not None:
            desc["comment"] = comment
        return desc
    for name, value in list(ns.items()):
        if name.startswith("_"):
            continue
        if isinstance(value, type) and issubclass(value, Persistent) and value is not Persistent \
                and getattr(value, "__module__", None) == modname:
            parent = None
            for b in value.__bases__:
                if issubclass(b, Persistent) and b is not Persistent:
                    if getattr(b, "__module__", None) != modname:
                        raise TypeError(f"class {name}: persistent base {b.__name__} must be in the same module")
                    parent = b.__name__
            columns = []
            for klass in reversed(value.__mro__):
                if klass is Persistent or not (isinstance(klass, type) and issubclass(klass, Persistent)):
                    continue
                for an, at in _annotations_of(klass).items():
                    if an.startswith("_") or an == "id":
                        continue
                    t, nullable = _type_desc(at, ns)
                    if t == "void":
                        raise TypeError(f"attribute {name}.{an} cannot be annotated None")
                    has_default = an in klass.__dict__
                    default = None
                    if has_default:
                        dv = klass.__dict__[an]
                        if dv is None:
                            nullable = nullable or False
                        default = _enc(t, dv, f"{name}.{an} default")
                    columns = [c for c in columns if c["name"] != an]
                    columns.append({"name": an, "type": t, "nullable": nullable,
                                    "has_default": has_default, "default": default})
            methods = []
            for mname, mval in value.__dict__.items():
                if mname.startswith("_") or not isinstance(mval, _types.FunctionType):
                    continue
                methods.append(described(mval, True))
            klass = {"name": name, "table": _snake(name), "parent": parent,
                     "columns": columns, "methods": methods,
                     "indexes": _declared_indexes(value, name, columns)}
            if isinstance(getattr(value, "__migrate__", None), _types.FunctionType):
                klass["migrate"] = True
            # The class's own docstring (not one it inherits).
            comment = _docstring(value.__dict__.get("__doc__"))
            if comment is not None:
                klass["comment"] = comment
            classes.append(klass)
        elif isinstance(value, _types.FunctionType) and getattr(value, "__module__", None) == modname:
            functions.append(described(value, False))
    for gname, gann in _annotations_of(mod).items():
        if gname.startswith("_"):
            continue
        t, nullable = _type_desc(gann, ns)
        v = ns.get(gname)
        glob.append({"name": gname, "type": t, "nullable": nullable or v is None,
                     "value": _enc(t, v, gname)})
    shape = {"classes": classes, "functions": functions, "globals": glob}
    comment = _docstring(ns.get("__doc__"))
    if comment is not None:
        shape["comment"] = comment
    return _json.dumps(shape)


def _bind(mod, shape_json):
    """Attaches catalog identities to a loaded module's classes."""
    shape = _json.loads(shape_json)
    ns = mod.__dict__
    module_classes = {}
    for c in shape["classes"]:
        module_classes[c["name"]] = ns[c["name"]]
    by_parent = {}
    for c in shape["classes"]:
        by_parent.setdefault(c["parent"], []).append(c)
    ids = {c["name"]: c["id"] for c in shape["classes"]}

    def subtree(name):
        out = [ids[name]]
        for child in by_parent.get(name, []):
            out.extend(subtree(child["name"]))
        return out

    for c in shape["classes"]:
        cls = ns[c["name"]]
        cols = [(col["name"], col["type"], col["nullable"], col["has_default"], col.get("default"))
                for col in c["columns"]]
        indexes = [(i["id"], i["columns"]) for i in c.get("indexes", ())]
        cls.__amber__ = _ClassInfo(c["id"], cols, subtree(c["name"]), module_classes, indexes)
        for name, t, _n, _h, _d in cols:
            if t.startswith("ref:"):
                setattr(cls, name, _Ref(name, t[4:]))
    mod.__amber_globals__ = [(g["name"], g["type"], g["nullable"]) for g in shape["globals"]]
