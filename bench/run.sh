#!/usr/bin/env bash
# Amber and PostgreSQL 15 side by side, on this machine, in one run:
# the same data, the same workloads, the same client (pgbench).
#
#   bench/run.sh [--quick] [--only P1,P3,...]      (AMBER_BIN=path: skip the build)
#
# Prints one table (workload, Amber, PostgreSQL, ratio: higher is better for
# Amber, so throughput is Amber/PostgreSQL and time is PostgreSQL/Amber) and
# writes it as JSON to bench/results/latest.json (and appends it, one line
# per run, to bench/results/history.jsonl, so a regression can be seen).
# Not part of `cargo test`. Needs: cargo, pgbench/psql (postgresql-client),
# and PostgreSQL 15 with plpython3u (installed from Debian's packages if
# missing, by bench/pg.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
quick=0; only=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --only) only=$2; shift ;;
    *) echo "usage: bench/run.sh [--quick] [--only P1,P2,...]" >&2; exit 2 ;;
  esac
  shift
done
if [ $quick = 1 ]; then
  secs=10; accounts=100000; customers=1000; big=100000; p6_secs=60; p6_window=10
else
  secs=30; accounts=100000; customers=1000; big=1000000; p6_secs=600; p6_window=60
fi
amber_port=55440; pg_port=55441
work=$(mktemp -d /var/tmp/amber-bench.XXXXXX); chmod 755 "$work"
mkdir -p "$here/results"
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

command -v pgbench >/dev/null || {
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql-client-15 >/dev/null
}
if [ -n "${AMBER_BIN:-}" ]; then
  amber_bin=$AMBER_BIN   # a binary already built (e.g. to compare two commits)
else
  echo "building amber (release)..." >&2
  (cd "$root" && cargo build --release -q -p amber)
  amber_bin=$root/target/release/amber
fi

cleanup() {
  [ -n "${amber_pid:-}" ] && kill "$amber_pid" 2>/dev/null && wait "$amber_pid" 2>/dev/null
  "$here/pg.sh" stop "$work/pg" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

"$amber_bin" serve --listen 127.0.0.1:$amber_port --data "$work/amber" >"$work/amber.log" 2>&1 &
amber_pid=$!
"$here/pg.sh" start $pg_port "$work/pg"
for _ in $(seq 100); do psql -h 127.0.0.1 -p $amber_port -U amber amber -qAtc "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done

A() { psql -h 127.0.0.1 -p $amber_port -U amber amber -v ON_ERROR_STOP=1 -qAt "$@"; }
P() { PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -p $pg_port -U amber amber -v ON_ERROR_STOP=1 -qAt "$@"; }

# Memory of a process and its children, as PSS (shared pages split among
# the processes sharing them), in MiB.
pss_mib() {
  local pids="$1 $(pgrep -P "$1" | tr '\n' ' ')" total=0 kb
  for p in $pids; do
    kb=$(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  echo $((total / 1024))
}
pg_pid() { head -1 "$work/pg/postmaster.pid"; }

# Loads n accounts (and the customers) in both; in chunks, so no statement
# is one giant transaction.
load() {
  local n=$1 chunk=100000 from to cmin
  A -f "$here/sql/amber_setup.sql" >/dev/null
  P -f "$here/sql/pg_setup.sql" >/dev/null
  A -c "INSERT INTO bench.customer (name, region) SELECT 'c' || g, g % 50 FROM generate_series(1, $customers) AS t(g)" >/dev/null
  P -c "INSERT INTO customer SELECT g, 'c' || g, g % 50 FROM generate_series(1, $customers) AS t(g)"
  cmin=$(A -c "SELECT min(id) FROM bench.customer")
  for ((from = 1; from <= n; from += chunk)); do
    to=$((from + chunk - 1)); [ $to -gt $n ] && to=$n
    A -c "INSERT INTO bench.account (owner, balance) SELECT $cmin + g % $customers, 1000000 + g % 1000 FROM generate_series($from, $to) AS t(g)" >/dev/null
    P -c "INSERT INTO account SELECT g, 1 + g % $customers, 1000000 + g % 1000 FROM generate_series($from, $to) AS t(g)"
  done
  P -c "VACUUM ANALYZE"
  read -r alo ahi acount < <(A -F ' ' -c "SELECT min(id), max(id), count(*) FROM bench.account")
  if [ $((ahi - alo + 1)) != "$acount" ]; then
    echo "amber's account ids are not contiguous ($alo..$ahi, $acount objects)" >&2; exit 1
  fi
  plo=1; phi=$n
  read -r clo chi < <(A -F ' ' -c "SELECT min(id), max(id) FROM bench.customer")
  cplo=1; cphi=$customers
}

results=()
row() { # workload unit amber pg ratio note
  results+=("$1|$2|$3|$4|$5|$6")
  printf '%-44s %12s %12s %8s  %s\n' "$1" "$3" "$4" "$5" "$6" >&2
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

# pgbench: prints "tps failed_pct latency_ms".
bench() { # port script clients seconds lo hi
  pgbench -n -h 127.0.0.1 -p "$1" -U amber -M prepared -c "$3" -j 2 -T "$4" --max-tries=10 \
    -D lo="$5" -D hi="$6" -f "$2" amber 2>&1 |
    awk '/^tps/ {tps=$3} /failed transactions/ {f=$5} /^latency average/ {lat=$4}
         END {gsub(/[()%]/, "", f); printf "%s %s %s\n", tps+0, f+0, lat+0}'
}
throughput() { # name clients amber_script pg_script [customers: keys are customer ids]
  local a p al=$alo ah=$ahi pl=$plo ph=$phi
  if [ "${5:-}" = customers ]; then al=$clo; ah=$chi; pl=$cplo; ph=$cphi; fi
  read -r a af _ < <(bench $amber_port "$here/sql/$3" "$2" $secs "$al" "$ah")
  read -r p pf _ < <(bench $pg_port "$here/sql/$4" "$2" $secs "$pl" "$ph")
  row "$1" TPS "$a" "$p" "$(ratio "$a" "$p")" "failed: amber ${af}%, pg ${pf}%"
}
query_time() { # name amber_script pg_script
  local a p
  read -r _ _ a < <(bench $amber_port "$here/sql/$2" 1 $secs 0 0)
  read -r _ _ p < <(bench $pg_port "$here/sql/$3" 1 $secs 0 0)
  row "$1" ms "$a" "$p" "$(ratio "$p" "$a")" "latency per query, 1 client"
}

echo "loading $accounts accounts..." >&2
load $accounts
printf '%-44s %12s %12s %8s\n' workload amber postgres ratio >&2
want P1 && throughput "P1 point read by id, 8 clients" 8 amber_p1.sql pg_p1.sql
want P2 && throughput "P2 bank transfer procedure, 8 clients" 8 amber_p2.sql pg_p2.sql
want P2 && throughput "P2' no-op procedure call, 8 clients" 8 amber_nop.sql pg_nop.sql
want P3 && throughput "P3 durable UPDATE by id, 16 clients" 16 amber_p3.sql pg_p3.sql
want P8 && throughput "P8 SQL lookup by indexed reference, 8 clients" 8 amber_p8.sql pg_p8.sql customers
want P8 && throughput "P8 where() through the index, 8 clients" 8 amber_p8b.sql pg_p8b.sql customers
want P9 && throughput "P9 join on a reference, 8 clients" 8 amber_p9.sql pg_p9.sql
if { want P5 || want P7; } && [ "$big" != "$accounts" ]; then
  echo "loading $big accounts..." >&2
  load $big
fi
if want P5; then
  query_time "P5 join+GROUP BY+ORDER BY, $big objects" amber_p5.sql pg_p5.sql
  query_time "P5 GROUP BY balance % 100, $big objects" amber_p5b.sql pg_p5b.sql
fi
if want P7; then
  a=$(pss_mib $amber_pid); p=$(pss_mib "$(pg_pid)")
  row "P7 memory, $big objects loaded" MiB "$a" "$p" "$(ratio "$p" "$a")" "PSS of the server's processes"
  for _ in $(seq 100); do (sleep 20 | A >/dev/null 2>&1 &); (sleep 20 | P >/dev/null 2>&1 &); done
  sleep 5
  a=$(pss_mib $amber_pid); p=$(pss_mib "$(pg_pid)")
  row "P7 memory, + 100 idle connections" MiB "$a" "$p" "$(ratio "$p" "$a")" "PSS of the server's processes"
fi
if want P6; then
  # P3's load for p6_secs; the first and the last window compared.
  for side in amber pg; do
    if [ $side = amber ]; then port=$amber_port; lo=$alo; hi=$ahi; else port=$pg_port; lo=$plo; hi=$phi; fi
    pgbench -n -h 127.0.0.1 -p $port -U amber -M prepared -c 16 -j 2 -T $p6_secs --max-tries=10 \
      -P $p6_window -D lo=$lo -D hi=$hi -f "$here/sql/${side}_p3.sql" amber 2>&1 |
      awk '/^progress:/ {print $4}' > "$work/p6_$side"
  done
  a=$(awk 'NR==1 {f=$1} {l=$1} END {if (f > 0) printf "%.2f", l / f; else print 0}' "$work/p6_amber")
  p=$(awk 'NR==1 {f=$1} {l=$1} END {if (f > 0) printf "%.2f", l / f; else print 0}' "$work/p6_pg")
  row "P6 last/first ${p6_window}s window over ${p6_secs}s of P3" ratio "$a" "$p" "$a" "Amber's own ratio (goal >= 0.9)"
fi

if want P4; then
  # COPY big rows in (a file sent by psql's \copy; the same rows in both:
  # owner and balance, Amber assigning ids) and the whole table out.
  cmin=$(A -c "SELECT min(id) FROM bench.customer")
  pbase=$(P -c "SELECT coalesce(max(id), 0) FROM account")
  awk -v n=$big -v c=$customers -v m=$cmin 'BEGIN { for (g = 1; g <= n; g++) printf "%d\t%d\n", m + g % c, 1000000 + g % 1000 }' > "$work/p4_amber.tsv"
  awk -v n=$big -v c=$customers -v b=$pbase 'BEGIN { for (g = 1; g <= n; g++) printf "%d\t%d\t%d\n", b + g, 1 + g % c, 1000000 + g % 1000 }' > "$work/p4_pg.tsv"
  secs_of() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'; }
  ta=$(secs_of A -c "\\copy bench.account (owner, balance) FROM '$work/p4_amber.tsv'")
  tp=$(secs_of P -c "\\copy account (id, owner, balance) FROM '$work/p4_pg.tsv'")
  a=$(awk -v n=$big -v t="$ta" 'BEGIN { printf "%.0f", n / t }'); p=$(awk -v n=$big -v t="$tp" 'BEGIN { printf "%.0f", n / t }')
  row "P4 COPY $big rows in" rows/s "$a" "$p" "$(ratio "$a" "$p")" "psql \\copy FROM a file, one transaction"
  na=$(A -c "SELECT count(*) FROM bench.account"); np=$(P -c "SELECT count(*) FROM account")
  ta=$(secs_of A -c "\\copy bench.account TO '/dev/null'")
  tp=$(secs_of P -c "\\copy account TO '/dev/null'")
  a=$(awk -v n=$na -v t="$ta" 'BEGIN { printf "%.0f", n / t }'); p=$(awk -v n=$np -v t="$tp" 'BEGIN { printf "%.0f", n / t }')
  row "P4 COPY $na rows out" rows/s "$a" "$p" "$(ratio "$a" "$p")" "psql \\copy TO /dev/null"
fi

# JSON: one object per row.
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
  printf '{"when":"%s","quick":%s,"commit":"%s","machine":"%s","rows":[' \
    "$stamp" $quick "$(cd "$root" && git rev-parse --short HEAD)" "$(nproc) cores, $(uname -m)"
  sep=""
  for r in "${results[@]}"; do
    IFS='|' read -r w u a p q n <<<"$r"
    printf '%s{"workload":"%s","unit":"%s","amber":"%s","postgres":"%s","ratio":"%s","note":"%s"}' \
      "$sep" "$w" "$u" "$a" "$p" "$q" "$n"
    sep=","
  done
  printf ']}\n'
} > "$here/results/latest.json"
cat "$here/results/latest.json" >> "$here/results/history.jsonl"
echo "wrote bench/results/latest.json" >&2
