-- Updating an installed 0.2.0 keeps its audit records and chain: 0.5.0 packs
-- them into audit_block as they are, keeps who may read them, and the writer
-- goes on from the last of them.
\set VERBOSITY terse
-- what earlier tests queued goes to their log before it is dropped
SELECT health_pass.audit_flush() >= 0 AS flushed;
SET client_min_messages = warning;
DROP EXTENSION health_pass CASCADE;
CREATE EXTENSION health_pass VERSION '0.2.0';
RESET client_min_messages;

CREATE ROLE regress_reader LOGIN;
CREATE ROLE regress_auditor;
CREATE TABLE people (person_id text);
INSERT INTO people VALUES ('A1'), ('A2');
GRANT SELECT ON people TO regress_reader;
GRANT USAGE ON SCHEMA health_pass TO regress_reader, regress_auditor;
GRANT SELECT ON health_pass.audit_log TO regress_auditor;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('regress_reader', 'people', 'care');
ALTER ROLE regress_reader SET health_pass.purpose = 'care';

-- This library writes blocks only, so the records an older writer left are
-- made here the way it made them: each hash is SHA-256 of the previous hash,
-- then every field (integers as 8 big-endian bytes, texts as a 4-byte
-- length and their bytes, NULL as length 0xFFFFFFFF), as README documents.
CREATE FUNCTION pg_temp.f(s text) RETURNS bytea LANGUAGE sql AS $$
    SELECT CASE WHEN s IS NULL THEN '\xffffffff'::bytea
                ELSE int4send(octet_length(s)) || convert_to(s, 'UTF8') END $$;
CREATE FUNCTION pg_temp.us(t timestamptz) RETURNS bytea LANGUAGE sql AS $$
    SELECT int8send((extract(epoch FROM t - '2000-01-01 00:00:00+00') * 1000000)::int8) $$;
DO $$
DECLARE
    prev bytea := decode(repeat('00', 32), 'hex');
    r health_pass.audit_log;
BEGIN
    FOR i IN 1..3 LOOP
        r := ROW(i, '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 s', 'postgres',
                 'regress_reader', '10.0.0.1', 'pg_regress', 4242, 1000 + i, 'people'::regclass,
                 'A' || (i % 2 + 1), 'care', 'allowed', NULL, prev, NULL);
        r.hash := sha256(prev || int8send(r.id) || pg_temp.us(r.logged_at)
            || pg_temp.f(r.session_user_name) || pg_temp.f(r.current_user_name)
            || pg_temp.f(host(r.client_addr)) || pg_temp.f(r.application_name)
            || int8send(r.backend_pid::int8) || int8send(r.statement_id)
            || int8send(r.relation::oid::int8) || pg_temp.f(r.subject) || pg_temp.f(r.purpose)
            || pg_temp.f(r.outcome) || pg_temp.f(r.reason));
        INSERT INTO health_pass.audit_log SELECT r.*;
        prev := r.hash;
    END LOOP;
END $$;
SELECT encode(hash, 'hex') AS old_hash FROM health_pass.audit_log WHERE id = 3 \gset

ANALYZE people;
ALTER EXTENSION health_pass UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'health_pass';
-- 0.4.0: a table protected before keeps its subject out of pg_statistic
SELECT attstattarget FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname = 'person_id';
SELECT count(*) AS stored_statistics FROM pg_statistic WHERE starelid = 'people'::regclass;
-- 0.6.0: a table protected before is put under forced row security (its
-- statistics hidden from pg_stats), and its rows read as before
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'people'::regclass;
SELECT rls_enabled_before, rls_forced_before, protected_through FROM health_pass.protected_table;
-- 0.5.0: the records moved into one block, unchanged, and the chain holds
SELECT relkind FROM pg_class WHERE oid = 'health_pass.audit_log'::regclass;
SELECT min_id, max_id, min_at, max_at FROM health_pass.audit_block;
SELECT id, subject, client_addr, statement_id FROM health_pass.audit_log ORDER BY id;
SELECT encode(hash, 'hex') = :'old_hash' AS last_hash_kept FROM health_pass.audit_log WHERE id = 3;
SELECT ok, checked, first_bad FROM health_pass.audit_verify();
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'health_pass';
SELECT has_table_privilege('regress_auditor', 'health_pass.audit_log', 'SELECT') AS log,
       has_table_privilege('regress_auditor', 'health_pass.audit_block', 'SELECT') AS block;

-- the writer goes on from the last moved record, and who_read finds both
\c - regress_reader
SELECT person_id FROM people WHERE person_id = 'A1';
\c - postgres
SELECT health_pass.audit_flush() >= 0 AS flushed;
SET ROLE regress_auditor;
SELECT id, subject FROM health_pass.who_read('people', 'A1');
RESET ROLE;
SELECT ok, checked, first_bad FROM health_pass.audit_verify();

DROP TABLE people;
DROP OWNED BY regress_reader, regress_auditor;
DROP ROLE regress_reader, regress_auditor;
