"""The catalog queries BI tools and drivers send when they connect and
sync (tests/clients/recorded/*.sql), run on Amber and on PostgreSQL 15
with the same schema (tests/clients/recorded/schema.sql); the results
(column names and values) must be equal.

    python tests/clients/recorded_queries.py AMBER_DSN POSTGRES_DSN

Each .sql file names the tool, the repository and commit its queries were
taken from. A query is a block that starts with `-- name: N`, then
optional annotations, then the statement exactly as the tool sends it:

  -- params: SQL    a query run first on each server; its one row is
                    bound as $1, $2, ... (the tool binds the oid or name
                    of the object it lists)
  -- ignore: a, b   columns whose values are physical and differ between
                    any two servers (sizes, toast tables, xids); their
                    names are still compared
  -- gap: reason    a known difference, listed in the README; the query
                    must still differ, so the list stays true

Values are compared after two normalizations: an oid of a user object
(>= 16382, in a column of an oid or reg* type) reads as "<oid>", since
the two servers number objects differently; and the PostgreSQL
database's name (a database of its own for this test, so other tests'
tables do not show) reads as Amber's, "amber". Rows are compared as
multisets unless a query has `-- ordered`.
Exits non-zero listing every difference. Run by tests/tests/clients.rs.
"""
import pathlib
import sys

import psycopg

HERE = pathlib.Path(__file__).parent / "recorded"
PG_DATABASE = "amber_recorded"
# The first oid of a user object; Amber's own schema `amber` and language
# `python` take the two below it (PostgreSQL's built-ins are all lower).
FIRST_USER_OID = 16382
# oid, regproc, regprocedure, regoper, regoperator, regclass, regtype,
# regrole, regnamespace, xid-free.
OID_TYPES = {26, 24, 2202, 2203, 2204, 2205, 2206, 4096, 4089}
# oidvector, oid[], regclass[], regtype[].
OID_ARRAY_TYPES = {30, 1028, 2210, 2211}


def parse(path):
    queries, current = [], None
    for line in path.read_text().splitlines():
        if line.startswith("-- name:"):
            current = {"name": f"{path.stem}/{line[8:].strip()}", "sql": [],
                       "params": None, "ignore": set(), "gap": None, "ordered": False}
            queries.append(current)
        elif current is None:
            continue
        elif not current["sql"] and line.startswith("-- params:"):
            current["params"] = line[10:].strip()
        elif not current["sql"] and line.startswith("-- ignore:"):
            current["ignore"] = {c.strip() for c in line[10:].split(",")}
        elif not current["sql"] and line.startswith("-- gap:"):
            current["gap"] = line[7:].strip()
        elif not current["sql"] and line.strip() == "-- ordered":
            current["ordered"] = True
        else:
            current["sql"].append(line)
    for q in queries:
        q["sql"] = "\n".join(q["sql"]).strip().removesuffix(";")
    return queries


def normalize(value, type_oid, database):
    if value is None:
        return None
    if type_oid in OID_TYPES and isinstance(value, int) and value >= FIRST_USER_OID:
        return "<oid>"
    if type_oid in OID_ARRAY_TYPES:
        if isinstance(value, str):  # oidvector: "16390 16391"
            value = [int(v) for v in value.split()]
        return ["<oid>" if isinstance(v, int) and v >= FIRST_USER_OID else v for v in value]
    if value == database:
        return "amber"
    return value


def run(conn, query, database):
    params = None
    try:
        with conn.cursor() as cur:
            if query["params"]:
                cur.execute(query["params"])
                params = cur.fetchone()
            cur.execute(query["sql"], params)
            if cur.description is None:
                return ("status", cur.statusmessage)
            names = [d.name for d in cur.description]
            types = [d.type_code for d in cur.description]
            rows = []
            for row in cur.fetchall():
                rows.append(tuple(
                    "<ignored>" if names[i] in query["ignore"]
                    else normalize(v, types[i], database)
                    for i, v in enumerate(row)))
            if not query["ordered"]:
                rows.sort(key=repr)
            return ("rows", names, rows)
    except psycopg.Error as e:
        conn.rollback()
        return ("error", e.sqlstate, str(e).splitlines()[0])


def describe(result, other):
    """`result` for a failure message: its error, or its column names and
    the rows the other server does not have (at most 20)."""
    if result[0] != "rows":
        return repr(result)
    _, names, rows = result
    if other[0] == "rows" and other[1] == names:
        theirs = list(other[2])
        rows = [r for r in rows if r not in theirs or theirs.remove(r)]
        if not rows:
            return f"{' | '.join(names)}\n      (no rows the other lacks; order differs)"
    lines = [" | ".join(names)] + [" | ".join(map(repr, r)) for r in rows[:20]]
    if len(rows) > 20:
        lines.append(f"... {len(rows)} rows")
    return "\n      ".join(lines)


def pg_database(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    parts = dict(p.split("=", 1) for p in pg_dsn.split())
    parts["dbname"] = PG_DATABASE
    return " ".join(f"{k}={v}" for k, v in parts.items())


def main():
    amber_dsn, pg_dsn = sys.argv[1], pg_database(sys.argv[2])
    schema = (HERE / "schema.sql").read_text()
    amber = psycopg.connect(amber_dsn, autocommit=True)
    pg = psycopg.connect(pg_dsn, autocommit=True)
    # PostgreSQL's default time zone is the one its initdb ran in; both
    # answer in UTC here.
    for conn in (amber, pg):
        conn.execute("SET TimeZone = 'UTC'")
    amber.execute(schema)
    # Every Amber database has its own schema `amber` (amber.modules):
    # PostgreSQL gets an empty one so the schema lists compare.
    pg.execute("CREATE SCHEMA amber")
    pg.execute(schema)
    pg.execute("ANALYZE")

    failures, passed, gaps = [], 0, 0
    for path in sorted(HERE.glob("*.sql")):
        if path.name == "schema.sql":
            continue
        for query in parse(path):
            got = run(amber, query, "amber")
            want = run(pg, query, PG_DATABASE)
            same = got == want
            if query["gap"]:
                gaps += 1
                if same:
                    failures.append(f"{query['name']}: listed as a gap ({query['gap']}) "
                                    "but Amber now answers as PostgreSQL: remove the gap")
                else:
                    print(f"gap {query['name']}: {query['gap']}")
            elif same:
                passed += 1
                print(f"ok  {query['name']}")
            else:
                failures.append(f"{query['name']}:\n    Amber:\n      {describe(got, want)}\n"
                                f"    PostgreSQL 15:\n      {describe(want, got)}")
    print(f"{passed} queries answer as PostgreSQL 15; {gaps} known gaps; "
          f"{len(failures)} differences")
    if failures:
        sys.exit("\n".join(failures))
    print("all recorded queries passed")


if __name__ == "__main__":
    main()
