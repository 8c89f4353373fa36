#!/usr/bin/env bash
# Run every health_pass test: make installcheck (pg_regress, isolation and the
# TAP scripts in test/t/, the crash tests among them, on servers of their own),
# then, against a throwaway cluster this script starts and stops, pgTAP, the EU
# DCC conformance vectors and the server-log check; the randomized gate test (on
# a cluster of its own) and the libFuzzer target.
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
# as root, make installcheck runs as postgres (initdb refuses root): it may write
# test/output/, test/isolation/output/ and tmp_check/, and the top directory,
# where PGXS's TAP rule removes and makes tmp_check/ (its group and mode are
# given back at exit)
ROOT_GM=
cleanup() {
    [ -d "$WORK/pg" ] && hp_cluster_stop "$WORK/pg"
    [ -n "$ROOT_GM" ] && chgrp "${ROOT_GM% *}" "$ROOT" && chmod "${ROOT_GM#* }" "$ROOT"
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0; failed=0
tally() { passed=$((passed + $1)); failed=$((failed + $2)); echo "== $3: $1 passed, $2 failed"; }

# 1. make installcheck: pg_regress (test/sql -> test/expected), pg_isolation_regress
#    (test/isolation/), each on a temporary instance with test/regress.conf, then
#    the TAP scripts test/t/*.pl with prove. Run one part at a time, so that a
#    failure in one does not keep the next from running.
rm -rf test/output/regression.diffs test/isolation/output/regression.diffs
AS=()
if [ "$(id -u)" = 0 ]; then
    mkdir -p test/output test/isolation/output tmp_check
    chown -R postgres test/output test/isolation/output tmp_check
    ROOT_GM="$(stat -c '%g %a' "$ROOT")"
    chgrp postgres "$ROOT" && chmod g+rwx "$ROOT"
    AS=(runuser -u postgres -- env PATH="$PATH")
    "${AS[@]}" test -r "$ROOT/test/regress.conf" ||
        echo "user postgres cannot read $ROOT: make installcheck will fail (let it enter the parent directories)"
fi
installcheck() { "${AS[@]}" make installcheck PG_CONFIG=pg_config "$@"; }

installcheck ISOLATION= TAP_TESTS= >"$WORK/regress.log" 2>&1; rc=$?
grep -E "^(test| ?ok|not ok)|\.\.\. " "$WORK/regress.log" || tail -20 "$WORK/regress.log"
[ -f test/output/regression.diffs ] && head -80 test/output/regression.diffs
p=$(grep -cE '\.\.\. ok' "$WORK/regress.log"); f=$(grep -cE '\.\.\. FAILED' "$WORK/regress.log")
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
tally "$p" "$f" pg_regress

installcheck REGRESS= TAP_TESTS= >"$WORK/isolation.log" 2>&1; rc=$?
grep -E "^(test| ?ok|not ok)|\.\.\. " "$WORK/isolation.log" || tail -20 "$WORK/isolation.log"
[ -f test/isolation/output/regression.diffs ] && head -80 test/isolation/output/regression.diffs
p=$(grep -cE '\.\.\. ok' "$WORK/isolation.log"); f=$(grep -cE '\.\.\. FAILED' "$WORK/isolation.log")
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
tally "$p" "$f" isolation

# TAP: one count per assertion (prove -v); a script that dies, exits non-zero or
# breaks its plan without a failed assertion counts as one failure
installcheck REGRESS= ISOLATION= PROVE_FLAGS=-v >"$WORK/prove.log" 2>&1; rc=$?
p=$(grep -cE '^ok ' "$WORK/prove.log"); f=$(grep -E '^not ok ' "$WORK/prove.log" | grep -vc '# TODO')
died=$(grep -cE '^\S+\.pl +\(Wstat: .* Failed: 0\)' "$WORK/prove.log")
f=$((f + died))
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
if [ "$f" -ne 0 ]; then
    # everything but the passing assertions and make's own lines: diagnostics,
    # the message a script died with, prove's summary
    grep -vE '^ *ok |^echo "\+\+\+|^\+\+\+ |^rm -rf ' "$WORK/prove.log" | head -120
    echo "(TAP logs: tmp_check/log/)"
else
    grep -E '^\S+\.pl \.\.|^Result' "$WORK/prove.log"
fi
tally "$p" "$f" TAP

# the cluster for the parts below
PORT=$((54000 + RANDOM % 900))
hp_cluster_start "$WORK/pg" "$PORT" || { echo "$passed passed, $((failed + 1)) failed"; exit 1; }

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
# a backend that crashed is restarted and the server answers again: read its log
# too, and the logs of make installcheck's temporary instances
# and every TAP script's servers (tmp_check/log/*.log; a SIGKILL, signal 9, is
# only ever sent by the crash scripts, which account for each of theirs)
crashes=$( { grep -HE "terminated by signal|PANIC" "$WORK/pg/server.log" \
    test/output/log/postmaster.log test/isolation/output/log/postmaster.log 2>/dev/null
    grep -HE "terminated by signal|PANIC" tmp_check/log/*.log 2>/dev/null | grep -v "terminated by signal 9:"; } || true)
if [ -z "$crashes" ]; then tally 1 0 "no backend crashed (server log)"
else echo "$crashes" | head -5; tally 0 1 "no backend crashed (server log)"; fi

# 5. libFuzzer on the decoder
bash test/fuzz/run.sh | tee "$WORK/fuzz.log" | tail -4
line=$(grep -E '^fuzz: ' "$WORK/fuzz.log" || echo "fuzz: 0 passed, 1 failed")
tally "$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')" fuzz

# 6. the randomized gate test (issue 11), on a cluster of its own: generated
#    statements as roles with and without rules, quotas and break glass; every
#    value a client saw must be audited for it (HP_RANDOM_SEED, HP_RANDOM_SECONDS)
/usr/bin/python3 test/random_gate.py | tee "$WORK/random.log"
line=$(grep -E '^random_gate: [0-9]+ passed' "$WORK/random.log" || echo "random_gate: 0 passed, 1 failed")
tally "$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')" "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')" random_gate

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
