#!/usr/bin/env bash
# Benchmark of the audit log at scale (issue 15 §3-5), in one run on one
# cluster: the log is filled through the real path (a superuser reads ranges
# of a protected 5,000,000-row table; the gate records every subject, the
# writer chains and packs them), and at each size:
#   writer records/s (read until audit_flush() returns), then how long the
#   subject index took to cover them after that (the writer indexes between
#   its batches: docs/design/audit_index.md) and the rate of the two together,
#   bytes per record (audit_block with its TOAST and indexes; the subject
#   index apart),
#   who_read() warm (mean of 5 subjects, one session) and at the first call
#   of a new session (mean of 5 sessions), for a subject read about
#   size/5 M times and for one never read,
#   audit_verify() full, audit_checkpoint(), and audit_verify(true) after
#   100,000 more records.
# HP_AUDIT_SIZES: the sizes, in millions of records ("1 10 50").
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$(pg_config --bindir):$PATH"
SIZES=${HP_AUDIT_SIZES:-"1 10 50"}
ROWS=5000000
. test/cluster.sh
DIR=$(mktemp -d /tmp/health_pass_audit.XXXXXX)
chmod 755 "$DIR"
PORT=$((57000 + RANDOM % 900))
trap 'hp_cluster_stop "$DIR/pg"; rm -rf "$DIR"' EXIT
hp_cluster_start "$DIR/pg" "$PORT" >/dev/null || exit 1
cat >>"$DIR/pg/data/postgresql.conf" <<CONF
fsync = on
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
health_pass.audit_queue_size = 65536
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
now_ms() { date +%s%3N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b ? a / b : 0) }'; }
NEXT=1      # next row of people to read
TOTAL=0     # records written by the reads
RATE=0      # records/s of the last fill
fill() { # fill RECORDS: read that many subjects (ranges of people, wrapping); sets RATE
    local want=$1 t0 t1 done=0 chunk
    t0=$(now_ms)
    while [ "$done" -lt "$want" ]; do
        chunk=$(( want - done )); [ "$chunk" -gt 1000000 ] && chunk=1000000
        [ $(( NEXT + chunk - 1 )) -gt $ROWS ] && chunk=$(( ROWS - NEXT + 1 ))
        q -c "COPY (SELECT person_id FROM people WHERE n BETWEEN $NEXT AND $(( NEXT + chunk - 1 ))) TO '/dev/null'"
        done=$(( done + chunk )); NEXT=$(( NEXT + chunk )); [ "$NEXT" -gt $ROWS ] && NEXT=1
    done
    PGOPTIONS="-c health_pass.audit_timeout=30min" q -c "SELECT health_pass.audit_flush()" >/dev/null
    t1=$(now_ms)
    TOTAL=$(( TOTAL + want ))
    RATE=$(awk -v r="$want" -v ms="$(( t1 - t0 ))" 'BEGIN { printf "%.0f", r / (ms / 1000) }')
}
timed() { # timed SQL...: mean ms of the statements after the first, one session
    { echo "$1;"; echo '\timing on'; shift; printf '%s;\n' "$@"; } | psql -XAq |
        sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | awk '{ s += $1 } END { printf "%.2f", s / NR }'
}
first_call() { # first_call SQL: ms of SQL as the first statement of a new session, mean of 5
    for i in 1 2 3 4 5; do
        printf '\\timing on\n%s;\n' "$1" | psql -XAq | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p'
    done | awk '{ s += $1 } END { printf "%.2f", s / NR }'
}
settle() { # until the subject index covers the log and no merge is due; sets SETTLE_MS
    local t0; t0=$(now_ms)
    until [ "$(q -c "SELECT s.unindexed = 0 AND NOT s.merging AND NOT EXISTS (SELECT FROM health_pass.audit_key_run WHERE live GROUP BY level HAVING count(*) >= 8) FROM health_pass.audit_index_status() s")" = t ]; do
        sleep 0.1
    done
    SETTLE_MS=$(( $(now_ms) - t0 ))
}
one_ms() { printf '\\timing on\n%s;\n' "$1" | psql -XAq | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | tail -1; }

OUT=
for size in $SIZES; do
    want=$(( size * 1000000 - TOTAL ))
    rate=- settle_s=- both=-
    if [ "$want" -gt 0 ]; then
        t0=$(now_ms); fill "$want"; rate=$RATE
        settle; settle_s=$(awk -v ms="$SETTLE_MS" 'BEGIN { printf "%.1f", ms / 1000 }')
        both=$(awk -v r="$want" -v ms="$(( $(now_ms) - t0 ))" 'BEGIN { printf "%.0f", r / (ms / 1000) }')
    fi
    q -c "VACUUM ANALYZE health_pass.audit_block, health_pass.audit_key_page, health_pass.audit_key_run"
    read -r recs bytes keys runs live <<<"$(q -F' ' -c "SELECT max(max_id), pg_total_relation_size('health_pass.audit_block'), pg_total_relation_size('health_pass.audit_key_page') + pg_total_relation_size('health_pass.audit_key_run'), (SELECT runs || '/' || levels FROM health_pass.audit_index_status()), (SELECT coalesce(sum(pages), 0) * 8192 FROM health_pass.audit_key_run WHERE live) FROM health_pass.audit_block")"
    s1="P$(( (RANDOM * 32768 + RANDOM) % NEXT + 1 ))"
    w=$(timed "SELECT count(*) FROM health_pass.who_read('people', 'P1')" \
        "SELECT count(*) FROM health_pass.who_read('people', 'P12345')" \
        "SELECT count(*) FROM health_pass.who_read('people', 'P250000')" \
        "SELECT count(*) FROM health_pass.who_read('people', 'P500001')" \
        "SELECT count(*) FROM health_pass.who_read('people', 'P777777')" \
        "SELECT count(*) FROM health_pass.who_read('people', '$s1')")
    hits=$(q -c "SELECT count(*) FROM health_pass.who_read('people', 'P12345')")
    wn=$(timed "SELECT count(*) FROM health_pass.who_read('people', 'nobody0')" \
         "SELECT count(*) FROM health_pass.who_read('people', 'nobody1')" \
         "SELECT count(*) FROM health_pass.who_read('people', 'nobody2')" \
         "SELECT count(*) FROM health_pass.who_read('people', 'nobody3')" \
         "SELECT count(*) FROM health_pass.who_read('people', 'nobody4')" \
         "SELECT count(*) FROM health_pass.who_read('people', 'nobody5')")
    f=$(first_call "SELECT count(*) FROM health_pass.who_read('people', 'P424242')")
    full=$(one_ms "SELECT ok, checked FROM health_pass.audit_verify()")
    okfull=$(q -c "SELECT ok FROM health_pass.audit_verify()")
    cp=$(one_ms "SELECT id FROM health_pass.audit_checkpoint()")
    fill 100000; settle
    inc=$(one_ms "SELECT ok, checked FROM health_pass.audit_verify(true)")
    incn=$(q -c "SELECT checked FROM health_pass.audit_verify(true)")
    OUT="$OUT
$recs records (audit_block $(( bytes / 1048576 )) MB, subject index $(( keys / 1048576 )) MB in $runs runs/levels)
  writer, reads until flushed:     $rate records/s
  subject index covered them:      $settle_s s after the flush; reads to indexed: $both records/s
  bytes per record:                $(ratio "$(( bytes + keys ))" "$recs") (subject index $(ratio "$keys" "$recs") on disk, of which its live pages $(ratio "$live" "$recs"))
  who_read, warm, subject read $hits times: $w ms (mean of 5)
  who_read, warm, subject never read:   $wn ms (mean of 5)
  who_read, first call of a session:    $f ms (mean of 5 sessions)
  audit_verify() full:             $full ms (ok: $okfull)
  audit_checkpoint():              $cp ms
  audit_verify(true) after 100,000 more records: $inc ms ($incn records checked)"
    echo "$OUT" | tail -11 >&2
done
echo
echo "health_pass audit log at scale, $(nproc) cores, fsync on"
echo "$OUT"
