#!/usr/bin/env bash
# Benchmark of the access gate and audit log, in one run on one cluster:
#   pgbench point lookups by subject on a 1,000,000-row table, 4 clients:
#     unprotected copy | protected, audit_sync off | protected, audit_sync on |
#     unprotected copy under pgaudit object-level read logging
#   a 100,000-row allowed scan, protected vs unprotected, a superuser's
#   COPY of the whole table (audited per subject since 0.6.0), and what
#   audit_sync costs a query that sends a NOTICE per row (held until the
#   records are durable since 0.6.0).
# Prints TPS and the ratios.  HP_BENCH_SECONDS sets each pgbench run (8),
# HP_BENCH_ROUNDS the rounds of the four configurations (5).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$(pg_config --bindir):$PATH"
SECS=${HP_BENCH_SECONDS:-8}
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
[ -f "$(pg_config --pkglibdir)/pgaudit.so" ] ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql-15-pgaudit >/dev/null; }
. test/cluster.sh
DIR=$(mktemp -d /tmp/health_pass_bench.XXXXXX)
chmod 755 "$DIR"
PORT=$((56000 + RANDOM % 900))
trap 'hp_cluster_stop "$DIR/pg"; rm -rf "$DIR"' EXIT
hp_cluster_start "$DIR/pg" "$PORT" >/dev/null || exit 1
cat >>"$DIR/pg/data/postgresql.conf" <<CONF
shared_preload_libraries = 'health_pass,pgaudit'
fsync = on
shared_buffers = 512MB
pgaudit.role = 'auditor'
pgaudit.log_level = log
CONF
hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w restart >/dev/null
export PGDATABASE=bench
createdb bench
q() { psql -XAtq "$@"; }
q <<'SQL'
CREATE EXTENSION health_pass;
CREATE EXTENSION pgaudit;
CREATE ROLE reader LOGIN;
CREATE ROLE auditor NOLOGIN;
GRANT USAGE ON SCHEMA health_pass TO reader;
CREATE TABLE registry (person_id text PRIMARY KEY, n int NOT NULL, name text, doses int);
INSERT INTO registry SELECT 'P' || i, i, 'name ' || i, i % 4 FROM generate_series(1, 1000000) i;
CREATE INDEX ON registry (n);
CREATE TABLE registry_copy AS SELECT * FROM registry;
ALTER TABLE registry_copy ADD PRIMARY KEY (person_id);
CREATE INDEX ON registry_copy (n);
VACUUM ANALYZE registry; VACUUM ANALYZE registry_copy;
GRANT SELECT ON registry, registry_copy TO reader;
SELECT health_pass.protect('registry', 'person_id');
SELECT health_pass.allow('reader', 'registry', 'bench');
SQL
for t in registry registry_copy; do
    printf '\\set id random(1, 1000000)\nSELECT name, doses FROM %s WHERE person_id = '"'"'P'"'"' || :id;\n' "$t" >"$DIR/$t.sql"
done

tps() { # tps TABLE SYNC PGAUDIT THREADS [SECONDS]
    PGOPTIONS="-c health_pass.purpose=bench" \
        q -c "ALTER ROLE reader SET health_pass.audit_sync = $2" -c "ALTER ROLE reader SET pgaudit.log = 'none'"
    [ "$3" = on ] && q -c "GRANT SELECT ON registry_copy TO auditor" || q -c "REVOKE SELECT ON registry_copy FROM auditor"
    PGOPTIONS="-c health_pass.purpose=bench" pgbench -n -U reader -M prepared -c 4 -j "$4" -T "${5:-$SECS}" \
        -f "$DIR/$1.sql" 2>/dev/null | sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# Steady state first: WAL segments recycled, both tables in shared buffers.
q -c "CHECKPOINT" >/dev/null
tps registry_copy off off 2 5 >/dev/null
tps registry off off 2 5 >/dev/null
q -c "CHECKPOINT" >/dev/null
# pgbench's default of one thread for the 4 clients, 2 threads, and 4
# threads: with fewer threads the client leaves some CPU idle, which the
# audit writer then uses; with 4 threads both cores are saturated and the
# ratio is the ratio of CPU per lookup.  All three are reported.
# Rounds of the four configurations back to back, so that drift on a shared
# machine hits all of them alike.  Each ratio is taken within its round
# (configuration / that round's unprotected run); the figure is the median
# of the rounds' ratios, with their lowest and highest beside it.
ROUNDS=${HP_BENCH_ROUNDS:-5}
POINT=
spread() { # median of the ratios, then the lowest and highest
    local v; v=$(tr ' ' '\n' | grep . | sort -g)
    printf '%s (rounds %s to %s)' "$(echo "$v" | median)" "$(echo "$v" | head -1)" "$(echo "$v" | tail -1)"
}
for j in 1 2 4; do
    B=; OFF=; ON=; AUD=; ROFF=; RON=; RAUD=
    for r in $(seq "$ROUNDS"); do
        b=$(tps registry_copy off off $j); off=$(tps registry off off $j)
        on=$(tps registry on off $j); aud=$(tps registry_copy off on $j)
        echo "  -j $j round $r: unprotected $b, audit_sync off $off, audit_sync on $on, pgaudit $aud tps"
        B="$B $b"; OFF="$OFF $off"; ON="$ON $on"; AUD="$AUD $aud"
        ROFF="$ROFF $(ratio "$off" "$b")"; RON="$RON $(ratio "$on" "$b")"; RAUD="$RAUD $(ratio "$aud" "$b")"
    done
    POINT="$POINT
point lookups, 1,000,000 rows, pgbench -M prepared -c 4 -j $j -T $SECS, fsync on, $ROUNDS rounds
  unprotected copy:              $(echo "$B" | median) tps (median)
  protected, audit_sync off:     $(echo "$OFF" | median) tps  ratio $(echo "$ROFF" | spread)
  protected, audit_sync on:      $(echo "$ON" | median) tps  ratio $(echo "$RON" | spread)
  unprotected under pgaudit:     $(echo "$AUD" | median) tps  ratio $(echo "$RAUD" | spread)"
done
logged=$(grep -c 'AUDIT: OBJECT' "$DIR/pg/server.log" || true)
PGOPTIONS="-c health_pass.audit_timeout=10min" q -c "SELECT health_pass.audit_flush()" >/dev/null
records=$(q -c "SELECT count(*) FROM health_pass.audit_log")
batches=$(q -c "SELECT batches FROM health_pass.audit_status()")
# who_read on the log the runs above wrote: mean ms of 5 subjects
q -c "ALTER ROLE reader RESET health_pass.audit_sync"
whoread=$(psql -XAq <<'SQL' | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | awk '{ s += $1 } END { printf "%.1f", s / NR }'
SELECT count(*) FROM health_pass.who_read('registry', 'P1');
\timing on
SELECT count(*) FROM health_pass.who_read('registry', 'P12345');
SELECT count(*) FROM health_pass.who_read('registry', 'P250000');
SELECT count(*) FROM health_pass.who_read('registry', 'P500001');
SELECT count(*) FROM health_pass.who_read('registry', 'P777777');
SELECT count(*) FROM health_pass.who_read('registry', 'P999999');
SQL
)

scan() { # scan TABLE SYNC: mean ms of 5 runs of a 100,000-row scan
    q -c "ALTER ROLE reader SET health_pass.audit_sync = $2"
    PGOPTIONS="-c health_pass.purpose=bench" psql -XAq -U reader <<SQL | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' |
SELECT count(name) FROM $1 WHERE n <= 100000;
\\timing on
SELECT count(name) FROM $1 WHERE n BETWEEN 100001 AND 200000;
SELECT count(name) FROM $1 WHERE n BETWEEN 200001 AND 300000;
SELECT count(name) FROM $1 WHERE n BETWEEN 300001 AND 400000;
SELECT count(name) FROM $1 WHERE n BETWEEN 400001 AND 500000;
SELECT count(name) FROM $1 WHERE n BETWEEN 500001 AND 600000;
SQL
        awk '{ s += $1 } END { printf "%.0f", s / NR }'
}
# A superuser's COPY of the whole table: every one of the 1,000,000 subjects
# is audited (outcome superuser).  Time against the unprotected copy, and the
# records and bytes of audit_block it added.
copy_ms() { # copy_ms TABLE: ms of one COPY TO /dev/null, after its records are flushed
    psql -XAq -c "SELECT health_pass.audit_flush()" >/dev/null
    psql -XAq <<SQL | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | awk '{ s += $1 } END { printf "%.0f", s }'
\\timing on
COPY $1 TO '/dev/null';
SET health_pass.audit_timeout = '10min';
SELECT health_pass.audit_flush() >= 0;
SQL
}
copy_base=$(copy_ms registry_copy)
before=$(q -c "SELECT written, pg_total_relation_size('health_pass.audit_block') FROM health_pass.audit_status()")
copy_prot=$(copy_ms registry)
after=$(q -c "SELECT written, pg_total_relation_size('health_pass.audit_block') FROM health_pass.audit_status()")
copy_records=$(( ${after%|*} - ${before%|*} ))
copy_bytes=$(( ${after#*|} - ${before#*|} ))

# 5,000 rows, a NOTICE per row from a PL/pgSQL function in the select list:
# audit_sync off against on (the notices wait for the records, in batches)
q -c "CREATE FUNCTION public.bench_notice(text) RETURNS text LANGUAGE plpgsql AS \$\$ BEGIN RAISE NOTICE '%', \$1; RETURN \$1; END \$\$" \
  -c "GRANT EXECUTE ON FUNCTION public.bench_notice(text) TO reader"
notice_ms() { # notice_ms SYNC: mean ms of 5 runs
    q -c "ALTER ROLE reader SET health_pass.audit_sync = $1"
    PGOPTIONS="-c health_pass.purpose=bench" psql -XAq -U reader 2>/dev/null <<SQL | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' |
SELECT count(public.bench_notice(name)) FROM registry WHERE n <= 5000;
\\timing on
SELECT count(public.bench_notice(name)) FROM registry WHERE n BETWEEN 5001 AND 10000;
SELECT count(public.bench_notice(name)) FROM registry WHERE n BETWEEN 10001 AND 15000;
SELECT count(public.bench_notice(name)) FROM registry WHERE n BETWEEN 15001 AND 20000;
SELECT count(public.bench_notice(name)) FROM registry WHERE n BETWEEN 20001 AND 25000;
SELECT count(public.bench_notice(name)) FROM registry WHERE n BETWEEN 25001 AND 30000;
SQL
        awk '{ s += $1 } END { printf "%.0f", s / NR }'
}
notice_off=$(notice_ms off)
notice_on=$(notice_ms on)

scan_base=$(scan registry_copy off)
scan_off=$(scan registry off)
scan_on=$(scan registry on)

echo "$POINT"
echo "  audit records written: $records in $batches commits; pgaudit log lines: $logged"
echo "  who_read() on that log: $whoread ms (mean of 5 subjects)"
echo "100,000-row allowed scan, mean of 5"
echo "  unprotected copy:              $scan_base ms"
echo "  protected, audit_sync off:     $scan_off ms  ratio $(ratio "$scan_off" "$scan_base")"
echo "  protected, audit_sync on:      $scan_on ms  ratio $(ratio "$scan_on" "$scan_base")"
echo "5,000 rows with a NOTICE each, mean of 5"
echo "  protected, audit_sync off:     $notice_off ms"
echo "  protected, audit_sync on:      $notice_on ms  ratio $(ratio "$notice_on" "$notice_off")"
echo "superuser COPY of the whole 1,000,000-row table, until its records are flushed"
echo "  unprotected copy:              $copy_base ms"
echo "  protected (audited):           $copy_prot ms  ratio $(ratio "$copy_prot" "$copy_base")"
echo "  records added: $copy_records; audit_block grew by $copy_bytes bytes ($(awk -v b="$copy_bytes" -v r="$copy_records" 'BEGIN { printf "%.1f", (r ? b / r : 0) }') bytes a record)"
