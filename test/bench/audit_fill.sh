#!/usr/bin/env bash
# Writer steadiness under a sustained fill (issue 15 §3): the fill of
# test/bench/audit.sh (a superuser reads 1,000,000-row ranges of a protected
# 5,000,000-row table, same cluster settings), without measurements between
# sizes, while the audit writer is sampled every 200 ms (pg_stat_activity:
# its wait event; audit_status(): records written and queued;
# pg_stat_progress_vacuum).  Prints the rate at 1, 10, 30 and 50 M records
# (from each million's COPY time: the COPY ends when its last record is
# queued) and every window of 0.4 s or more in which the writer wrote
# nothing while records were queued, with its wait events.
#   HP_FILL_MILLIONS   records to write, in millions (50)
#   HP_FILL_INDEX      "" (the extension's subject index, kept between the
#                      writer's batches), or "gin" to add 0.10.0's GIN index
#                      on _audit_keys(records), which the writer fills as it
#                      inserts each block (for comparison)
#   HP_FILL_KEEP=DIR   keep the samples, per-million times and server log in DIR
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$(pg_config --bindir):$PATH"
MIL=${HP_FILL_MILLIONS:-50}
IDX=${HP_FILL_INDEX:-}
ROWS=5000000
. test/cluster.sh
DIR=$(mktemp -d /tmp/health_pass_fill.XXXXXX)
chmod 755 "$DIR"
OUTD=${HP_FILL_KEEP:-$DIR/out}
mkdir -p "$OUTD"
PORT=$((57000 + RANDOM % 900))
SAMPLER=
trap '[ -n "$SAMPLER" ] && kill $SAMPLER 2>/dev/null; cp "$DIR/pg/server.log" "$OUTD/" 2>/dev/null
      hp_cluster_stop "$DIR/pg"; rm -rf "$DIR"' EXIT
hp_cluster_start "$DIR/pg" "$PORT" >/dev/null || exit 1
cat >>"$DIR/pg/data/postgresql.conf" <<CONF
fsync = on
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
health_pass.audit_queue_size = 65536
log_autovacuum_min_duration = 0
log_checkpoints = on
CONF
hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w restart >/dev/null
export PGDATABASE=bench
createdb bench
q() { psql -XAtq "$@"; }
q <<SQL
CREATE EXTENSION health_pass;
CREATE TABLE people (person_id text PRIMARY KEY, n int NOT NULL);
INSERT INTO people SELECT 'P' || i, i FROM generate_series(1, $ROWS) i;
CREATE INDEX ON people (n);
VACUUM ANALYZE people;
SELECT health_pass.protect('people', 'person_id');
SQL
if [ "$IDX" = gin ]; then
    q -c "CREATE INDEX audit_block_keys ON health_pass.audit_block USING gin (health_pass._audit_keys(records)) WITH (fastupdate = off)"
fi
idxdef="subject index in sorted runs"
[ "$IDX" = gin ] && idxdef="$idxdef, and the GIN index of 0.10.0 filled inline"
(
    while :; do
        psql -XAtq -F'|' \
            -c "SELECT clock_timestamp()::time, s.written, s.queued, coalesce(a.wait_event_type, '-') || ':' || coalesce(a.wait_event, '-')
                FROM health_pass.audit_status() s LEFT JOIN pg_stat_activity a ON a.pid = s.writer_pid" \
            -c "SELECT clock_timestamp()::time, 'vacuum', relid::regclass, phase FROM pg_stat_progress_vacuum" \
            -c "SELECT clock_timestamp()::time, 'index', unindexed, runs FROM health_pass.audit_index_status()" 2>/dev/null
        sleep 0.2
    done >"$OUTD/samples.txt"
) &
SAMPLER=$!
now_ms() { date +%s%3N; }
NEXT=1 failed=0 t0=$(now_ms)
: >"$OUTD/millions.txt"
for ((m = 1; m <= MIL; m++)); do
    ts=$(now_ms)
    q -c "COPY (SELECT person_id FROM people WHERE n BETWEEN $NEXT AND $((NEXT + 999999))) TO '/dev/null'" \
        2>>"$OUTD/errors.txt" || failed=$((failed + 1))
    NEXT=$((NEXT + 1000000)); [ "$NEXT" -gt $ROWS ] && NEXT=1
    echo "$m $(( $(now_ms) - ts ))" >>"$OUTD/millions.txt"
done
PGOPTIONS="-c health_pass.audit_timeout=30min" q -c "SELECT health_pass.audit_flush()" >/dev/null
t1=$(now_ms)
until [ "$(q -c "SELECT s.unindexed = 0 AND NOT s.merging FROM health_pass.audit_index_status() s")" = t ]; do
    sleep 0.1
done
t2=$(now_ms)
kill $SAMPLER; SAMPLER=
echo "health_pass writer under a sustained fill, $(nproc) cores, fsync on: $idxdef"
echo "$MIL,000,000 records in $(( (t1 - t0) / 1000 )) s until flushed: $(( MIL * 1000000 * 1000 / (t1 - t0) )) records/s; reads failed: $failed"
echo "  the subject index covered them $(( t2 - t1 )) ms after the flush: $(( MIL * 1000000 * 1000 / (t2 - t0) )) records/s from first read to indexed"
echo "  most records not yet indexed at one sample: $(grep '|index|' "$OUTD/samples.txt" | cut -d'|' -f3 | sort -n | tail -1)"
awk '{ s += $2; if ($1 == 1 || $1 == 10 || $1 == 30 || $1 == 50)
       printf "  at %d M records: %.0f records/s\n", $1, $1 * 1e6 / (s / 1000) }' "$OUTD/millions.txt"
echo "windows of 0.4 s or more in which the writer wrote nothing while records were queued:"
grep -v -e '|vacuum|' -e '|index|' "$OUTD/samples.txt" | awk -F'|' '
    function sec(t,  a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
    { s = sec($1) }
    NR == 1 || $2 != w || $3 == 0 { if (n && last - s0 >= 0.4) printf "  %s: %.1f s, writer waits:%s\n", t0, last - s0, ev
                         w = $2; n = 0; ev = ""; prev = s; next }
    { if (!n) { t0 = $1; s0 = prev } n++; ev = ev " " $4; last = s; prev = s }
    END { if (n && last - s0 >= 0.4) printf "  %s: %.1f s (at the end), writer waits:%s\n", t0, last - s0, ev }'
grep -h 'automatic vacuum of table "bench.health_pass\|checkpoint starting' "$DIR/pg/server.log" |
    sed 's/^/  /' | cut -c1-140
