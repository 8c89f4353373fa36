-- The audit writer cannot be stopped or stalled by non-superusers (issue 12,
-- item 4), and audit_status()/audit_flush() are not for every role (item 8).
-- On 0.6.0: a refused ALTER DATABASE ... RENAME or DROP DATABASE by the
-- database owner stopped the writer (writer_pid below turns NULL), and the
-- database owner could VACUUM FULL, REINDEX DATABASE, and a role with the
-- extension owner's privileges CLUSTER, LOCK, TRUNCATE ... audit_block,
-- whose lock the writer then queued behind (test/isolation/specs/writer.spec
-- shows the stall).  Every command below that would take such a lock is
-- refused to non-superusers, and audited.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
-- every refusal recorded, whatever the time between statements (counting
-- repeated denials: test/sql/denials.sql)
SET health_pass.denial_interval = 0;

CREATE ROLE regress_wr_dbo LOGIN;          -- will own this database; no CREATEDB
CREATE ROLE regress_wr_admin LOGIN;        -- has the extension owner's privileges
CREATE ROLE regress_wr_plain LOGIN;
CREATE ROLE regress_wr_monitor LOGIN IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA health_pass TO regress_wr_dbo, regress_wr_admin,
    regress_wr_plain, regress_wr_monitor;
SELECT current_database() AS db,
       (SELECT r.rolname FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner
         WHERE e.extname = 'health_pass') AS extowner,
       (SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
         WHERE d.datname = current_database()) AS dbowner \gset
GRANT :"extowner" TO regress_wr_admin;
CREATE SCHEMA wr AUTHORIZATION regress_wr_admin;
ALTER DATABASE :"db" OWNER TO regress_wr_dbo;

CREATE TABLE wr_reg (person text PRIMARY KEY, note text);
INSERT INTO wr_reg VALUES ('W1', 'one'), ('W2', 'two');
SELECT health_pass.protect('wr_reg', 'person') IS NOT NULL AS protected;
-- a superuser's read is audited: the writer runs
SELECT count(*) FROM wr_reg;
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT writer_pid AS wpid FROM health_pass.audit_status() \gset
SELECT coalesce(max(id), 0) AS mark FROM health_pass.audit_log \gset

-- 1. Database commands that fail leave the writer alone.
SET ROLE regress_wr_dbo;
ALTER DATABASE :"db" RENAME TO regress_wr_renamed;     -- no CREATEDB
DROP DATABASE :"db";                                    -- the current database
RESET ROLE;
SELECT writer_pid = :wpid AS same_writer FROM health_pass.audit_status();
ALTER ROLE regress_wr_dbo CREATEDB;
SET ROLE regress_wr_dbo;
ALTER DATABASE :"db" RENAME TO template1;              -- the name is taken
ALTER DATABASE :"db" RENAME TO regress_wr_renamed;     -- the current database
RESET ROLE;
ALTER ROLE regress_wr_dbo NOCREATEDB;
SELECT writer_pid = :wpid AS same_writer FROM health_pass.audit_status();

-- ... and in another database with its own writer.  A command that can
-- succeed still stops that writer (else PostgreSQL would count it as a
-- session and refuse).
CREATE DATABASE regress_wr_other OWNER regress_wr_dbo;
\c regress_wr_other
SET client_min_messages = warning;
CREATE EXTENSION health_pass;
RESET client_min_messages;
CREATE TABLE wr_other (person text PRIMARY KEY);
INSERT INTO wr_other VALUES ('O1');
SELECT health_pass.protect('wr_other', 'person') IS NOT NULL AS protected;
SELECT count(*) FROM wr_other;
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT writer_pid AS opid FROM health_pass.audit_status() \gset
\c :db
SET health_pass.denial_interval = 0;
\set VERBOSITY terse
SET ROLE regress_wr_dbo;
ALTER DATABASE regress_wr_other RENAME TO regress_wr_other2;   -- no CREATEDB
RESET ROLE;
SELECT count(*) AS other_writers FROM pg_stat_activity
 WHERE pid = :opid AND backend_type = 'health_pass audit writer';
SET ROLE regress_wr_dbo;
DROP DATABASE regress_wr_other;                                 -- the owner may
RESET ROLE;
SELECT count(*) AS other_databases FROM pg_database WHERE datname = 'regress_wr_other';

-- 2. Who may call audit_status() and audit_flush() (item 8)
SELECT p.proname, pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
  FROM pg_proc p WHERE p.pronamespace = 'health_pass'::regnamespace
   AND p.proname IN ('audit_status', 'audit_flush') ORDER BY 1;
SET ROLE regress_wr_plain;
SELECT writer_pid IS NOT NULL AS running FROM health_pass.audit_status();
SELECT health_pass.audit_flush() > 0 AS flushed;
SET ROLE regress_wr_monitor;
SELECT writer_pid IS NOT NULL AS running, waiting_on, waiting_since, blocked_by
  FROM health_pass.audit_status();
SELECT health_pass.audit_flush() > 0 AS flushed;
RESET ROLE;
GRANT EXECUTE ON FUNCTION health_pass.audit_flush() TO regress_wr_plain;
SET ROLE regress_wr_plain;
SELECT health_pass.audit_flush() > 0 AS flushed;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION health_pass.audit_flush() FROM regress_wr_plain;

-- 3. Locks the writer cannot live with: refused to every non-superuser
-- the database owner may VACUUM and REINDEX every table of the database
SET ROLE regress_wr_dbo;
VACUUM FULL health_pass.audit_block;
VACUUM (FULL, ANALYZE) wr_reg, health_pass.audit_block;
VACUUM FULL;
REINDEX DATABASE :"db";
-- what the writer can live with stays allowed
VACUUM health_pass.audit_block;
ANALYZE health_pass.audit_block;
VACUUM FULL wr_reg;
RESET ROLE;
SELECT c.reltoastrelid::regclass::text AS toast,
       (SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = c.reltoastrelid) AS toast_index
  FROM pg_class c WHERE c.oid = 'health_pass.audit_block'::regclass \gset
-- a role with the privileges of the extension owner (not a superuser)
SET ROLE regress_wr_admin;
SELECT rolsuper AS is_superuser FROM pg_roles WHERE rolname = current_user;
CLUSTER health_pass.audit_block USING audit_block_pkey;
REINDEX TABLE health_pass.audit_block;
REINDEX TABLE CONCURRENTLY health_pass.audit_block;
REINDEX INDEX health_pass.audit_block_pkey;
REINDEX SCHEMA health_pass;
VACUUM FULL :toast;
REINDEX TABLE :toast;
REINDEX INDEX :toast_index;
BEGIN;
LOCK TABLE health_pass.audit_block IN SHARE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE health_pass.audit_log;
ROLLBACK;
BEGIN;
LOCK TABLE wr_reg, health_pass.audit_block IN EXCLUSIVE MODE;
ROLLBACK;
TRUNCATE health_pass.audit_block;
ALTER TABLE health_pass.audit_block SET (fillfactor = 50);
ALTER INDEX health_pass.audit_block_pkey SET (fillfactor = 50);
ALTER TABLE health_pass.audit_block RENAME TO audit_block2;
ALTER INDEX health_pass.audit_block_pkey RENAME TO audit_block_pkey2;
ALTER TABLE health_pass.audit_block RENAME COLUMN records TO records2;
ALTER TABLE health_pass.audit_block SET SCHEMA public;
ALTER VIEW health_pass.audit_log RENAME TO audit_log2;
CREATE INDEX ON health_pass.audit_block (max_id);
CREATE INDEX CONCURRENTLY ON health_pass.audit_block (max_id);
CREATE TRIGGER wr_trg BEFORE INSERT ON health_pass.audit_block
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_guard();
DROP TRIGGER audit_block_append_only ON health_pass.audit_block;
CREATE RULE wr_rule AS ON INSERT TO health_pass.audit_block DO INSTEAD NOTHING;
CREATE POLICY wr_pol ON health_pass.audit_block USING (false);
DROP TABLE health_pass.audit_block;
DROP INDEX health_pass.audit_block_pkey;
DROP VIEW health_pass.audit_log;
DROP EXTENSION health_pass;
CREATE TABLE wr.wr_fk (id bigint REFERENCES health_pass.audit_block);
CREATE TABLE wr.wr_fk (id bigint);
ALTER TABLE wr.wr_fk ADD FOREIGN KEY (id) REFERENCES health_pass.audit_block;
-- a child of the log: its rows would read as the log's, and a lock on it
-- would block every reader of audit_log
CREATE TABLE wr.wr_child () INHERITS (health_pass.audit_block);
CREATE TABLE wr.wr_child (LIKE health_pass.audit_block);
ALTER TABLE wr.wr_child INHERIT health_pass.audit_block;
-- LOCK TABLE of a view locks what it reads
CREATE VIEW wr.wr_view AS SELECT min_id FROM health_pass.audit_block;
BEGIN;
LOCK TABLE wr.wr_view IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
DROP VIEW wr.wr_view;
DROP TABLE wr.wr_fk;
-- these the writer lives with
BEGIN;
LOCK TABLE health_pass.audit_block IN ROW EXCLUSIVE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE health_pass.audit_block IN SHARE UPDATE EXCLUSIVE MODE;
ROLLBACK;
COMMENT ON TABLE health_pass.audit_block IS 'storage of audit_log: each row packs a run of consecutive records (ids min_id to max_id, logged between min_at and max_at), with a bloom filter of their (relation, subject) pairs';
RESET ROLE;

-- the writer still writes; every refusal is in the log
SELECT count(*) FROM wr_reg;
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT writer_pid = :wpid AS same_writer, queued, waiting_on, waiting_since
  FROM health_pass.audit_status();
SELECT current_user_name, relation, outcome, reason, count(*)
  FROM health_pass.audit_log WHERE id > :mark AND reason IS NOT NULL
 GROUP BY 1, 2, 3, 4 ORDER BY 4, 1, relation::text;

-- a superuser may (and may stall the writer: docs/design/writer.md)
VACUUM FULL health_pass.audit_block;
REINDEX TABLE health_pass.audit_block;
SELECT count(*) FROM wr_reg;
SELECT health_pass.audit_flush() > 0 AS flushed;

-- 4. Settings the database owner gives the database do not reach the
-- writer (issue 12, item 4).  On 0.7.0, "role" made every writer started
-- after it run as the owner: "permission denied for table audit_block" at
-- start, for ever, and every audited read failed with YHA01 (and so did
-- session_authorization, which a database owner may set too); exit_on_error
-- made its first error (a lock timeout) end it; planner settings reached its
-- SQL.  Now the writer undoes every setting of the database, and runs as
-- the bootstrap superuser whatever "role" says.
CREATE DATABASE regress_wr_set OWNER regress_wr_dbo;
\c regress_wr_set
SET client_min_messages = warning;
CREATE EXTENSION health_pass;
RESET client_min_messages;
CREATE TABLE wr_set (person text PRIMARY KEY);
INSERT INTO wr_set VALUES ('S1'), ('S2');
SELECT health_pass.protect('wr_set', 'person') IS NOT NULL AS protected;
SELECT count(*) FROM wr_set;
SELECT health_pass.audit_flush() > 0 AS flushed;
SET ROLE regress_wr_dbo;
ALTER DATABASE regress_wr_set SET role = regress_wr_dbo;
ALTER DATABASE regress_wr_set SET session_authorization = regress_wr_dbo;
ALTER DATABASE regress_wr_set SET exit_on_error = on;
ALTER DATABASE regress_wr_set SET enable_indexscan = off;
ALTER DATABASE regress_wr_set SET enable_seqscan = off;
ALTER DATABASE regress_wr_set SET default_transaction_read_only = on;
RESET ROLE;
-- the next writer starts with them: end this one (a superuser may)
SELECT pg_terminate_backend(writer_pid, 10000) AS terminated FROM health_pass.audit_status();
\c regress_wr_set
\set VERBOSITY terse
-- this session got them too (RESET would go back to the database's value)
SELECT current_user = 'regress_wr_dbo' AS as_owner, current_setting('exit_on_error') AS exit_on_error;
SET ROLE NONE;
SET exit_on_error = off;
SET default_transaction_read_only = off;
SET enable_indexscan = on;
SET enable_seqscan = on;
SELECT count(*) FROM wr_set WHERE person = 'S1';
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT writer_pid IS NOT NULL AS running, waiting_on FROM health_pass.audit_status();
SELECT count(*) FROM wr_set;
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT subject, count(*) FROM health_pass.audit_log
 WHERE relation = 'wr_set'::regclass GROUP BY 1 ORDER BY 1;
SELECT ok FROM health_pass.audit_verify();
\c :db
\set VERBOSITY terse
DROP DATABASE regress_wr_set;

-- 5. the extension dropped and created again while its old schema stays
-- (renamed, with the old log detached): the writer writes to the new log,
-- not to the table it found before (a per-process hint of the schema, in
-- the review of 0.7.0, kept it writing to hp_old.audit_block)
CREATE DATABASE regress_wr_stale;
\c regress_wr_stale
SET client_min_messages = warning;
CREATE EXTENSION health_pass;
CREATE TABLE wr_stale (person text PRIMARY KEY);
INSERT INTO wr_stale VALUES ('A');
SELECT health_pass.protect('wr_stale', 'person') IS NOT NULL AS protected;
SELECT count(*) FROM wr_stale;
SELECT health_pass.audit_flush() > 0 AS flushed;
ALTER EXTENSION health_pass DROP TABLE health_pass.audit_block;
ALTER SCHEMA health_pass RENAME TO hp_old;
DROP EXTENSION health_pass CASCADE;
CREATE EXTENSION health_pass;
SELECT health_pass.protect('wr_stale', 'person') IS NOT NULL AS protected;
SELECT count(*) FROM wr_stale;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT (SELECT count(*) FROM hp_old.audit_block) AS old_log_blocks,
       (SELECT count(*) FROM health_pass.audit_log WHERE subject = 'A') AS new_log_records;
\c :db
\set VERBOSITY terse
DROP DATABASE regress_wr_stale;

-- clean up
ALTER DATABASE :"db" OWNER TO :"dbowner";
SELECT health_pass.unprotect('wr_reg') IS NOT NULL AS unprotected;
DROP TABLE wr_reg;
DROP SCHEMA wr;
REVOKE :"extowner" FROM regress_wr_admin;
REVOKE USAGE ON SCHEMA health_pass FROM regress_wr_dbo, regress_wr_admin,
    regress_wr_plain, regress_wr_monitor;
DROP ROLE regress_wr_dbo, regress_wr_admin, regress_wr_plain, regress_wr_monitor;
