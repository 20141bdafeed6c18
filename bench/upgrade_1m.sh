#!/bin/bash
# Live upgrade of a 1M-object class (README "Live upgrade"): adding and
# dropping an attribute, and a type change that cannot fail, write no
# object (lazy); a type change that may fail rewrites every object in the
# deploy's one transaction. Prints each deploy's time, scans before and
# after, and the server's peak RSS.
#   AMBER_BIN=target/release/amber bench/upgrade_1m.sh
set -e
BIN=${AMBER_BIN:-/work/main/target/release/amber}
PORT=55460; DIR=/tmp/mig1m; rm -rf $DIR
$BIN serve --listen 127.0.0.1:$PORT --data $DIR > /tmp/mig.log 2>&1 &
SPID=$!; sleep 2
P="psql -h 127.0.0.1 -p $PORT -U amber -d amber -v ON_ERROR_STOP=1 -q"
mod() { printf 'CREATE OR REPLACE MODULE big AS $$\nfrom amber import Persistent\nclass Big(Persistent):\n%b\n$$;\n' "$1"; }
mod "    n: int\n    s: str" | $P
python3 -c "
import sys
w=sys.stdout.write
for i in range(1000000): w(f'{i}\ts{i}\n')" > $DIR.tsv
t0=$(date +%s.%N); $P -c "\copy big.big (n, s) from $DIR.tsv"; t1=$(date +%s.%N)
echo "copy 1M: $(echo "$t1 - $t0" | bc) s"
tm() { local t0=$(date +%s.%N); "$@" > /dev/null; local t1=$(date +%s.%N); echo "$(echo "$t1 - $t0" | bc)"; }
echo "scan before: $(tm $P -c 'select count(*), sum(n) from big.big') s"
echo "add attribute with default: $(mod '    n: int\n    s: str\n    color: str = "red"' | tm $P) s"
echo "scan after (every object reads the default): $(tm $P -c "select count(*), count(color) from big.big where color = 'red'") s"
$P -At -c "select count(*) from big.big where color = 'red'"
echo "peak RSS after the lazy add: $(grep VmHWM /proc/$SPID/status)"
echo "drop attribute s: $(mod '    n: int\n    color: str = "red"' | tm $P) s"
echo "retype n int -> float (cannot fail: lazy): $(mod '    n: float\n    color: str = "red"' | tm $P) s"
echo "scan after (every object converts n): $(tm $P -c 'select count(*), sum(n) from big.big') s"
echo "peak RSS after the lazy retype: $(grep VmHWM /proc/$SPID/status)"
echo "retype n float -> int (may fail: every object rewritten, one transaction): $(mod '    n: int\n    color: str = "red"' | tm $P) s"
echo "server peak RSS: $(grep VmHWM /proc/$SPID/status)"
kill $SPID
