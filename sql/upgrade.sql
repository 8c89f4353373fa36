-- Updating an installed 0.2.0 keeps its audit records and chain, swaps the
-- audit_log index, and a log dropped with the extension starts a new chain.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP EXTENSION health_pass CASCADE;
CREATE EXTENSION health_pass VERSION '0.2.0';
RESET client_min_messages;

CREATE ROLE regress_reader LOGIN;
CREATE TABLE people (person_id text);
INSERT INTO people VALUES ('A1'), ('A2');
GRANT SELECT ON people TO regress_reader;
GRANT USAGE ON SCHEMA health_pass TO regress_reader;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('regress_reader', 'people', 'care');
ALTER ROLE regress_reader SET health_pass.purpose = 'care';
\c - regress_reader
SELECT person_id FROM people ORDER BY 1;
\c - postgres

-- the writer that served the dropped log started a new chain at id 1
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT id, subject, outcome FROM health_pass.audit_log ORDER BY id;

ANALYZE people;
ALTER EXTENSION health_pass UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'health_pass';
-- 0.4.0: a table protected before keeps its subject out of pg_statistic
SELECT attstattarget FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname = 'person_id';
SELECT count(*) AS stored_statistics FROM pg_statistic WHERE starelid = 'people'::regclass;
SELECT indexrelid::regclass AS index, amname
FROM pg_index JOIN pg_class c ON c.oid = indexrelid JOIN pg_am a ON a.oid = c.relam
WHERE indrelid = 'health_pass.audit_log'::regclass ORDER BY 1;

-- the same chain goes on, and who_read finds records from both versions
\c - regress_reader
SELECT person_id FROM people WHERE person_id = 'A1';
\c - postgres
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT id, subject FROM health_pass.who_read('people', 'A1');
SELECT ok, checked, first_bad FROM health_pass.audit_verify();

DROP TABLE people;
DROP OWNED BY regress_reader;
DROP ROLE regress_reader;
