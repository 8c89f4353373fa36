-- pgTAP: health_pass.audit_sync covers every channel to the client, not only
-- result rows: a NOTICE, an error message, a setting (ParameterStatus, then
-- SHOW) and the end of a statement.  Readers run in dblink sessions; the
-- leaky expressions sit above an OFFSET 0 fence, so they see rows the gate
-- has let through.  test/t/040_sync_channels.pl is the proof across a crash.
\set ECHO none
\set QUIET on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS health_pass;
SELECT plan(19);

CREATE ROLE tap_sync LOGIN;
GRANT USAGE ON SCHEMA health_pass TO tap_sync;
CREATE TABLE sync_people (person_id text PRIMARY KEY, name text);
INSERT INTO sync_people SELECT 'S' || i, 'name ' || i FROM generate_series(1, 40) i;
GRANT SELECT ON sync_people TO tap_sync;
CREATE TABLE sync_copy (s text);
GRANT INSERT ON sync_copy TO tap_sync;
SELECT health_pass.protect('sync_people', 'person_id') \g /dev/null
SELECT health_pass.allow('tap_sync', 'sync_people', 'care') \g /dev/null
ALTER ROLE tap_sync SET health_pass.audit_sync = on;

-- committed_for(subject): is the record of this backend's read of subject in
-- the log yet?  (run by the reader, so SECURITY DEFINER)
CREATE FUNCTION committed_for(p text) RETURNS boolean LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
    SELECT EXISTS (SELECT 1 FROM health_pass.who_read('sync_people', p) WHERE backend_pid = pg_backend_pid())
$$;
-- shout(subject): raise a NOTICE naming subject
CREATE FUNCTION shout(p text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'subject %', p;
    RETURN p;
END $$;
CREATE FUNCTION fail_with(p text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bad subject %', p;
END $$;
GRANT EXECUTE ON FUNCTION committed_for(text), shout(text), fail_with(text) TO tap_sync;

CREATE FUNCTION conn(role text) RETURNS text LANGUAGE sql AS $$
    SELECT format('dbname=%s port=%s host=%s user=%s options=''-c health_pass.purpose=care''',
                  current_database(), current_setting('port'),
                  current_setting('unix_socket_directories'), role)
$$;

-- 1. a NOTICE leaves only after the record of the row it names is written
SELECT dblink_connect('r', conn('tap_sync')) \g /dev/null
SELECT is((SELECT s FROM dblink('r', 'SHOW health_pass.audit_sync') AS t(s text)), 'on',
          'the reader runs under audit_sync');
SELECT is((SELECT count(*) FROM dblink('r', $$SELECT shout(x.person_id) FROM
             (SELECT person_id FROM sync_people WHERE person_id LIKE 'S1%' OFFSET 0) x$$) AS t(p text)),
          11::bigint, 'a query that raises a NOTICE per row runs under audit_sync (the notices wait in batches)');
SELECT is((SELECT count(*) FROM dblink('r', $$SELECT count(shout(x.person_id)) FROM
             (SELECT person_id FROM sync_people WHERE person_id LIKE 'S2%' OFFSET 0) x$$) AS t(n bigint)),
          1::bigint, 'and one whose NOTICEs are its only output');
SELECT health_pass.audit_flush() \g /dev/null
SELECT is((SELECT count(DISTINCT subject) FROM health_pass.audit_log
           WHERE current_user_name = 'tap_sync' AND (subject LIKE 'S1%' OR subject LIKE 'S2%')),
          22::bigint, 'every subject that was in a NOTICE has its record');
SELECT dblink_disconnect('r') \g /dev/null

-- 2. with the writer stuck, nothing carrying a subject gets out.  stuck():
-- let the writer catch up, then lock audit_log again from another session
SELECT dblink_connect('lock', format('dbname=%s port=%s host=%s user=%s', current_database(),
       current_setting('port'), current_setting('unix_socket_directories'), current_user)) \g /dev/null
CREATE FUNCTION stuck() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dblink_exec('lock', 'ROLLBACK');
    PERFORM health_pass.audit_flush();
    PERFORM dblink_exec('lock', 'BEGIN');
    RETURN dblink_exec('lock', 'LOCK TABLE health_pass.audit_log IN ACCESS EXCLUSIVE MODE');
END $$;
SELECT dblink_connect('s', format('dbname=%s port=%s host=%s user=%s', current_database(),
       current_setting('port'), current_setting('unix_socket_directories'), current_user)) \g /dev/null
SELECT dblink_exec('s', $$SET health_pass.audit_timeout = '300ms'; SET health_pass.purpose = 'care';
                          SET health_pass.audit_sync = on; SET application_name = 'sync_s'; SET ROLE tap_sync$$) \g /dev/null
SELECT is(stuck(), 'LOCK TABLE', 'another session locks audit_log: the writer is stuck');
SELECT throws_ok($$SELECT * FROM dblink('s', 'SELECT x.person_id::int FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S31'' OFFSET 0) x') AS t(n int)$$,
                 'YHA01', 'health_pass withheld this error message: the audit log is not being written',
                 'a cast error that would print the subject is withheld');
SELECT stuck() \g /dev/null
SELECT throws_ok($$SELECT * FROM dblink('s', 'SELECT fail_with(x.person_id) FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S32'' OFFSET 0) x') AS t(n text)$$,
                 'YHA01', 'health_pass withheld this error message: the audit log is not being written',
                 'RAISE EXCEPTION with the subject is withheld');
SELECT stuck() \g /dev/null
SELECT throws_ok($$SELECT * FROM dblink('s', 'SELECT count(shout(x.person_id)) FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S37'' OFFSET 0) x') AS t(n bigint)$$,
                 'YHA01', NULL, 'a statement that raised a NOTICE naming a subject fails at its end (the NOTICE is withheld)');
SELECT stuck() \g /dev/null
SELECT throws_ok($$SELECT * FROM dblink('s', 'SELECT 1 FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S33'' OFFSET 0) x WHERE set_config(''application_name'', x.person_id, false) IS NULL')
                   AS t(n int)$$,
                 'YHA01', NULL, 'a statement that put a subject into a setting and returned no row fails at its end');
SELECT is((SELECT n FROM dblink('s', 'SHOW application_name') AS t(n text)), 'sync_s',
          'and the setting is rolled back');
SELECT stuck() \g /dev/null
SELECT dblink_exec('s', 'LISTEN sync_ch') \g /dev/null
SELECT throws_ok($$SELECT * FROM dblink('s', 'SELECT 1 FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S38'' OFFSET 0) x WHERE pg_notify(''sync_ch'', x.person_id) IS NULL')
                   AS t(n int)$$,
                 'YHA01', NULL, 'a statement that sent a subject with NOTIFY fails at its end');
SELECT is((SELECT count(*) FROM dblink_get_notify('s')), 0::bigint, 'and the notification is not delivered');
SELECT stuck() \g /dev/null
SELECT throws_ok($$SELECT dblink_exec('s', 'DO $d$ BEGIN PERFORM 1 FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S34'' OFFSET 0) x WHERE set_config(''application_name'', x.person_id, false) IS NULL; END $d$')$$,
                 'YHA01', NULL, 'so does a DO block that did the same');
SELECT stuck() \g /dev/null
SELECT throws_ok($$SELECT dblink_exec('s', 'INSERT INTO sync_copy SELECT x.person_id FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S35'' OFFSET 0) x')$$,
                 'YHA01', NULL, 'an INSERT ... SELECT fails before it commits');
SELECT is((SELECT count(*) FROM sync_copy), 0::bigint, 'nothing was copied');
SELECT stuck() \g /dev/null
SELECT dblink_exec('s', 'BEGIN') \g /dev/null
SELECT throws_ok($$SELECT dblink_exec('s', 'INSERT INTO sync_copy SELECT x.person_id FROM (SELECT person_id FROM sync_people
                     WHERE person_id = ''S36'' OFFSET 0) x')$$,
                 'YHA01', NULL,
                 'inside a transaction block, the same INSERT fails at its end (ExecutorFinish), before control returns');
SELECT is(dblink_exec('s', 'ROLLBACK'), 'ROLLBACK', 'the session stays: its transaction rolls back');
SELECT dblink_exec('lock', 'ROLLBACK') \g /dev/null
SELECT dblink_disconnect('s') \g /dev/null
SELECT dblink_connect('s', conn('tap_sync')) \g /dev/null
SELECT is((SELECT n FROM dblink('s', $$SELECT name FROM sync_people WHERE person_id = 'S7'$$) AS t(n text)), 'name 7',
          'with the writer moving again, reads work');
SELECT dblink_disconnect('s') \g /dev/null
SELECT dblink_disconnect('lock') \g /dev/null

-- 3. the chain is intact
SELECT health_pass.audit_flush() \g /dev/null
SELECT is((SELECT ok FROM health_pass.audit_verify()), true, 'audit_verify() finds the chain intact');

SELECT * FROM finish();
ALTER ROLE tap_sync RESET ALL;
DROP TABLE sync_people, sync_copy;
DROP FUNCTION conn(text), committed_for(text), shout(text), fail_with(text), stuck();
DROP OWNED BY tap_sync;
DROP ROLE tap_sync;
