#!/usr/bin/env bash
# Run every health_pass test against a throwaway cluster this script starts
# and stops: pg_regress, isolation, pgTAP, the EU DCC conformance vectors, the
# crash tests and the randomized gate test (each on a cluster of its own), and the
# libFuzzer target.
# Ends with 'N passed, N failed'; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
bash test/deps.sh || exit 1
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export PATH="$(pg_config --bindir):$PATH"
make -s PG_CONFIG=pg_config >/dev/null && $SUDO make -s install >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

. test/cluster.sh
WORK=$(mktemp -d /tmp/health_pass_test.XXXXXX)
chmod 755 "$WORK"
PORT=$((54000 + RANDOM % 900))
trap 'hp_cluster_stop "$WORK/pg"; rm -rf "$WORK"' EXIT
hp_cluster_start "$WORK/pg" "$PORT" || { echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
tally() { passed=$((passed + $1)); failed=$((failed + $2)); echo "== $3: $1 passed, $2 failed"; }

# 1. pg_regress (sql/ -> expected/), then pg_isolation_regress (test/isolation/)
make -s installcheck >"$WORK/regress.log" 2>&1
cat "$WORK/regress.log" | grep -E "^(test| ?ok|not ok)" || true
for d in regression.diffs test/isolation/output/regression.diffs; do [ -f $d ] && head -80 $d; done
tally "$(grep -cE '\.\.\. ok' "$WORK/regress.log")" "$(grep -cE '\.\.\. FAILED' "$WORK/regress.log")" "pg_regress and isolation"

# 2. pgTAP with pg_prove, in its own database
createdb tap
PGDATABASE=tap pg_prove -v test/pgtap/*.sql >"$WORK/tap.log" 2>&1
grep -E "^(not ok|# )" "$WORK/tap.log" || true
tail -3 "$WORK/tap.log"
tally "$(grep -cE '^ok ' "$WORK/tap.log")" "$(( $(grep -cE '^not ok' "$WORK/tap.log") + $(grep -c 'Result: FAIL' "$WORK/tap.log") ))" pgTAP

# 3. conformance over ../shared/dcc-testdata
python3 test/conformance.py | tee "$WORK/conf.log" | grep -vE "^override" 
line=$(grep -E '^conformance: [0-9]+ passed' "$WORK/conf.log" || echo "conformance: 0 passed, 1 failed")
tally "$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')" conformance

# 4. the backend survived everything: still accepting queries
if psql -XAtqc "SELECT 1" >/dev/null 2>&1; then tally 1 0 "server alive"; else tally 0 1 "server alive"; fi
# a backend that crashed is restarted and the server answers again: read its log too
crashes=$(grep -E "terminated by signal|PANIC" "$WORK/pg/server.log" || true)
if [ -z "$crashes" ]; then tally 1 0 "no backend crashed (server log)"
else echo "$crashes" | head -5; tally 0 1 "no backend crashed (server log)"; fi

# 5. crash tests for the audit log, on a cluster of their own
bash test/crash.sh | tee "$WORK/crash.log" | tail -20
line=$(grep -E '^crash: ' "$WORK/crash.log" || echo "crash: 0 passed, 1 failed")
tally "$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')" crash

# 6. libFuzzer on the decoder
bash test/fuzz/run.sh | tee "$WORK/fuzz.log" | tail -4
line=$(grep -E '^fuzz: ' "$WORK/fuzz.log" || echo "fuzz: 0 passed, 1 failed")
tally "$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')" fuzz

# 7. the randomized gate test (issue 11), on a cluster of its own: generated
#    statements as roles with and without rules, quotas and break glass; every
#    value a client saw must be audited for it (HP_RANDOM_SEED, HP_RANDOM_SECONDS)
/usr/bin/python3 test/random_gate.py | tee "$WORK/random.log"
line=$(grep -E '^random_gate: [0-9]+ passed' "$WORK/random.log" || echo "random_gate: 0 passed, 1 failed")
tally "$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')" random_gate

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
