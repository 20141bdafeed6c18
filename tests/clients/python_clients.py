"""Python clients against a running Amber: psycopg 3, SQLAlchemy's
inspector (what Superset reflects with), asyncpg, pandas and psqlODBC
through pyodbc (the path of Excel, Tableau and Power BI).

    python tests/clients/python_clients.py AMBER_DSN [POSTGRES_DSN]

Each check compares values: with POSTGRES_DSN (a PostgreSQL 15), what the
client reads from Amber must equal what it reads from PostgreSQL for the
same schema; the checks of a Python module (which PostgreSQL cannot run)
compare with known answers. Exits non-zero on the first difference.
Run by `tests/tests/clients.rs`.
"""
import asyncio
import sys

import asyncpg
import pandas
import psycopg
import pyodbc
import sqlalchemy
from sqlalchemy import inspect

SCHEMA = """
DROP SCHEMA IF EXISTS clients_diff CASCADE;
CREATE SCHEMA clients_diff;
CREATE TABLE clients_diff.customer (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE clients_diff.account (id bigint PRIMARY KEY, owner bigint, balance numeric DEFAULT 0,
    opened date, tags text[]);
CREATE INDEX account_owner_idx ON clients_diff.account (owner);
CREATE TABLE clients_diff.item (id integer PRIMARY KEY, qty smallint, weight real, code char(3),
    label varchar(20), price numeric(10,2) DEFAULT 0, n serial);
COMMENT ON TABLE clients_diff.customer IS 'people who buy';
COMMENT ON COLUMN clients_diff.account.balance IS 'in euros';
CREATE VIEW clients_diff.rich AS SELECT id, balance FROM clients_diff.account WHERE balance > 100;
"""

BANK = '''
from amber import Persistent

class Customer(Persistent):
    name: str

class Account(Persistent):
    owner: Customer
    balance: int = 0

def total() -> int:
    return sum(a.balance for a in Account.all())
'''


def check(what, got, want):
    if got != want:
        sys.exit(f"{what}:\n  Amber:    {got!r}\n  expected: {want!r}")
    print(f"ok  {what}")


def url(dsn):
    parts = dict(p.split("=", 1) for p in dsn.split())
    return (f"postgresql+psycopg://{parts.get('user', 'amber')}@{parts['host']}:"
            f"{parts['port']}/{parts.get('dbname', 'amber')}")


def reflect(dsn):
    """What SQLAlchemy's inspector reads of clients_diff."""
    engine = sqlalchemy.create_engine(url(dsn))
    i = inspect(engine)
    out = {"schemas": "clients_diff" in i.get_schema_names(),
           "tables": sorted(i.get_table_names(schema="clients_diff")),
           "views": i.get_view_names(schema="clients_diff")}
    for t in out["tables"]:
        out[t] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c["default"], c.get("comment"))
                        for c in i.get_columns(t, schema="clients_diff")],
            "pk": i.get_pk_constraint(t, schema="clients_diff"),
            "indexes": sorted(i.get_indexes(t, schema="clients_diff"), key=lambda x: x["name"]),
            "uniques": i.get_unique_constraints(t, schema="clients_diff"),
            "comment": i.get_table_comment(t, schema="clients_diff"),
        }
    meta = sqlalchemy.MetaData()
    meta.reflect(bind=engine, schema="clients_diff")
    out["reflected"] = sorted(meta.tables)
    engine.dispose()
    return out


def psycopg_session(dsn):
    """Server-side binding, COPY in and out, a transaction."""
    out = {}
    with psycopg.connect(dsn, autocommit=True) as c:
        with c.cursor() as cur:
            with cur.copy("COPY clients_diff.account (id, owner, balance, opened, tags) FROM STDIN") as cp:
                cp.write_row((1, 10, "150.50", "2024-01-02", ["a", "b"]))
                cp.write_row((2, 10, "99", None, []))
                cp.write_row((3, None, "1000", "2024-03-04", None))
            cur.execute("INSERT INTO clients_diff.customer VALUES (%s, %s, %s)", (10, "it's", "x@y.org"))
            cur.execute("SELECT id, balance, opened, tags FROM clients_diff.account WHERE balance > %s "
                        "ORDER BY id", (100,))
            out["select"] = [(r[0], str(r[1]), str(r[2]), r[3]) for r in cur.fetchall()]
            cur.execute("SELECT name FROM clients_diff.customer WHERE id = %s", (10,))
            out["quote"] = cur.fetchone()[0]
            # A Python list bound to `= ANY(%s)`: strings arrive untyped,
            # small integers as int2[]; both compare as the column's type.
            cur.execute("SELECT id FROM clients_diff.account WHERE id = ANY(%s) ORDER BY id", ([1, 3, 7],))
            out["any_ints"] = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT id FROM clients_diff.customer WHERE name = ANY(%s)", (["it's", "z"],))
            out["any_texts"] = [r[0] for r in cur.fetchall()]
            cur.execute("SELECT pg_typeof(%s::int2[]), '{1,2}'::int2[], '{a,\"b c\",NULL}'::text[]",
                        ("{1,2}",))
            out["array_casts"] = cur.fetchone()
            # pg_backend_pid() is the pid BackendKeyData told the client.
            cur.execute("SELECT pg_backend_pid()")
            out["backend_pid"] = cur.fetchone()[0] == c.info.backend_pid
            rows = []
            with cur.copy("COPY (SELECT id, owner FROM clients_diff.account ORDER BY id) TO STDOUT") as cp:
                for row in cp.rows():
                    rows.append(row)
            out["copy_out"] = rows
            # Declared types: integer, smallint, real, char(n), varchar(n),
            # numeric(p,s) and serial, as values, as RowDescription
            # describes them (type, size, modifier) and as errors.
            cur.execute("INSERT INTO clients_diff.item (id, qty, weight, code, label, price) "
                        "VALUES (%s, %s, %s, %s, %s, %s)", (1, 2, 0.1, "ab", "widget", "12.345"))
            cur.execute("INSERT INTO clients_diff.item (id, qty, weight, code, label) "
                        "VALUES (2, -3, 1.5, 'x  ', 'gadget   ')")
            cur.execute("SELECT * FROM clients_diff.item ORDER BY id")
            out["declared_description"] = [
                (d.name, d.type_code, d.display_size, d.internal_size, d.precision, d.scale)
                for d in cur.description]
            out["declared_rows"] = [tuple(repr(v) for v in r) for r in cur.fetchall()]
            cur.execute("SELECT code = 'x', length(code), code || '|', label || '|', weight * 2, "
                        "qty + qty, pg_typeof(qty + qty), weight < 0.1, pg_typeof(id * 2.5) "
                        "FROM clients_diff.item ORDER BY id")
            out["declared_expressions"] = [tuple(repr(v) for v in r) for r in cur.fetchall()]
            errors = []
            for bad in ["INSERT INTO clients_diff.item (id) VALUES (3000000000)",
                        "INSERT INTO clients_diff.item (id, qty) VALUES (3, 40000)",
                        "INSERT INTO clients_diff.item (id, code) VALUES (3, 'abcd')",
                        "INSERT INTO clients_diff.item (id, label) VALUES (3, repeat('x', 21))",
                        "INSERT INTO clients_diff.item (id, price) VALUES (3, 123456789)",
                        "INSERT INTO clients_diff.item (id, weight) VALUES (3, 1e39)",
                        "UPDATE clients_diff.item SET qty = qty * 20000"]:
                try:
                    cur.execute(bad)
                    errors.append(None)
                except psycopg.Error as e:
                    errors.append((e.diag.sqlstate, e.diag.message_primary, e.diag.message_detail))
            out["declared_errors"] = errors
        # A pipeline (statements before one Sync) is one implicit
        # transaction: a failing statement takes the others with it.
        try:
            with c.pipeline():
                c.execute("INSERT INTO clients_diff.customer VALUES (%s, %s, %s)", (20, "p", None))
                c.execute("INSERT INTO clients_diff.customer VALUES (%s, %s, %s)", (20, "p", None))
        except psycopg.errors.UniqueViolation:
            pass
        out["failed_pipeline"] = c.execute(
            "SELECT count(*) FROM clients_diff.customer WHERE id = 20").fetchone()[0]
        with c.pipeline():
            c.execute("INSERT INTO clients_diff.customer VALUES (%s, %s, %s)", (21, "p", None))
            c.execute("INSERT INTO clients_diff.customer VALUES (%s, %s, %s)", (22, "q", None))
        out["pipeline"] = c.execute(
            "SELECT count(*) FROM clients_diff.customer WHERE id IN (21, 22)").fetchone()[0]
        try:
            with c.transaction():
                c.execute("INSERT INTO clients_diff.customer VALUES (11, 'b', 'x@y.org')")
            out["unique"] = None
        except psycopg.errors.UniqueViolation as e:
            out["unique"] = e.diag.sqlstate
    return out


async def asyncpg_session(dsn):
    """Binary protocol, prepared statements, introspection of arrays."""
    parts = dict(p.split("=", 1) for p in dsn.split())
    c = await asyncpg.connect(host=parts["host"], port=int(parts["port"]),
                              user=parts.get("user", "amber"), database=parts.get("dbname", "amber"))
    try:
        stmt = await c.prepare("SELECT id, tags, balance FROM clients_diff.account WHERE id = $1")
        rows = [tuple(await stmt.fetchrow(i)) for i in (1, 2, 3)]
        names = [a.name for a in stmt.get_attributes()]
        types = [a.type.name for a in stmt.get_attributes()]
        arrays = await c.fetchval("SELECT ARRAY[1, 2, 3]::bigint[]")
        # Declared types in the binary format.
        items = [tuple(repr(v) for v in r)
                 for r in await c.fetch("SELECT * FROM clients_diff.item ORDER BY id")]
        return {"rows": [(r[0], r[1], str(r[2])) for r in rows], "names": names,
                "types": types, "arrays": arrays, "items": items}
    finally:
        await c.close()


def pandas_frame(dsn):
    engine = sqlalchemy.create_engine(url(dsn))
    frame = pandas.read_sql(
        "SELECT id, balance FROM clients_diff.account WHERE balance > 100 ORDER BY id", engine)
    engine.dispose()
    return frame.astype(str).values.tolist()


def odbc(dsn):
    """psqlODBC's catalog functions: SQLTables, SQLColumns, SQLPrimaryKeys,
    SQLForeignKeys, SQLStatistics, and a parameterized query."""
    parts = dict(p.split("=", 1) for p in dsn.split())
    c = pyodbc.connect(
        f"DRIVER={{PostgreSQL Unicode}};SERVER={parts['host']};PORT={parts['port']};"
        f"DATABASE={parts.get('dbname', 'amber')};UID={parts.get('user', 'amber')};PWD=x",
        autocommit=True)
    cur = c.cursor()
    sort = lambda rows: sorted(tuple(str(x) for x in r) for r in rows)
    out = {
        "tables": sort((r.table_schem, r.table_name, r.table_type)
                       for r in cur.tables(schema="clients_diff")),
        "columns": sort((r.table_name, r.column_name, r.type_name, r.nullable, r.column_def,
                         r.column_size, r.decimal_digits)
                        for r in cur.columns(schema="clients_diff")),
        "pk": sort((r.table_name, r.column_name, r.key_seq, r.pk_name)
                   for r in cur.primaryKeys("account", schema="clients_diff")),
        "fk": sort((r.pktable_name, r.fktable_name)
                   for r in cur.foreignKeys("account", schema="clients_diff")),
        "statistics": sort((r.table_name, r.non_unique, r.index_name, r.column_name)
                           for r in cur.statistics("account", schema="clients_diff") if r.index_name),
    }
    cur.execute("SELECT id, balance FROM clients_diff.account WHERE id = ?", 1)
    out["select"] = sort(cur.fetchall())
    c.close()
    return out


def setup(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                c.execute(statement)


def python_module(dsn):
    """A Python module's classes as SQLAlchemy reflects them."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP MODULE IF EXISTS clients_bank")
        c.execute(f"CREATE MODULE clients_bank AS $${BANK}$$")
    engine = sqlalchemy.create_engine(url(dsn))
    i = inspect(engine)
    out = {
        "tables": sorted(i.get_table_names(schema="clients_bank")),
        "columns": [(c["name"], str(c["type"]), c["nullable"])
                    for c in i.get_columns("account", schema="clients_bank")],
        "pk": i.get_pk_constraint("account", schema="clients_bank")["constrained_columns"],
        "fks": [(f["constrained_columns"], f["referred_schema"], f["referred_table"],
                 f["referred_columns"]) for f in i.get_foreign_keys("account", schema="clients_bank")],
    }
    engine.dispose()
    return out


def main():
    amber = sys.argv[1]
    postgres = sys.argv[2] if len(sys.argv) > 2 else None
    results = {}
    for name, dsn in [("amber", amber), ("postgres", postgres)]:
        if dsn is None:
            continue
        setup(dsn)
        results[name] = {
            "psycopg": psycopg_session(dsn),
            "sqlalchemy": reflect(dsn),
            "asyncpg": asyncio.run(asyncpg_session(dsn)),
            "pandas": pandas_frame(dsn),
            "odbc": odbc(dsn),
        }
    got = results["amber"]
    # Known answers, and PostgreSQL's where it ran.
    check("psycopg select", got["psycopg"]["select"],
          [(1, "150.50", "2024-01-02", ["a", "b"]), (3, "1000", "2024-03-04", None)])
    check("psycopg quote", got["psycopg"]["quote"], "it's")
    check("psycopg copy out", got["psycopg"]["copy_out"], [("1", "10"), ("2", "10"), ("3", None)])
    check("psycopg unique", got["psycopg"]["unique"], "23505")
    check("psycopg failed pipeline kept nothing", got["psycopg"]["failed_pipeline"], 0)
    check("psycopg pipeline", got["psycopg"]["pipeline"], 2)
    check("psycopg = ANY(list of ints)", got["psycopg"]["any_ints"], [1, 3])
    check("psycopg = ANY(list of strings)", got["psycopg"]["any_texts"], [10])
    check("psycopg array casts", got["psycopg"]["array_casts"], ("smallint[]", [1, 2], ["a", "b c", None]))
    check("psycopg backend pid", got["psycopg"]["backend_pid"], True)
    check("asyncpg rows", got["asyncpg"]["rows"],
          [(1, ["a", "b"], "150.50"), (2, [], "99"), (3, None, "1000")])
    # pandas turns numeric (Decimal) into float64 (coerce_float).
    check("pandas read_sql", got["pandas"], [["1", "150.5"], ["3", "1000.0"]])
    check("sqlalchemy tables", got["sqlalchemy"]["tables"], ["account", "customer", "item"])
    check("sqlalchemy declared types",
          [(c[0], c[1]) for c in got["sqlalchemy"]["item"]["columns"]],
          [("id", "INTEGER"), ("qty", "SMALLINT"), ("weight", "REAL"), ("code", "CHAR(3)"),
           ("label", "VARCHAR(20)"), ("price", "NUMERIC(10, 2)"), ("n", "INTEGER")])
    check("sqlalchemy table comment", got["sqlalchemy"]["customer"]["comment"], {"text": "people who buy"})
    check("sqlalchemy column comment", got["sqlalchemy"]["account"]["columns"][2][4], "in euros")
    check("odbc primary key", got["odbc"]["pk"], [("account", "id", "1", "account_pkey")])
    check("odbc statistics", got["odbc"]["statistics"],
          [("account", "0", "account_pkey", "id"), ("account", "1", "account_owner_idx", "owner")])
    if "postgres" in results:
        want = results["postgres"]
        check("pandas as PostgreSQL", got["pandas"], want["pandas"])
        for client in ["psycopg", "asyncpg", "sqlalchemy", "odbc"]:
            for key in want[client]:
                check(f"{client} {key} as PostgreSQL", got[client][key], want[client][key])
    check("python module", python_module(amber), {
        "tables": ["account", "customer"],
        "columns": [("id", "BIGINT", False), ("owner", "BIGINT", False), ("balance", "BIGINT", False)],
        "pk": ["id"],
        "fks": [(["owner"], "clients_bank", "customer", ["id"])],
    })
    print("all client checks passed")


main()
