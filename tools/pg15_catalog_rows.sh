#!/bin/sh
# Writes query/src/pg_catalog/pg15/*.tsv: PostgreSQL 15's built-in rows of
# the catalogs whose contents are PostgreSQL's own (types, access methods,
# collations, ranges, languages), read from a PostgreSQL 15:
#     ../shared/tools/pg-scratch start && sh tools/pg15_catalog_rows.sh
# NULL is written as \N; columns in pg_attribute order (columns.rs).
set -eu
DSN="host=127.0.0.1 port=55432 user=amber dbname=amber"
OUT=query/src/pg_catalog/pg15
mkdir -p "$OUT"
dump() {
    psql "$DSN" -Atc "COPY ($2) TO STDOUT" > "$OUT/$1.tsv"
}
dump pg_type "SELECT * FROM pg_type WHERE typnamespace = 11 AND (typrelid = 0 OR typtype <> 'c') ORDER BY oid"
dump pg_am "SELECT * FROM pg_am ORDER BY oid"
dump pg_collation "SELECT * FROM pg_collation WHERE collprovider IN ('c', 'd') ORDER BY oid"
dump pg_range "SELECT * FROM pg_range ORDER BY rngtypid"
dump pg_language "SELECT * FROM pg_language WHERE lanname IN ('internal', 'c', 'sql') ORDER BY oid"
