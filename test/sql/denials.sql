-- Denials are recorded once per (role, table, reason) and interval, with a
-- count (issue 12, item 7; docs/design/denials.md).  On 0.6.0 a role with no
-- rule running a denied statement in a loop left one record per statement
-- (29,000 a second): sections 1 and 2 show 200 and 50 records there.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;

CREATE ROLE regress_den_a LOGIN;      -- no rule
CREATE ROLE regress_den_b LOGIN;      -- no rule
CREATE ROLE regress_den_c LOGIN;      -- no rule (summaries)
CREATE ROLE regress_den_ok LOGIN;     -- a rule for den_t1, 'care'
GRANT USAGE ON SCHEMA health_pass TO regress_den_a, regress_den_b, regress_den_c, regress_den_ok;
CREATE TABLE den_t1 (person_id text PRIMARY KEY, note text);
INSERT INTO den_t1 SELECT 'P' || i, 'note ' || i FROM generate_series(1, 20) i;
CREATE TABLE den_t2 (person_id text PRIMARY KEY, note text);
INSERT INTO den_t2 SELECT 'Q' || i, 'note ' || i FROM generate_series(1, 20) i;
GRANT SELECT ON den_t1, den_t2 TO regress_den_a, regress_den_b, regress_den_c, regress_den_ok;
SELECT health_pass.protect('den_t1', 'person_id') IS NOT NULL AS p1,
       health_pass.protect('den_t2', 'person_id') IS NOT NULL AS p2,
       health_pass.allow('regress_den_ok', 'den_t1', 'care') IS NOT NULL AS a;

CREATE FUNCTION den_mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM health_pass.audit_log);
END $$;
-- the records of the regress_den roles since mark, timestamps masked
CREATE FUNCTION den_since(mark bigint)
RETURNS TABLE (current_user_name name, relation regclass, subject text, purpose text, outcome text, reason text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY
    SELECT a.current_user_name, a.relation, a.subject, a.purpose, a.outcome,
           regexp_replace(a.reason, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00', '<t>', 'g')
    FROM health_pass.audit_log a
    WHERE a.id > mark AND a.current_user_name::text LIKE 'regress_den%' ORDER BY a.id;
END $$;
-- records per (role, table, outcome) since mark
CREATE FUNCTION den_counts(mark bigint)
RETURNS TABLE (current_user_name name, relation regclass, outcome text, records bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY
    SELECT a.current_user_name, a.relation, a.outcome, count(*)
    FROM health_pass.audit_log a
    WHERE a.id > mark AND a.current_user_name::text LIKE 'regress_den%'
    GROUP BY 1, 2, 3 ORDER BY a.current_user_name, a.relation::text, a.outcome;
END $$;
-- the count a summary record carries (NULL when it is not one)
CREATE FUNCTION den_summary_count(reason text) RETURNS bigint LANGUAGE sql AS $$
    SELECT (regexp_match(reason,
        '^(.*): ([0-9]+) more denied statements from ([0-9-]+ [0-9:.]+\+00) to ([0-9-]+ [0-9:.]+\+00)(; purpose varied)?$'))[2]::bigint $$;
-- wait (at most 30 s) until the writer has queued and written n summary records
-- of role since mark
CREATE FUNCTION den_wait_summaries(role name, mark bigint, n int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..300 LOOP
        PERFORM health_pass.audit_flush();
        IF (SELECT count(*) FROM health_pass.audit_log a WHERE a.id > mark AND a.current_user_name = role
            AND den_summary_count(a.reason) IS NOT NULL) >= n THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN false;
END $$;
GRANT EXECUTE ON FUNCTION den_mark(), den_since(bigint), den_counts(bigint) TO PUBLIC;

-- 1. a loop of 200 denied statements within one interval leaves one record;
-- each statement still sees an empty table
SET health_pass.denial_interval = '1h';
SELECT den_mark() AS m \gset
SET ROLE regress_den_a;
SET health_pass.purpose = 'research';
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        IF (SELECT count(*) FROM den_t1) <> 0 THEN
            RAISE EXCEPTION 'a denied statement saw rows';
        END IF;
    END LOOP;
END $$;
RESET ROLE;
SELECT * FROM den_since(:m);

-- 2. counted apart: per role, per table, per reason (no purpose / no rule)
SELECT den_mark() AS m \gset
SET ROLE regress_den_a;
DO $$ BEGIN FOR i IN 1..50 LOOP PERFORM count(*) FROM den_t2; END LOOP; END $$;
RESET health_pass.purpose;
DO $$ BEGIN FOR i IN 1..50 LOOP PERFORM count(*) FROM den_t1; END LOOP; END $$;
SET ROLE regress_den_b;
SET health_pass.purpose = 'research';
DO $$ BEGIN FOR i IN 1..50 LOOP PERFORM count(*) FROM den_t1; END LOOP; END $$;
-- a join of both tables: one decision per table
DO $$ BEGIN FOR i IN 1..50 LOOP PERFORM count(*) FROM den_t1 JOIN den_t2 USING (note); END LOOP; END $$;
RESET ROLE;
SELECT * FROM den_counts(:m);
SELECT * FROM den_since(:m);

-- 3. allowed reads stay one record per (statement, subject), in a loop too
SELECT den_mark() AS m \gset
SET ROLE regress_den_ok;
SET health_pass.purpose = 'care';
DO $$ BEGIN FOR i IN 1..30 LOOP PERFORM note FROM den_t1 WHERE person_id = 'P1'; END LOOP; END $$;
SELECT count(*) FROM den_t1 WHERE person_id IN ('P2', 'P3', 'P4');
-- the same role is still denied on the table it has no rule for
DO $$ BEGIN FOR i IN 1..30 LOOP PERFORM count(*) FROM den_t2; END LOOP; END $$;
RESET ROLE;
SELECT * FROM den_counts(:m);

-- 4. the interval ends: the writer queues one summary with the count; the
-- next denial is recorded at once and starts a new interval.  The summary
-- carries the last denied statement's who and when.
SET health_pass.denial_interval = '2s';
SELECT den_mark() AS m \gset
SET ROLE regress_den_c;
SET health_pass.purpose = 'research';
DO $$ BEGIN FOR i IN 1..40 LOOP PERFORM count(*) FROM den_t1; END LOOP; END $$;
SET health_pass.purpose = 'audit';
SELECT count(*) FROM den_t1;
RESET ROLE;
SELECT den_wait_summaries('regress_den_c', :m, 1) AS summary_written;
SELECT * FROM den_since(:m);
-- the count, the times, and the last statement's fields
SELECT den_summary_count(a.reason) AS more,
       (regexp_match(a.reason, ' from (\S+ \S+) to '))[1]::timestamptz <=
       (regexp_match(a.reason, ' to (\S+ \S+?)(;|$)'))[1]::timestamptz AS ordered,
       (regexp_match(a.reason, ' to (\S+ \S+?)(;|$)'))[1]::timestamptz = a.logged_at AS last_at,
       a.statement_id > f.statement_id AS last_stmt, a.purpose
FROM health_pass.audit_log a, LATERAL (SELECT statement_id FROM health_pass.audit_log f
    WHERE f.id > :m AND f.current_user_name = 'regress_den_c' ORDER BY f.id LIMIT 1) f
WHERE a.id > :m AND a.current_user_name = 'regress_den_c' AND den_summary_count(a.reason) IS NOT NULL;
-- a new interval: recorded at once, and a denial after its end emits the
-- summary itself (or the writer does: the log reads the same)
SELECT den_mark() AS m \gset
SET ROLE regress_den_c;
DO $$ BEGIN FOR i IN 1..5 LOOP PERFORM count(*) FROM den_t2; END LOOP; END $$;
SELECT pg_sleep(2.2);
SELECT count(*) FROM den_t2;
RESET ROLE;
SELECT * FROM den_since(:m);

-- 5. audit_sync: the recorded denial is durable before the statement ends;
-- an aggregated one returns no rows, like the recorded one
SET health_pass.denial_interval = '1h';
SET health_pass.audit_sync = on;
SELECT den_mark() AS m \gset
SET ROLE regress_den_b;
RESET health_pass.purpose;
SELECT count(*) FROM den_t2;
SELECT * FROM den_t2;
RESET ROLE;
RESET health_pass.audit_sync;
SELECT * FROM den_since(:m);

-- 6. denial_interval 0: every denial is recorded (as on 0.6.0)
SET health_pass.denial_interval = 0;
SELECT den_mark() AS m \gset
SET ROLE regress_den_b;
DO $$ BEGIN FOR i IN 1..3 LOOP PERFORM count(*) FROM den_t1; END LOOP; END $$;
RESET ROLE;
SELECT * FROM den_counts(:m);
-- only a superuser sets it
SET ROLE regress_den_b;
SET health_pass.denial_interval = '1h';
RESET ROLE;

-- 7. a flood past the table: more (role, table, reason) keys than
-- health_pass.denial_slots, all from one session user, which holds at most
-- denial_slots / 8 of them; the rest are counted into its overflow entry.
-- On 0.7.0 keys without a slot were recorded every time (the 0.6.0 flood):
-- here more than 1,100 records.  Now the records are bounded, and records +
-- counts = denials
SET health_pass.denial_interval = '5s';
SELECT current_setting('health_pass.denial_slots')::int + 60 AS keys \gset
SELECT (:keys + 39) / 40 AS ntables \gset
\set ECHO none
\o /dev/null
SELECT format('CREATE TABLE den_f%s (person_id text PRIMARY KEY)', i) FROM generate_series(1, :ntables) i \gexec
SELECT format('GRANT SELECT ON den_f%s TO PUBLIC', i) FROM generate_series(1, :ntables) i \gexec
SELECT format('SELECT health_pass.protect(''den_f%s'', ''person_id'')', i) FROM generate_series(1, :ntables) i \gexec
\o
\set ECHO all
CREATE TEMP TABLE den_keys AS
SELECT 'regress_den_f' || r AS role, 'den_f' || t AS tbl, p AS purpose
FROM generate_series(1, 20) r, generate_series(1, :ntables) t, unnest(ARRAY['', 'research']) p;
SELECT count(*) >= :keys AS enough_keys FROM den_keys;
\set ECHO none
\o /dev/null
SELECT format('CREATE ROLE regress_den_f%s', r) FROM generate_series(1, 20) r \gexec
\o
\set ECHO all
GRANT SELECT ON den_keys TO PUBLIC;
SELECT den_mark() AS m \gset
SELECT set_config('den.mark', :'m', false) IS NOT NULL AS marked;
-- every key denied twice, back to back
DO $$
DECLARE k record;
BEGIN
    FOR pass IN 1..2 LOOP
        FOR k IN SELECT * FROM den_keys ORDER BY 1, 2, 3 LOOP
            EXECUTE format('SET ROLE %I', k.role);
            PERFORM set_config('health_pass.purpose', k.purpose, false);
            EXECUTE format('SELECT count(*) FROM %I', k.tbl);
            RESET ROLE;
        END LOOP;
    END LOOP;
    RESET health_pass.purpose;
END $$;
SELECT health_pass.audit_flush() >= 0 AS flushed;
CREATE TEMP TABLE den_full AS
SELECT a.current_user_name, a.relation, a.reason FROM health_pass.audit_log a
WHERE a.id > :m AND a.current_user_name::text LIKE 'regress_den_f%';
-- at most the session user's share of keys, and its overflow entry's
-- first record, are recorded at once
SELECT count(*) <= current_setting('health_pass.denial_slots')::int / 8 + 2 AS records_bounded
FROM den_full;
-- wait for the summaries of the counted ones, then nothing is missing
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        PERFORM health_pass.audit_flush();
        EXIT WHEN (SELECT count(*) + coalesce(sum(den_summary_count(a.reason)), 0) - count(den_summary_count(a.reason))
                   FROM health_pass.audit_log a
                   WHERE a.id > current_setting('den.mark')::bigint AND a.current_user_name::text LIKE 'regress_den_f%')
                  >= 2 * (SELECT count(*) FROM den_keys);
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT count(den_summary_count(a.reason)) > 0 AS some_summaries,
       count(*) - count(den_summary_count(a.reason)) + coalesce(sum(den_summary_count(a.reason)), 0)
         = 2 * (SELECT count(*) FROM den_keys) AS every_denial_accounted
FROM health_pass.audit_log a
WHERE a.id > :m AND a.current_user_name::text LIKE 'regress_den_f%';
SELECT count(*) FILTER (WHERE a.reason LIKE 'denials of several tables, roles and reasons by this session user beyond its share of health_pass.denial_slots: % more denied statements from %') > 0
         AS overflow_summaries
FROM health_pass.audit_log a
WHERE a.id > :m AND a.current_user_name::text LIKE 'regress_den_f%';
SELECT count(*) AS keys_recorded_more_than_twice FROM (
    SELECT current_user_name, relation, reason FROM health_pass.audit_log a
    WHERE a.id > :m AND a.current_user_name::text LIKE 'regress_den_f%' AND den_summary_count(a.reason) IS NULL
    GROUP BY 1, 2, 3 HAVING count(*) > 2) x;

RESET health_pass.denial_interval;

-- 8. a role with CREATEROLE makes member roles of itself and is denied
-- once as each (a key per role), then loops a denied SELECT.  On 0.7.0,
-- 1,100 such roles filled the table in 60 ms and every later denial was
-- recorded (3,000 SELECTs, 3,000 records); scaled down here, 200 roles are
-- 200 keys and records.  Now its session user holds its share of keys, the
-- rest are counted into its overflow entry.
CREATE ROLE regress_den_cr LOGIN CREATEROLE;
ALTER ROLE regress_den_cr SET health_pass.denial_interval = '2s';
GRANT SELECT ON den_t2 TO PUBLIC;
SELECT current_user AS su \gset
SELECT den_mark() AS m \gset
\c - regress_den_cr
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXECUTE format('CREATE ROLE regress_den_m%s ROLE regress_den_cr', i);
        EXECUTE format('SET ROLE regress_den_m%s', i);
        PERFORM count(*) FROM den_t2;
        RESET ROLE;
    END LOOP;
    FOR i IN 1..300 LOOP
        PERFORM count(*) FROM den_t2;
    END LOOP;
END $$;
\c - :"su"
SELECT set_config('den.mark', :'m', false) IS NOT NULL AS marked;
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        PERFORM health_pass.audit_flush();
        EXIT WHEN (SELECT count(*) - count(den_summary_count(a.reason)) + coalesce(sum(den_summary_count(a.reason)), 0)
                   FROM health_pass.audit_log a
                   WHERE a.id > current_setting('den.mark')::bigint AND a.session_user_name = 'regress_den_cr')
                  >= 500;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT count(*) FILTER (WHERE den_summary_count(a.reason) IS NULL)
         <= current_setting('health_pass.denial_slots')::int / 8 + 2 AS records_bounded,
       count(*) - count(den_summary_count(a.reason)) + coalesce(sum(den_summary_count(a.reason)), 0)
         AS denials_accounted
FROM health_pass.audit_log a
WHERE a.id > :m AND a.session_user_name = 'regress_den_cr';
REVOKE SELECT ON den_t2 FROM PUBLIC;
\set ECHO none
\o /dev/null
SELECT format('DROP ROLE regress_den_m%s', i) FROM generate_series(1, 200) i \gexec
\o
\set ECHO all
DROP ROLE regress_den_cr;
\set ECHO none
\o /dev/null
SELECT format('DROP TABLE den_f%s', i) FROM generate_series(1, :ntables) i \gexec
SELECT format('DROP ROLE regress_den_f%s', r) FROM generate_series(1, 20) r \gexec
\o
\set ECHO all
DROP TABLE den_t1, den_t2;  -- den_keys, den_full: temporary, gone with \c
DROP FUNCTION den_mark(), den_since(bigint), den_counts(bigint), den_summary_count(text),
    den_wait_summaries(name, bigint, int);
DELETE FROM health_pass.access_rule WHERE grantee::text LIKE 'regress_den%';
REVOKE ALL ON SCHEMA health_pass FROM regress_den_a, regress_den_b, regress_den_c, regress_den_ok;
DROP ROLE regress_den_a, regress_den_b, regress_den_c, regress_den_ok;
