-- pgTAP: a committed trust-list change in another session takes effect at
-- once, even for a backend whose key cache holds the key
\set ECHO none
\set QUIET on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS health_pass;
\i test/fixtures/fixtures.sql
SET search_path = public, health_pass;
SELECT plan(5);
TRUNCATE health_pass.trust_list;
SELECT health_pass.trust_add(der) IS NOT NULL FROM fx_cert WHERE name = 'ec' \g /dev/null
SELECT ok((SELECT txt::health_pass.pass @@ now() FROM fx_pass WHERE name = 'ok_vacc'), 'valid with the DSC present (key now cached)');
SELECT dblink_connect('other', format('dbname=%s port=%s host=%s user=%s', current_database(),
       current_setting('port'), current_setting('unix_socket_directories'), current_user)) \g /dev/null
SELECT is(dblink_exec('other', 'DELETE FROM health_pass.trust_list'), 'DELETE 1', 'another session removes the DSC');
SELECT is((SELECT (health_pass.check(txt::health_pass.pass)).reason FROM fx_pass WHERE name = 'ok_vacc'),
          'unknown_key', 'the removal takes effect at once here');
SELECT is(dblink_exec('other', format('INSERT INTO health_pass.trust_list (kid, certificate) VALUES (%L, %L)',
          substr(sha256(der), 1, 8), der)), 'INSERT 0 1', 'another session adds it back')
  FROM fx_cert WHERE name = 'ec';
SELECT ok((SELECT txt::health_pass.pass @@ now() FROM fx_pass WHERE name = 'ok_vacc'), 'valid again at once');
SELECT dblink_disconnect('other') \g /dev/null
SELECT * FROM finish();
TRUNCATE health_pass.trust_list;
