#!/usr/bin/env bash
# Benchmark (make bench): on one core, in one run, measure
#   - openssl speed ecdsap256 verify/s (the reference)
#   - SELECT count(*) FROM t WHERE pass @@ now() over ES256 passes, passes/s
#   - text -> pass parsing, passes/s
#   - payload(p), passes/s
#   - pass @@ now() with 1,000,000 entries in health_pass.revocation, as a
#     ratio to the rate with none (alternated, best of each)
# and print the ratios the README reports; then test/bench/signing.sh (the
# key store: PEM and SoftHSM2 sign/s).  make bench runs test/bench/issue.sh
# next, so issue()'s ratio and the SoftHSM2 rate come from the same run.
# Not a test: numbers vary by machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${HP_BENCH_N:-20000}      # distinct signed passes
REP=${HP_BENCH_REP:-5}      # parse/payload tables hold N*REP rows
bash test/deps.sh
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export PATH="$(pg_config --bindir):$PATH"
make -s >/dev/null && $SUDO make -s install >/dev/null
. test/cluster.sh
WORK=$(mktemp -d /tmp/health_pass_bench.XXXXXX); chmod 755 "$WORK"
trap 'hp_cluster_stop "$WORK/pg"; rm -rf "$WORK"' EXIT
hp_cluster_start "$WORK/pg" $((55000 + RANDOM % 900))

echo "generating $N signed ES256 passes..."
python3 test/gen.py bench "$N" "$WORK"
psql -Xq <<SQL
CREATE EXTENSION health_pass;
SELECT health_pass.trust_add(decode('$(cat "$WORK/dsc.hex")', 'hex')) \g /dev/null
CREATE TABLE src (txt text);
\copy src FROM '$WORK/passes.txt'
CREATE TABLE raw AS SELECT txt FROM src, generate_series(1, $REP);
CREATE TABLE t AS SELECT txt::health_pass.pass AS pass FROM src;
CREATE TABLE tp AS SELECT txt::health_pass.pass AS pass FROM raw;
VACUUM ANALYZE;
CREATE FUNCTION rate(q text) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; n bigint; best numeric := 0;
BEGIN
    FOR i IN 1..3 LOOP
        t0 := clock_timestamp();
        EXECUTE q INTO n;
        best := greatest(best, n / extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
    RETURN round(best);
END \$\$;
SQL
ossl=$(openssl speed -seconds 5 ecdsap256 2>/dev/null | awk '/ecdsa \(nistp256\)/ {print $NF}')
q() { psql -XAtq -c "SET search_path = public, health_pass; SET max_parallel_workers_per_gather = 0; SET jit = off;" -c "$1" | tail -1; }
valid=$(q "SELECT count(*) FROM t WHERE pass @@ now()")
verify=$(q "SELECT rate('SELECT count(*) FROM t WHERE pass @@ now()')")
parse=$(q "SELECT rate('SELECT count(txt::health_pass.pass) FROM raw')")
payload=$(q "SELECT rate('SELECT count(health_pass.payload(pass)) FROM tp')")
# revocation: 1,000,000 random entries (none of them the bench passes' hashes),
# then @@ with them and, in a transaction that truncates and rolls back,
# without them; alternated three times, the best of each (the first full run
# also builds each backend's revocation filter: docs/design/revocation.md)
psql -Xq <<SQL
INSERT INTO health_pass.revocation (hash, hash_type, country, kid, expires, source)
SELECT substr(sha256(int8send(i)), 1, 16), (ARRAY['UCI', 'COUNTRYCODEUCI', 'SIGNATURE'])[1 + i % 3],
       'XX', substr(sha256(int8send(i % 100)), 1, 8), now() + interval '1 year', 'manual'
  FROM generate_series(1, 1000000) i;
VACUUM ANALYZE health_pass.revocation;
SQL
rev_full=0; rev_empty=0
for _ in 1 2 3; do
    f=$(q "SELECT rate('SELECT count(*) FROM t WHERE pass @@ now()')")
    e=$(psql -XAtq -c "SET search_path = public, health_pass; SET max_parallel_workers_per_gather = 0; SET jit = off;" \
        -c "BEGIN" -c "TRUNCATE health_pass.revocation" \
        -c "SELECT rate('SELECT count(*) FROM t WHERE pass @@ now()')" -c "ROLLBACK" | grep -E '^[0-9]+$' | tail -1)
    rev_full=$(python3 -c "print(max($rev_full, $f))"); rev_empty=$(python3 -c "print(max($rev_empty, $e))")
done
rev_valid=$(q "SELECT count(*) FROM t WHERE pass @@ now()")
rev_entries=$(q "SELECT count(*) FROM health_pass.revocation")
ossl2=$(openssl speed -seconds 5 ecdsap256 2>/dev/null | awk '/ecdsa \(nistp256\)/ {print $NF}')
ref=$(python3 -c "print(max($ossl, $ossl2))")
python3 - "$ref" "$verify" "$parse" "$payload" "$valid" "$N" "$rev_full" "$rev_empty" "$rev_valid" "$rev_entries" <<'PY'
import sys
ref, verify, parse, payload, valid, n, rev_full, rev_empty, rev_valid, rev_entries = map(float, sys.argv[1:])
print("passes valid: %d of %d" % (valid, n))
print("openssl speed ecdsap256 verify/s : %10.0f" % ref)
print("pass @@ now() passes/s           : %10.0f  ratio %.2f (goal >= 0.85)" % (verify, verify / ref))
print("text -> pass parsing passes/s    : %10.0f  (goal >= 150000)" % parse)
print("payload(p) passes/s              : %10.0f  (goal >= 150000)" % payload)
print("pass @@ now(), no revocations     : %10.0f  passes/s" % rev_empty)
print("pass @@ now(), %d revocations: %10.0f  passes/s  ratio %.2f (goal >= 0.9); valid %d of %d"
      % (rev_entries, rev_full, rev_full / rev_empty, rev_valid, n))
PY
# the key store: PEM keys and a SoftHSM2 token (its own cluster)
bash test/bench/signing.sh
