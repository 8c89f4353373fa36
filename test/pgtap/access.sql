-- pgTAP: access policy guarantees that need more than one session:
-- quotas shared across connections, records kept when the client cancels or
-- disconnects mid-result, fail closed when the writer is stuck, audit_sync
-- per role.
\set ECHO none
\set QUIET on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS health_pass;
SELECT plan(22);

CREATE ROLE tap_reader LOGIN;
-- each refusal recorded, whatever the time between them (counting: test/sql/denials.sql)
ALTER ROLE tap_reader SET health_pass.denial_interval = 0;
CREATE ROLE tap_slow LOGIN;
GRANT USAGE ON SCHEMA health_pass TO tap_reader, tap_slow;
CREATE TABLE people (person_id text PRIMARY KEY, name text);
INSERT INTO people SELECT 'Q' || i, 'name ' || i FROM generate_series(1, 300) i;
GRANT SELECT ON people TO tap_reader, tap_slow;
SELECT health_pass.protect('people', 'person_id') \g /dev/null
SELECT health_pass.allow('tap_reader', 'people', 'care', 5, '1 hour') \g /dev/null
SELECT health_pass.allow('tap_slow', 'people', 'care') \g /dev/null

CREATE FUNCTION conn(role text) RETURNS text LANGUAGE sql AS $$
    SELECT format('dbname=%s port=%s host=%s user=%s options=''-c health_pass.purpose=care''',
                  current_database(), current_setting('port'),
                  current_setting('unix_socket_directories'), role)
$$;
CREATE FUNCTION records_of(pid integer) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT count(*) FROM health_pass.audit_log WHERE backend_pid = pid);
END $$;

-- 1. a quota is shared by every session of the role, and survives reconnects
SELECT dblink_connect('a', conn('tap_reader')) \g /dev/null
SELECT dblink_connect('b', conn('tap_reader')) \g /dev/null
SELECT is((SELECT count(*) FROM dblink('a', $$SELECT person_id FROM people WHERE person_id IN ('Q1','Q2','Q3')$$) AS t(p text)),
          3::bigint, 'session a reads 3 subjects');
SELECT is((SELECT count(*) FROM dblink('b', $$SELECT person_id FROM people WHERE person_id IN ('Q1','Q4','Q5')$$) AS t(p text)),
          3::bigint, 'session b reads 2 new subjects and 1 already counted: 5 of 5');
SELECT throws_ok($$SELECT * FROM dblink('b', 'SELECT person_id FROM people WHERE person_id = ''Q6''') AS t(p text)$$,
                 'YHQ01', NULL, 'a 6th subject from session b is refused with SQLSTATE YHQ01');
SELECT dblink_disconnect('b') \g /dev/null
SELECT dblink_connect('b', conn('tap_reader')) \g /dev/null
SELECT throws_ok($$SELECT * FROM dblink('b', 'SELECT person_id FROM people WHERE person_id = ''Q7''') AS t(p text)$$,
                 'YHQ01', NULL, 'a reconnected session is still over the quota');
SELECT is((SELECT count(*) FROM dblink('b', $$SELECT person_id FROM people WHERE person_id = 'Q2'$$) AS t(p text)),
          1::bigint, 'a subject already counted can still be read');
SELECT health_pass.audit_flush() \g /dev/null
SELECT is((SELECT count(*) FROM health_pass.audit_log WHERE current_user_name = 'tap_reader' AND outcome = 'quota_exceeded'
           AND subject IN ('Q6', 'Q7')),
          2::bigint, 'both refusals are audited as quota_exceeded');
SELECT dblink_disconnect('a') \g /dev/null
SELECT dblink_disconnect('b') \g /dev/null

-- 2. the client cancels mid-result: what was read is audited
SELECT dblink_connect('c', conn('tap_slow')) \g /dev/null
SELECT pid AS cpid FROM dblink('c', 'SELECT pg_backend_pid()') AS t(pid integer) \gset
SELECT dblink_send_query('c', 'SELECT person_id, pg_sleep(0.01) FROM people ORDER BY person_id') \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT is(dblink_cancel_query('c'), 'OK', 'the slow read is cancelled');
SELECT count(*) FROM dblink_get_result('c', false) AS t(p text, s text) \g /dev/null
SELECT matches(dblink_error_message('c'), 'canceling statement', 'the client sees the cancellation');
SELECT ok(records_of(:cpid) BETWEEN 1 AND 299, 'records of the rows read before the cancel are kept');
SELECT dblink_disconnect('c') \g /dev/null

-- 3. the client disconnects mid-result: what was read is audited
SELECT dblink_connect('d', conn('tap_slow')) \g /dev/null
SELECT pid AS dpid FROM dblink('d', 'SELECT pg_backend_pid()') AS t(pid integer) \gset
-- (a leakproof range: LIKE is not leakproof, so it would see, and audit, every row)
SELECT dblink_send_query('d', 'SELECT person_id, pg_sleep(0.01) FROM people WHERE person_id >= ''Q1'' AND person_id < ''Q2'' ORDER BY person_id') \g /dev/null
SELECT pg_sleep(0.3) \g /dev/null
SELECT dblink_disconnect('d') \g /dev/null
SELECT pg_sleep(0.1) FROM generate_series(1, 50)
 WHERE EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :dpid) \g /dev/null
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :dpid), 'the disconnected backend is gone');
SELECT ok(records_of(:dpid) >= 1, 'records of the rows it read are kept');

-- 4. fail closed: with the writer stuck, reads wait audit_timeout and fail
SELECT dblink_connect('lock', format('dbname=%s port=%s host=%s user=%s', current_database(),
       current_setting('port'), current_setting('unix_socket_directories'), current_user)) \g /dev/null
SELECT health_pass.audit_flush() \g /dev/null
SELECT dblink_exec('lock', 'BEGIN') \g /dev/null
SELECT is(dblink_exec('lock', 'LOCK TABLE health_pass.audit_log IN ACCESS EXCLUSIVE MODE'), 'LOCK TABLE',
          'another session locks audit_log: the writer is stuck');
-- session s: a top-level reader as tap_slow, audit_timeout 300 ms
SELECT dblink_connect('s', format('dbname=%s port=%s host=%s user=%s', current_database(),
       current_setting('port'), current_setting('unix_socket_directories'), current_user)) \g /dev/null
SELECT dblink_exec('s', $$SET health_pass.audit_timeout = '300ms'; SET health_pass.purpose = 'care';
                          SET ROLE tap_slow$$) \g /dev/null
SELECT is((SELECT n FROM dblink('s', 'SELECT name FROM people WHERE person_id = ''Q51''') AS t(n text)), 'name 51',
          'audit_sync off: a read is returned while its record waits in the queue');
SELECT pg_sleep(0.4) \g /dev/null
SELECT throws_ok($$SELECT * FROM dblink('s', 'SELECT name FROM people WHERE person_id = ''Q52''') AS t(n text)$$,
                 'YHA01', NULL, 'once a record has waited longer than audit_timeout, reads fail');
SELECT dblink_exec('s', 'RESET ROLE; SET health_pass.audit_sync = on; SET ROLE tap_slow') \g /dev/null
SELECT throws_ok($$SELECT * FROM dblink('s', 'SELECT name FROM people WHERE person_id = ''Q50''') AS t(n text)$$,
                 'YHA01', NULL, 'audit_sync on: the read fails instead of returning an unrecorded row');
SELECT dblink_exec('s', 'RESET ROLE; SET health_pass.audit_sync = off; SET ROLE tap_slow') \g /dev/null
SELECT dblink_exec('lock', 'COMMIT') \g /dev/null
SELECT pg_sleep(0.1) \g /dev/null
SELECT is((SELECT n FROM dblink('s', 'SELECT name FROM people WHERE person_id = ''Q53''') AS t(n text)), 'name 53',
          'reads work again once the writer moves');
SELECT dblink_disconnect('s') \g /dev/null
SELECT health_pass.audit_flush() \g /dev/null
SELECT is((SELECT array_agg(DISTINCT subject ORDER BY subject) FROM health_pass.audit_log
           WHERE current_user_name = 'tap_slow' AND subject IN ('Q50', 'Q51', 'Q52', 'Q53')),
          ARRAY['Q51', 'Q53'], 'every returned read was written; the refused ones returned nothing to record');
SELECT dblink_disconnect('lock') \g /dev/null

-- 5. audit_sync per role, set only by a superuser
ALTER ROLE tap_slow SET health_pass.audit_sync = on;
SELECT dblink_connect('e', conn('tap_slow')) \g /dev/null
SELECT is((SELECT s FROM dblink('e', 'SHOW health_pass.audit_sync') AS t(s text)), 'on',
          'ALTER ROLE ... SET health_pass.audit_sync reaches the role''s sessions');
SELECT throws_ok($$SELECT * FROM dblink('e', 'SET health_pass.audit_sync = off') AS t(s text)$$, '42501', NULL,
                 'the role cannot turn it off');
SELECT is((SELECT count(*) FROM dblink('e', $$SELECT person_id FROM people WHERE person_id = 'Q60'$$) AS t(p text)),
          1::bigint, 'a read under audit_sync returns its row');
SELECT dblink_disconnect('e') \g /dev/null
ALTER ROLE tap_slow RESET health_pass.audit_sync;
SELECT is((SELECT count(*) FROM health_pass.audit_log WHERE subject = 'Q60'), 1::bigint,
          'and its record was committed before the row was sent');

-- 6. the chain is intact after all of this
SELECT health_pass.audit_flush() \g /dev/null
SELECT is((SELECT ok FROM health_pass.audit_verify()), true, 'audit_verify() finds the chain intact');

SELECT * FROM finish();
RESET ROLE;
DROP TABLE people;
DROP FUNCTION conn(text), records_of(integer);
DROP OWNED BY tap_reader, tap_slow;
DROP ROLE tap_reader, tap_slow;
