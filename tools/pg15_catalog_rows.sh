#!/bin/sh
# Writes query/src/pg_catalog/pg15/*.tsv: PostgreSQL 15's built-in rows of
# the catalogs whose contents are PostgreSQL's own (types, access methods,
# collations, ranges, languages, schemas, roles, descriptions, functions),
# read from a PostgreSQL 15:
#     ../shared/tools/pg-scratch start && sh tools/pg15_catalog_rows.sh
# NULL is written as \N; columns in pg_attribute order (columns.rs).
set -eu
DSN="host=127.0.0.1 port=55432 user=amber dbname=amber"
OUT=query/src/pg_catalog/pg15
mkdir -p "$OUT"
dump() {
    psql "$DSN" -Atc "COPY ($2) TO STDOUT" > "$OUT/$1.tsv"
}
# The catalog relations Amber serves (columns.rs): pg_catalog's and
# information_schema's, as SQL lists of names.
names() {
    awk -v section="$1" '
        /^pub const / { on = ($3 == section ":") }
        on && /^        "[a-z_0-9]*",$/ { gsub(/[ ",]/, ""); printf "%s'"'"'%s'"'"'", sep, $0; sep = ", " }
    ' query/src/pg_catalog/columns.rs
}
SERVED="(relnamespace = 11 AND relname IN ($(names PG_CATALOG))) OR (relnamespace = 13207 AND relname IN ($(names INFORMATION_SCHEMA)))"
# Types: not the row types of PostgreSQL's own catalogs but those of the
# relations Amber serves, with their array types.
# information_schema's domains (sql_identifier, yes_or_no, ...) and
# their arrays are PostgreSQL's too.
dump pg_type "SELECT * FROM pg_type t WHERE (typnamespace = 11 AND (typrelid = 0 OR typtype <> 'c') AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c' AND e.typrelid <> 0)) OR (typnamespace = 13207 AND (typtype = 'd' OR typelem IN (SELECT oid FROM pg_type WHERE typnamespace = 13207 AND typtype = 'd'))) OR typrelid IN (SELECT oid FROM pg_class WHERE $SERVED) OR typelem IN (SELECT reltype FROM pg_class WHERE $SERVED) ORDER BY oid"
# The catalog relations Amber serves, as pg_class rows, and their
# columns (system columns too) as pg_attribute rows.
dump pg_class "SELECT * FROM pg_class WHERE $SERVED ORDER BY oid"
dump pg_attribute "SELECT * FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE $SERVED) ORDER BY attrelid, attnum"
dump pg_am "SELECT * FROM pg_am ORDER BY oid"
dump pg_collation "SELECT * FROM pg_collation WHERE collprovider IN ('c', 'd') ORDER BY oid"
dump pg_range "SELECT * FROM pg_range ORDER BY rngtypid"
dump pg_language "SELECT * FROM pg_language WHERE lanname IN ('internal', 'c', 'sql') ORDER BY oid"
# The schemas every PostgreSQL has (owners and ACLs; the bootstrap
# superuser is `amber` in both), its predefined roles, and the
# descriptions of the built-in objects the rows above list.
dump pg_namespace "SELECT * FROM pg_namespace WHERE oid IN (11, 99, 2200, 13207) ORDER BY oid"
dump pg_authid "SELECT * FROM pg_authid WHERE oid <> 10 ORDER BY oid"
dump pg_description "SELECT d.* FROM pg_description d WHERE (d.classoid = 'pg_namespace'::regclass AND d.objoid IN (11, 99, 2200, 13207)) OR (d.classoid = 'pg_type'::regclass AND d.objoid IN (SELECT oid FROM pg_type WHERE typnamespace = 11 AND (typrelid = 0 OR typtype <> 'c'))) OR d.classoid = 'pg_am'::regclass OR (d.classoid = 'pg_collation'::regclass AND d.objoid IN (SELECT oid FROM pg_collation WHERE collprovider IN ('c', 'd'))) OR (d.classoid = 'pg_language'::regclass AND d.objoid IN (SELECT oid FROM pg_language WHERE lanname IN ('internal', 'c', 'sql'))) ORDER BY d.classoid, d.objoid, d.objsubid"
# The built-in functions the rows above name (types' input, output, send,
# receive, typmod and analyze functions; access method handlers; range
# and language support functions): what their regproc columns point at.
dump pg_proc "SELECT * FROM pg_proc WHERE oid IN (SELECT unnest(ARRAY[typinput, typoutput, typreceive, typsend, typmodin, typmodout, typanalyze, typsubscript]) FROM pg_type t WHERE (typnamespace = 11 AND (typrelid = 0 OR typtype <> 'c') AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c' AND e.typrelid <> 0)) OR (typnamespace = 13207 AND (typtype = 'd' OR typelem IN (SELECT oid FROM pg_type WHERE typnamespace = 13207 AND typtype = 'd'))) UNION SELECT amhandler FROM pg_am UNION SELECT rngcanonical FROM pg_range UNION SELECT rngsubdiff FROM pg_range UNION SELECT lanplcallfoid FROM pg_language WHERE lanname IN ('internal', 'c', 'sql') UNION SELECT lanvalidator FROM pg_language WHERE lanname IN ('internal', 'c', 'sql') UNION SELECT laninline FROM pg_language WHERE lanname IN ('internal', 'c', 'sql')) ORDER BY oid"
