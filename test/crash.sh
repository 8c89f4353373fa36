#!/usr/bin/env bash
# Crash tests for the audit log, on a cluster of their own (fsync on):
#   - the extended protocol (pgbench -M extended / prepared) is gated;
#   - SIGKILL of a reading backend under audit_sync: every row the client
#     received has its record after crash recovery;
#   - immediate shutdown: nothing lost under audit_sync; the window lost
#     with audit_sync off is measured and printed;
#   - writer stopped (SIGSTOP) or killed: reads fail closed, then recover;
#   - health_pass.max_databases: past it reads fail; a dropped database's
#     queue is reused; parallel queries that take every free worker slot
#     do not keep a writer from starting.
#   - audit_sync covers every channel: a NOTICE per row and SIGKILL mid-
#     statement, an error message, a NOTICE and a setting (set_config, then
#     SHOW) carrying a subject while the writer is stopped and then killed:
#     every subject the client received has its record after recovery.
#   - quotas survive a crash restart and an immediate shutdown; a full
#     quota tracker refuses only what it cannot count;
#   - a writer that cannot start writing still stops on a fast shutdown.
# Ends with 'crash: N passed, N failed'.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$(pg_config --bindir):$PATH"
. test/cluster.sh
DIR=$(mktemp -d /tmp/health_pass_crash.XXXXXX)
chmod 755 "$DIR"
PORT=$((55000 + RANDOM % 900))
trap 'kill -CONT $(cat "$DIR/writer.pid" 2>/dev/null) 2>/dev/null; hp_cluster_stop "$DIR/pg" immediate; rm -rf "$DIR"' EXIT
hp_cluster_start "$DIR/pg" "$PORT" || { echo "crash: 0 passed, 1 failed"; exit 1; }
export PGDATABASE=crash
createdb crash
psql -XAtq -d postgres -c "ALTER SYSTEM SET fsync = on" -c "SELECT pg_reload_conf()" >/dev/null

passed=0; failed=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok - $what"
    else failed=$((failed + 1)); echo "not ok - $what"; fi
}
q() { psql -XAtq "$@"; }
wait_ready() { for _ in $(seq 1 100); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && q -c "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
writer_pid() { q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer' AND datname = 'crash'"; }

q <<'SQL'
CREATE EXTENSION health_pass;
CREATE ROLE reader LOGIN;
GRANT USAGE ON SCHEMA health_pass TO reader;
CREATE TABLE people (person_id text PRIMARY KEY, name text);
INSERT INTO people SELECT 'C' || lpad(i::text, 5, '0'), 'name ' || i FROM generate_series(1, 5000) i;
GRANT SELECT ON people TO reader;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('reader', 'people', 'care');
SQL
export PGOPTIONS="-c health_pass.purpose=care"
count() { q -U postgres -c "SELECT health_pass.audit_flush()" >/dev/null 2>&1; q -U postgres -c "SELECT count(*) FROM health_pass.audit_log WHERE $1"; }

# 1. the extended protocol and prepared statements
echo "SELECT name FROM people WHERE person_id = 'C00007';" >"$DIR/one.sql"
for mode in extended prepared; do
    before=$(count "subject = 'C00007'")
    pgbench -n -U reader -M $mode -t 3 -f "$DIR/one.sql" >/dev/null 2>&1
    after=$(count "subject = 'C00007'")
    check "pgbench -M $mode: 3 statements, 3 records" [ $((after - before)) -eq 3 ]
done

# 2. SIGKILL of a reading backend under audit_sync
q -c "ALTER ROLE reader SET health_pass.audit_sync = on"
psql -XAtq -U reader -c "COPY (SELECT person_id, pg_sleep(0.0005) FROM people ORDER BY person_id) TO STDOUT" \
    >"$DIR/got.txt" 2>/dev/null &
client=$!
for _ in $(seq 1 100); do [ "$(wc -l <"$DIR/got.txt")" -ge 1500 ] && break; sleep 0.05; done
victim=$(q -c "SELECT pid FROM pg_stat_activity WHERE usename = 'reader' AND query LIKE 'COPY%'")
kill -9 "$victim" 2>/dev/null
wait $client 2>/dev/null
wait_ready
got=$(cut -f1 "$DIR/got.txt" | grep -c '^C' || true)
cut -f1 "$DIR/got.txt" | grep '^C' >"$DIR/subjects.txt"
missing=$(q -c "SELECT health_pass.audit_flush()" -c "CREATE TEMP TABLE got (s text)" \
            -c "\\copy got FROM '$DIR/subjects.txt'" \
            -c "SELECT count(*) FROM got WHERE NOT EXISTS (SELECT 1 FROM health_pass.audit_log a WHERE a.subject = got.s AND a.backend_pid = $victim)" | tail -1)
echo "   the client received $got rows before SIGKILL; rows without a record after recovery: $missing"
check "SIGKILL under audit_sync: the client received rows" [ "$got" -gt 0 ]
check "SIGKILL under audit_sync: every received row has its record" [ "$missing" = 0 ]
check "the chain is intact after crash recovery" [ "$(q -c 'SELECT ok FROM health_pass.audit_verify()')" = t ]

# 3. immediate shutdown: audit_sync on loses nothing; off loses a measured window
lost_after_immediate() { # $1: on|off; prints records queued but lost
    q -c "ALTER ROLE reader SET health_pass.audit_sync = $1"
    local before expected after
    before=$(count "true")
    psql -XAtq -U reader -c "SELECT count(*) FROM people" >/dev/null
    expected=$((before + 5000))
    hp_as_server pg_ctl -D "$DIR/pg/data" -m immediate -w stop >/dev/null 2>&1
    hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 start >/dev/null 2>&1
    wait_ready
    after=$(q -c "SELECT count(*) FROM health_pass.audit_log")
    echo $((expected - after))
}
lost_on=$(lost_after_immediate on)
check "immediate shutdown under audit_sync: no record lost" [ "$lost_on" = 0 ]
lost_off=$(lost_after_immediate off)
echo "   immediate shutdown right after a 5000-subject read with audit_sync off: $lost_off of 5000 records lost"
# a fast shutdown (pg_ctl's default) right after such a read: the writer
# writes what is queued before it exits, so nothing is lost even with
# audit_sync off (0.6.0's writer died on SIGTERM with records queued)
lost_after_fast() {
    q -c "ALTER ROLE reader SET health_pass.audit_sync = off"
    local before after
    before=$(count "true")
    psql -XAtq -U reader -c "SELECT count(*) FROM people" >/dev/null
    hp_as_server pg_ctl -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1
    hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 start >/dev/null 2>&1
    wait_ready
    after=$(q -c "SELECT count(*) FROM health_pass.audit_log")
    echo $((before + 5000 - after))
}
lost_fast=$(lost_after_fast)
echo "   fast shutdown right after a 5000-subject read with audit_sync off: $lost_fast of 5000 records lost"
check "fast shutdown with audit_sync off: no record lost" [ "$lost_fast" = 0 ]
check "immediate shutdown with audit_sync off: at most the queue is lost" [ "$lost_off" -ge 0 -a "$lost_off" -le 8192 ]
check "the chain is intact after immediate shutdown" [ "$(q -c 'SELECT ok FROM health_pass.audit_verify()')" = t ]

# 4. the writer stopped: reads fail closed after audit_timeout, then recover
q -c "ALTER ROLE reader SET health_pass.audit_sync = on" -c "ALTER ROLE reader SET health_pass.audit_timeout = '500ms'"
q -U reader -c "SELECT name FROM people WHERE person_id = 'C00100'" >/dev/null   # writer running
wp=$(writer_pid); echo "$wp" >"$DIR/writer.pid"
kill -STOP "$wp"
err=$(psql -XAtq -U reader -c "SELECT name FROM people WHERE person_id = 'C00101'" 2>&1)
check "writer stopped: the read fails with a clear error" grep -q "audit log is not being written" <<<"$err"
check "writer stopped: no row was returned" bash -c "! grep -q 'name 101' <<<\"\$0\"" "$err"
kill -CONT "$wp"
check "writer resumed: reads work again" [ "$(q -U reader -c "SELECT name FROM people WHERE person_id = 'C00102'")" = "name 102" ]
kill -TERM "$wp"; sleep 0.3
check "writer terminated: the next read starts a new one" [ "$(q -U reader -c "SELECT name FROM people WHERE person_id = 'C00103'")" = "name 103" ]
new_wp=$(writer_pid)
check "a new writer is running" [ -n "$new_wp" -a "$new_wp" != "$wp" ]
check "records across writers chain correctly" [ "$(q -c 'SELECT ok FROM health_pass.audit_verify()')" = t ]

# 5. health_pass.max_databases: one database past it fails closed, with the
#    setting named; dropping an audited database frees its queue
q -d postgres -c "ALTER SYSTEM SET health_pass.max_databases = 2"
hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 restart >/dev/null 2>&1
wait_ready
# audited_db NAME: a database whose people table (one row, D1) reader may read
audited_db() {
    createdb "$1"
    q -d "$1" >/dev/null <<'SQL'
CREATE EXTENSION health_pass;
GRANT USAGE ON SCHEMA health_pass TO reader;
CREATE TABLE people (person_id text PRIMARY KEY, name text);
INSERT INTO people VALUES ('D1', 'name d1');
GRANT SELECT ON people TO reader;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('reader', 'people', 'care');
SQL
}
for d in crash2 crash3; do audited_db "$d"; done
read_in() { psql -XAtq -U reader -d "$1" -c "SELECT name FROM people WHERE person_id = '$2'" 2>&1; }
check "max_databases 2: the first database audits" [ "$(read_in crash C00104)" = "name 104" ]
check "max_databases 2: the second database audits" [ "$(read_in crash2 D1)" = "name d1" ]
err=$(read_in crash3 D1)
check "max_databases 2: a third fails and names the setting" grep -q "at most 2 databases.*max_databases" <<<"$(echo $err)"
check "max_databases 2: no row of the third was returned" bash -c "! grep -q 'name d1' <<<\"\$0\"" "$err"
dropdb crash2
check "dropping an audited database frees its queue for another" [ "$(read_in crash3 D1)" = "name d1" ]
check "the third database's record was written" [ "$(q -d crash3 -c "SELECT health_pass.audit_flush()" -c "SELECT count(*) FROM health_pass.audit_log WHERE subject = 'D1' AND outcome = 'allowed'" | tail -1)" = 1 ]
# DROP DATABASE in a transaction block (PostgreSQL refuses it) leaves the
# writer running; a database dropped while no writer runs (renamed first,
# which stops it) still frees its queue (0.7.0's first cut leaked the slot)
audited_db crash4
w3=$(q -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer' AND datname = 'crash3'")
q -d postgres -c "BEGIN" -c "DROP DATABASE crash3" -c "ROLLBACK" >/dev/null 2>&1
check "DROP DATABASE in a transaction block: the writer still runs" \
    [ -n "$w3" -a "$(q -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer' AND datname = 'crash3'")" = "$w3" ]
q -d postgres -c "ALTER DATABASE crash3 RENAME TO crash3x" >/dev/null
dropdb crash3x
check "a database dropped while no writer ran frees its queue for another" [ "$(read_in crash4 D1)" = "name d1" ]

# 5b. background worker slots: after a restart, a plain role's parallel
#     queries take every free max_worker_processes slot (max_parallel_workers
#     is a user setting); the writers were reserved at server start, so the
#     first audited read still gets one (on 0.7.0: "could not start an audit
#     writer", and every audited read failed with YHA01)
hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 restart >/dev/null 2>&1
wait_ready
PAR="SET force_parallel_mode = on; SET max_parallel_workers = 16;"
for _ in $(seq 1 10); do
    psql -XAtq -U reader -d postgres -c "$PAR SELECT pg_sleep(5)" >/dev/null 2>&1 &
done
launched=
for _ in $(seq 1 40); do
    launched=$(psql -XAtq -U reader -d postgres -c "$PAR EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1" 2>/dev/null |
               sed -n 's/.*Workers Launched: //p')
    [ "$launched" = 0 ] && break
    sleep 0.1
done
check "parallel queries of a plain role took every free worker slot" [ "$launched" = 0 ]
check "every worker slot taken: an audited read after a restart still gets its writer" [ "$(read_in crash C00105)" = "name 105" ]
check "... and the other audited database too" [ "$(read_in crash4 D1)" = "name d1" ]
wait

# 6. audit_sync: no subject reaches the client by any channel before its record
#    is durable: NOTICEs, error messages, settings (ParameterStatus, SHOW)
q -d crash -c "ALTER ROLE reader RESET ALL" -c "ALTER ROLE reader SET health_pass.audit_sync = on"
q -d crash >/dev/null <<'SQL'
CREATE FUNCTION shout(p text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN RAISE NOTICE 'subject %', p; PERFORM pg_sleep(0.0005); RETURN p; END $$;
CREATE FUNCTION fail_with(p text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'bad subject %', p; END $$;
SQL
# missing_of FILE PID: subjects listed in FILE without a record of backend PID
missing_of() {
    sort -u "$1" >"$1.u"
    q -d crash -c "SELECT health_pass.audit_flush()" -c "CREATE TEMP TABLE got (s text)" \
      -c "\\copy got FROM '$1.u'" \
      -c "SELECT count(*) FROM got WHERE NOT EXISTS (SELECT 1 FROM health_pass.audit_log a WHERE a.subject = got.s AND a.backend_pid = $2)" | tail -1
}
# 6a. a NOTICE per row, SIGKILL of the backend mid-statement
psql -XAtq -d crash -U reader -c "SELECT count(shout(person_id)) FROM people" >/dev/null 2>"$DIR/notices.txt" &
client=$!
for _ in $(seq 1 400); do [ "$(grep -c 'subject C' "$DIR/notices.txt")" -ge 1000 ] && break; sleep 0.05; done
victim=$(q -d crash -c "SELECT pid FROM pg_stat_activity WHERE usename = 'reader' AND query LIKE 'SELECT count(shout%'")
kill -9 "$victim" 2>/dev/null
wait $client 2>/dev/null
wait_ready
grep -o 'subject C[0-9]*' "$DIR/notices.txt" | cut -d' ' -f2 >"$DIR/nsubjects.txt"
got=$(wc -l <"$DIR/nsubjects.txt")
missing=$(missing_of "$DIR/nsubjects.txt" "$victim")
echo "   NOTICE per row, SIGKILL mid-statement: the client received $got subjects in NOTICEs; without a record after recovery: $missing"
check "audit_sync, NOTICE per row then SIGKILL: the client received NOTICEs" [ "$got" -gt 0 ]
check "audit_sync, NOTICE per row then SIGKILL: every subject in a NOTICE has its record" [ "$missing" = 0 ]

# 6b-6f. the writer stopped, one statement that puts a subject into a message
# or a setting, then the writer killed (crash restart loses what was queued):
# a subject the client saw must have its record; it may only have seen none.
# Then the same statements with the writer running: the client does see the
# subject (the statements do leak it), and its record is there.
# The leaky expressions sit above an OFFSET 0 fence, so they run on rows the
# gate has let through (user code in the scan itself is item 2 of issue 11).
q -d crash -c "ALTER ROLE reader IN DATABASE crash SET health_pass.audit_timeout = 500"
leak_case() { # $1: stopped|running; $2: label; $3...: psql -c arguments for the reader
    local mode=$1 label=$2; shift 2
    q -d crash -U reader -c "SELECT name FROM people WHERE person_id = 'C04999'" >/dev/null   # writer running
    local wp; wp=$(writer_pid); echo "$wp" >"$DIR/writer.pid"
    [ "$mode" = stopped ] && kill -STOP "$wp"
    local out; out=$(psql -XAt -d crash -U reader -v VERBOSITY=verbose -c "SELECT 'pid=' || pg_backend_pid()" "$@" 2>&1)
    local pid; pid=$(sed -n 's/^pid=//p' <<<"$out" | head -1)
    if [ "$mode" = stopped ]; then
        kill -9 "$wp"; kill -CONT "$wp" 2>/dev/null
        sleep 0.5; wait_ready
    fi
    grep -o 'C0[0-4][0-9][0-9][0-9]' <<<"$out" | grep -v C04999 >"$DIR/leak.txt"
    local seen; seen=$(sort -u "$DIR/leak.txt" | wc -l)
    local miss; miss=$(missing_of "$DIR/leak.txt" "${pid:-0}")
    if [ "$mode" = stopped ]; then
        echo "   $label, writer stopped then killed: subjects the client saw: $seen, without a record: $miss"
        check "audit_sync, $label: no subject reached the client without a durable record" [ "$miss" = 0 ]
    else
        echo "   $label, writer running: subjects the client saw: $seen, without a record: $miss"
        check "audit_sync, $label, writer running: the client gets the subject, and it has its record" [ "$seen" -ge 1 -a "$miss" = 0 ]
    fi
    [ "$miss" = 0 ] || sed 's/^/   | /' <<<"$out"
}
leak_cases() { # $1: stopped|running
    leak_case "$1" "an error message with the value (cast)" \
        -c "SELECT x.person_id::int FROM (SELECT person_id FROM people WHERE person_id = 'C0004' || '2' OFFSET 0) x"
    leak_case "$1" "RAISE EXCEPTION with the value" \
        -c "SELECT fail_with(x.person_id) FROM (SELECT person_id FROM people WHERE person_id = 'C0004' || '3' OFFSET 0) x"
    leak_case "$1" "a NOTICE with the value" \
        -c "SELECT 1 FROM (SELECT person_id FROM people WHERE person_id = 'C0004' || '4' OFFSET 0) x WHERE shout(x.person_id) IS NULL"
    leak_case "$1" "set_config(application_name), then SHOW" \
        -c "SELECT 1 FROM (SELECT person_id FROM people WHERE person_id = 'C0004' || '5' OFFSET 0) x WHERE set_config('application_name', x.person_id, false) IS NULL" \
        -c "SHOW application_name"
    leak_case "$1" "set_config in a DO block, then SHOW" \
        -c "DO \$\$ BEGIN PERFORM 1 FROM (SELECT person_id FROM people WHERE person_id = 'C0004' || '6' OFFSET 0) x WHERE set_config('application_name', x.person_id, false) IS NULL; END \$\$" \
        -c "SHOW application_name"
}
leak_cases stopped
leak_cases running
check "the chain is intact after the audit_sync crashes" [ "$(q -d crash -c 'SELECT ok FROM health_pass.audit_verify()')" = t ]

# 7. quotas survive a crash restart and an immediate shutdown: after either,
#    a rule's count is what the audit log says (0.6.0 started from zero)
q >/dev/null <<'SQL'
CREATE ROLE counted NOLOGIN;
CREATE ROLE counter1 LOGIN IN ROLE counted;
ALTER ROLE counter1 SET health_pass.audit_sync = on;
GRANT SELECT ON people TO counted;
SELECT health_pass.allow('counted', 'people', 'care', 10, '1 hour');
SQL
read_as() { psql -XAtq -U "$1" -d crash -c "SELECT name FROM people WHERE person_id = '$2'" 2>&1; }
for i in 1 2 3 4 5 6; do read_as counter1 "C0200$i" >/dev/null; done
q -c "SELECT health_pass.audit_flush()" >/dev/null
psql -XAtq -d crash -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
sleep 0.5
victim=$(q -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND pid <> pg_backend_pid()")
kill -KILL "$victim"; wait 2>/dev/null
sleep 1; wait_ready
check "quota after a crash restart: the server did restart" grep -q "(PID $victim) was terminated by signal 9" "$DIR/pg/server.log"
for i in 1 2 3 4; do read_as counter1 "C0210$i" >/dev/null; done
check "quota after a crash restart: a subject read before costs nothing" [ "$(read_as counter1 C02001)" = "name 2001" ]
err=$(read_as counter1 C02200)
check "quota after a crash restart: the 11th subject is refused (6 before + 4 after)" grep -q "quota exceeded" <<<"$err"
# the role that read is renamed: its reads still count against the rule
# (0.7.0's first cut found the rule by the role's name in the record)
q -c "ALTER ROLE counter1 RENAME TO counter1x" >/dev/null
hp_cluster_stop "$DIR/pg" immediate
hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 start >/dev/null 2>&1
wait_ready
q -c "CREATE ROLE counter2 LOGIN IN ROLE counted" -c "ALTER ROLE counter2 SET health_pass.audit_sync = on" \
  -c "ALTER ROLE counter2 SET health_pass.audit_timeout = 500" >/dev/null
# the first read under a quota rebuilds the counts; a superuser's lock on the
# log makes it fail closed within audit_timeout, not wait for ever
psql -XAtq -d crash -c "BEGIN" -c "LOCK health_pass.audit_block IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null 2>&1 &
sleep 0.5
start=$(date +%s%N)
err=$(psql -XAtq -U counter2 -d crash -c "SELECT name FROM people WHERE person_id = 'C02001'" 2>&1)
took=$(( ($(date +%s%N) - start) / 1000000 ))
echo "   the read behind the lock failed after ${took} ms"
check "quota rebuild behind a superuser's lock on the log: fails closed (YHA01-class error) within audit_timeout" \
    bash -c "grep -q 'audit_block is locked' <<<\"\$0\" && [ $took -lt 2500 ]" "$err"
wait
err=$(read_as counter2 C02201)
check "quota after an immediate shutdown: a new member of the rule is refused the 11th subject" grep -q "quota exceeded" <<<"$err"
check "quota after an immediate shutdown: the renamed role is refused the 11th subject too" grep -q "quota exceeded" <<<"$(read_as counter1x C02202)"
check "quota after an immediate shutdown: subjects counted before are still readable" [ "$(read_as counter2 C02104)" = "name 2104" ]

# 8. a full quota tracker refuses only the reads it cannot count, and expired
#    entries make room first (0.6.0 took free shared memory, then failed every
#    quota'd role)
q -d postgres -c "ALTER SYSTEM SET health_pass.quota_capacity = 1000" >/dev/null
hp_as_server pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 restart >/dev/null 2>&1
wait_ready
q >/dev/null 2>&1 <<'SQL'
CREATE ROLE fleeting LOGIN;
CREATE ROLE modest LOGIN;
GRANT SELECT ON people TO fleeting, modest;
SELECT health_pass.allow('fleeting', 'people', 'care', 1000, '3 s');
SELECT health_pass.allow('modest', 'people', 'care', 10, '1 hour');
SQL
# modest reads one subject while there is room (for the probe below)
read_as modest C04500 >/dev/null
q >/dev/null <<'SQL'
CREATE FUNCTION probe(ids text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE i text; o text := ''; v text;
BEGIN
    FOREACH i IN ARRAY ids LOOP
        BEGIN
            SELECT name INTO v FROM people WHERE person_id = i;
            o := o || i || ':ok ';
        EXCEPTION WHEN others THEN o := o || i || ':' || SQLSTATE || ' ';
        END;
    END LOOP;
    RETURN o;
END $$;
SQL
# the tracker holds the 11 subjects of "counted" and modest: fleeting's 990th does not fit
err=$(psql -XAtq -U fleeting -d crash -v VERBOSITY=verbose -c "SELECT count(*) FROM (SELECT name FROM people ORDER BY person_id LIMIT 1000) s" 2>&1)
check "tracker of 1000: a rule that would fill it is stopped when it is full (53400)" grep -q "53400.*tracker is full" <<<"$(echo $err)"
check "tracker of 1000: it holds 989 of that rule's subjects" \
    [ "$(q -c "SELECT health_pass.audit_flush()" -c "SELECT count(DISTINCT subject) FROM health_pass.audit_log WHERE current_user_name = 'fleeting' AND outcome = 'allowed'" | tail -1)" = 989 ]
err=$(psql -XAtq -U modest -d crash -v VERBOSITY=verbose -c "SELECT name FROM people WHERE person_id = 'C04000'" 2>&1)
check "tracker full: a read it cannot count is refused (53400), naming the setting" \
    bash -c "grep -q 53400 <<<\"\$0\" && grep -q 'health_pass.quota_capacity' <<<\"\$0\" && ! grep -q 'name 4000' <<<\"\$0\"" "$err"
# a subject the tracker cannot count, refused inside a block that catches the
# error, then read again in the same statement (crashed the server before)
out=$(psql -XAtq -U modest -d crash -c "SELECT probe(ARRAY['C04500', 'C04501', 'C04501', 'C04500'])" 2>&1)
check "tracker full: a refused subject read again in the same statement is refused again, no crash" \
    [ "$out" = "C04500:ok C04501:53400 C04501:53400 C04500:ok " ]
check "tracker full: a role without a quota still reads" [ "$(read_as reader C04001)" = "name 4001" ]
check "tracker full: a subject counted already is still readable" [ "$(read_as fleeting C00001)" = "name 1" ]
sleep 3.5
check "tracker full of expired entries: they make room" [ "$(read_as modest C04002)" = "name 4002" ]

# 9. a writer that cannot start writing (a superuser broke audit_block, so
#    every attempt to read the chain head fails) still stops on a fast
#    shutdown (0.7.0's first drain left it retrying, and the shutdown hung)
audited_db crashz
q -d crashz >/dev/null 2>&1 <<'SQL'
SELECT count(*) FROM people;
SELECT health_pass.audit_flush();
ALTER TABLE health_pass.audit_block ADD COLUMN junk int;
SELECT pg_terminate_backend(writer_pid) FROM health_pass.audit_status();
SQL
sleep 0.5
read_in crashz D1 >/dev/null 2>&1
sleep 1
if hp_as_server pg_ctl -D "$DIR/pg/data" -m fast -w -t 15 stop >/dev/null 2>&1; then stopped=yes; else stopped=no; fi
check "fast shutdown with a writer that cannot read its chain head: the server stops" [ "$stopped" = yes ]
[ "$stopped" = yes ] || hp_as_server pg_ctl -D "$DIR/pg/data" -m immediate -w stop >/dev/null 2>&1

# the SIGKILLs above are this test's own; any other signal or a PANIC is a crash
no_other_crash() { ! grep -E "terminated by signal [0-9]+|PANIC" "$DIR/pg/server.log" | grep -v "terminated by signal 9:"; }
check "no backend died of anything but the SIGKILLs this test sends (server log)" no_other_crash

echo "crash: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
