-- Row-level access policy and audit: rules, purposes, quotas, break glass,
-- every read path, and the audit log's guarantees that one session can show.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
-- every denial recorded, so that each read path shows its decision whatever
-- the time between statements (counting repeated denials: test/sql/denials.sql)
SET health_pass.denial_interval = 0;

CREATE ROLE regress_clerk LOGIN;
CREATE ROLE regress_nurses;
CREATE ROLE regress_nurse LOGIN IN ROLE regress_nurses;
CREATE ROLE regress_owner LOGIN;
CREATE ROLE regress_doctor LOGIN;
GRANT USAGE ON SCHEMA health_pass TO regress_clerk, regress_nurse, regress_owner, regress_doctor;

CREATE TABLE registry (person_id text PRIMARY KEY, name text, doses int);
INSERT INTO registry SELECT 'P' || i, 'name ' || i, i % 4 FROM generate_series(1, 200) i;
ANALYZE registry;
GRANT SELECT, UPDATE, DELETE ON registry TO regress_clerk, regress_nurses, regress_doctor;
CREATE TABLE visits (person_id text, at date);
INSERT INTO visits VALUES ('P10', '2021-06-01'), ('P11', '2021-06-02');
ANALYZE visits;
GRANT SELECT ON visits TO regress_clerk;

-- the audit records since mark, in order, without what varies per run; the
-- test's own reads as a superuser (audited as 'superuser') are left out here
-- and checked where they matter; the rule oids a quota'd read names vary
CREATE FUNCTION audit_since(mark bigint)
RETURNS TABLE (current_user_name name, subject text, purpose text, outcome text, reason text, stmt int)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY
    SELECT a.current_user_name, a.subject, a.purpose, a.outcome,
           regexp_replace(a.reason, '^quota of rule \d+/\d+$', 'quota of rule <oids>'),
           dense_rank() OVER (ORDER BY a.statement_id)::int
    FROM health_pass.audit_log a WHERE a.id > mark AND a.outcome <> 'superuser' ORDER BY a.id;
END $$;
CREATE FUNCTION mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM health_pass.audit_log);
END $$;
-- does the plan of q contain a node whose line mentions what?
CREATE FUNCTION plan_has(q text, what text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO p;
    RETURN p::text LIKE '%' || what || '%';
END $$;
GRANT EXECUTE ON FUNCTION mark(), audit_since(bigint), plan_has(text, text) TO PUBLIC;

-- 1. protect(): refusals, then the table
SELECT health_pass.protect('visits', 'nobody');
CREATE VIEW registry_view AS SELECT * FROM registry;
SELECT health_pass.protect('registry_view', 'person_id');
SET ROLE regress_clerk;
SELECT health_pass.protect('registry', 'person_id');
RESET ROLE;
SELECT health_pass.allow('regress_clerk', 'registry', 'care');
SELECT health_pass.protect('registry', 'person_id');
SELECT relation, subject_column, protected_by FROM health_pass.protected_tables;

-- subject values leave pg_statistic, where pg_stats showed them to every
-- role with SELECT; the other columns keep their statistics, which pg_stats
-- hides from non-superusers since the table is under forced row security
-- (test/sql/ddl.sql)
CREATE FUNCTION stat_targets(tbl regclass) RETURNS TABLE (attname name, attstattarget int)
LANGUAGE sql AS $$
    SELECT a.attname, a.attstattarget FROM pg_attribute a
    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum $$;
SELECT * FROM stat_targets('registry');
ANALYZE registry;
SET ROLE regress_clerk;
SELECT attname FROM pg_stats WHERE tablename = 'registry' ORDER BY attname;
SELECT health_pass._subject_statistics('registry', 1::smallint, false);
RESET ROLE;
-- protected again by another column: the old subject gets its statistics back
SELECT health_pass.protect('registry', 'name');
SELECT * FROM stat_targets('registry');
SELECT health_pass.protect('registry', 'person_id');
SELECT * FROM stat_targets('registry');
-- the table's owner may not give the subject its statistics back
CREATE TABLE owned (person_id text, note text);
ALTER TABLE owned OWNER TO regress_owner;
SELECT health_pass.protect('owned', 'person_id');
SET ROLE regress_owner;
ALTER TABLE owned ALTER COLUMN person_id SET STATISTICS 100;
ALTER TABLE owned ALTER COLUMN note SET STATISTICS 50;
RESET ROLE;
SELECT * FROM stat_targets('owned');
DROP TABLE owned;

-- 2. rules live in an ordinary table
SELECT health_pass.allow('regress_clerk', 'registry', 'care');
SELECT health_pass.allow('regress_clerk', 'registry', 'bulk');
SELECT health_pass.allow('regress_nurses', 'registry', 'care', 3, '1 hour');
SELECT health_pass.allow('regress_nobody', 'registry', 'care');
SELECT grantee, relation, purpose, max_subjects, per FROM health_pass.access_rule ORDER BY 1, 3;
SELECT health_pass.disallow('regress_clerk', 'registry', 'bulk');
SELECT health_pass.disallow('regress_clerk', 'registry', 'bulk');
SET ROLE regress_clerk;
SELECT health_pass.allow('regress_clerk', 'registry', 'bulk');
INSERT INTO health_pass.access_rule (grantee, relation, purpose) VALUES ('regress_clerk', 'registry', 'x');
RESET ROLE;

-- superusers are not gated, but every subject they read is audited
SELECT mark() AS m \gset
SELECT count(*) FROM registry;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, current_user_name, count(*), count(DISTINCT subject) AS subjects
FROM health_pass.audit_log WHERE id > :m GROUP BY 1, 2;

-- 3. purposes: none, another, the right one
SET ROLE regress_clerk;
SELECT count(*) FROM registry;
SET health_pass.purpose = 'research';
SELECT * FROM registry WHERE person_id = 'P1';
SET health_pass.purpose = 'care';
SELECT * FROM registry WHERE person_id = 'P1';
RESET health_pass.purpose;
RESET ROLE;
SELECT * FROM audit_since(:m);

-- a denied statement is audited once, however many rows it would read
SELECT mark() AS m \gset
SET ROLE regress_doctor;
SET health_pass.purpose = 'care';
SELECT count(*) FROM registry;
SELECT r.name FROM registry r JOIN registry s USING (person_id);
RESET ROLE;
SELECT * FROM audit_since(:m);

-- 4. every read path, as regress_clerk for 'care'
SET health_pass.purpose = 'care';
SELECT mark() AS m \gset
SET ROLE regress_clerk;
SELECT name FROM registry WHERE person_id = 'P2';                                        -- plain
-- join: the planner hashes the registry rows with doses = 2; doses is not
-- the subject, so that condition runs after the gate and every row the scan
-- reads is audited, not only P10, the one that joins
SELECT v.at, r.name FROM visits v JOIN registry r USING (person_id) WHERE r.doses = 2 ORDER BY 1;
SELECT name FROM registry WHERE person_id IN (SELECT 'P3');                               -- subquery
WITH x AS MATERIALIZED (SELECT * FROM registry WHERE person_id = 'P4') SELECT name FROM x; -- CTE
RESET ROLE;
GRANT SELECT ON registry_view TO regress_clerk;
CREATE FUNCTION registry_get(p text) RETURNS SETOF registry
    LANGUAGE sql SECURITY DEFINER SET search_path = public AS
    $$ SELECT * FROM registry WHERE person_id = p $$;
SET ROLE regress_clerk;
SELECT name FROM registry_view WHERE person_id = 'P5';                                   -- view
SELECT name FROM registry_get('P6');                                                     -- security definer
PREPARE one(text) AS SELECT name FROM registry WHERE person_id = $1;
EXECUTE one('P7');                                                                       -- prepared
BEGIN;
DECLARE c CURSOR FOR SELECT person_id FROM registry WHERE person_id IN ('P8', 'P9') ORDER BY 1;
FETCH 1 FROM c;                                                                          -- cursor
FETCH 1 FROM c;
COMMIT;
COPY (SELECT person_id, name FROM registry WHERE person_id = 'P12') TO STDOUT;            -- COPY (query) TO
UPDATE registry SET doses = doses WHERE person_id = 'P13' RETURNING person_id, doses;   -- UPDATE RETURNING
DELETE FROM registry WHERE person_id = 'P14' RETURNING person_id;                        -- DELETE RETURNING
RESET ROLE;
SELECT * FROM audit_since(:m);

-- COPY tbl TO goes through the gate: a denied role gets no rows
SELECT mark() AS m \gset
SET ROLE regress_doctor;
COPY registry TO STDOUT;
RESET ROLE;
CREATE TABLE small (person_id text PRIMARY KEY, note text);
INSERT INTO small VALUES ('S1', 'a'), ('S2', 'b');
GRANT SELECT ON small TO regress_clerk;
SELECT health_pass.protect('small', 'person_id');
SELECT health_pass.allow('regress_clerk', 'small', 'care');
SET ROLE regress_clerk;
COPY small TO STDOUT;
COPY small (note) TO STDOUT;
RESET ROLE;
SELECT * FROM audit_since(:m);

-- no parallel plan over a protected table; parallel plans elsewhere still work
SET force_parallel_mode = on;
SET ROLE regress_clerk;
SELECT plan_has('SELECT count(*) FROM visits', 'Gather') AS unprotected_gather,
       plan_has('SELECT count(*) FROM registry', 'Gather') AS protected_gather;
SELECT count(*) FROM visits;
SELECT count(*) FROM registry WHERE doses = 3;
RESET ROLE;
RESET force_parallel_mode;

-- a subject read twice in one statement is one record
SELECT mark() AS m \gset
SET ROLE regress_clerk;
SELECT count(*) FROM registry a JOIN registry b USING (person_id) WHERE a.person_id = 'P15';
RESET ROLE;
SELECT * FROM audit_since(:m);

-- INSERT ... ON CONFLICT DO UPDATE reads the row it updates: gated like UPDATE
GRANT INSERT ON registry TO regress_clerk, regress_doctor;
SELECT mark() AS m \gset
SET ROLE regress_clerk;
INSERT INTO registry VALUES ('P16', 'new', 0) ON CONFLICT (person_id)
    DO UPDATE SET doses = registry.doses RETURNING person_id, name;                       -- existing row
INSERT INTO registry VALUES ('P17', 'new', 0) ON CONFLICT (person_id)
    DO UPDATE SET doses = 0 WHERE registry.name = 'nobody';                              -- WHERE only
INSERT INTO registry VALUES ('N1', 'new', 0) ON CONFLICT (person_id)
    DO UPDATE SET doses = 0 RETURNING person_id;                                         -- no conflict
RESET ROLE;
SET ROLE regress_doctor;
INSERT INTO registry VALUES ('P18', 'new', 0) ON CONFLICT (person_id)
    DO UPDATE SET doses = 0 RETURNING person_id, name;                                   -- denied
RESET ROLE;
SELECT name, doses FROM registry WHERE person_id IN ('P16', 'P17', 'P18', 'N1') ORDER BY 1;
SELECT * FROM audit_since(:m);
DELETE FROM registry WHERE person_id = 'N1';
REVOKE INSERT ON registry FROM regress_clerk, regress_doctor;
-- through a partitioned table with a protected partition it is refused
CREATE TABLE parted (person_id text PRIMARY KEY, note text) PARTITION BY LIST (person_id);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('A1', 'A2');
GRANT SELECT, INSERT, UPDATE ON parted TO regress_clerk;
-- (a partition is protected through its root: protect() of parted_a alone
-- is refused, see test/sql/ddl.sql)
SELECT health_pass.protect('parted', 'person_id');
SET ROLE regress_clerk;
INSERT INTO parted VALUES ('A1', 'x') ON CONFLICT (person_id) DO UPDATE SET note = 'y';
INSERT INTO parted VALUES ('A1', 'x') ON CONFLICT (person_id) DO NOTHING;
RESET ROLE;
-- the partitioned table's statistics cover the partition's subjects: hidden too
SELECT * FROM stat_targets('parted');
SELECT health_pass.unprotect('parted');
-- unprotect() of the root gives the root and every partition the default back
SELECT 'parted_a' AS t, * FROM stat_targets('parted_a') UNION ALL
SELECT 'parted', * FROM stat_targets('parted');
DROP TABLE parted;

-- foreign keys: the check that a referenced subject exists is a read, gated
-- and audited; one the rules would hide fails instead of taking the row for
-- missing (which would let an orphan in or a cascade skip its rows)
CREATE TABLE doses_given (person_id text REFERENCES registry, dose int);
GRANT SELECT, INSERT ON doses_given TO regress_clerk;
SELECT mark() AS m \gset
SET ROLE regress_clerk;
SET health_pass.purpose = 'research';
INSERT INTO doses_given VALUES ('P20', 1);
SET health_pass.purpose = 'care';
INSERT INTO doses_given VALUES ('P20', 1);
INSERT INTO doses_given VALUES ('P999', 1);
RESET ROLE;
SELECT * FROM audit_since(:m);
SELECT * FROM doses_given;
DROP TABLE doses_given;
-- a cascade into a protected table that the rules hide from this role
CREATE TABLE households (hid int PRIMARY KEY);
CREATE TABLE members (person_id text PRIMARY KEY, hid int REFERENCES households ON DELETE CASCADE);
INSERT INTO households VALUES (1);
INSERT INTO members VALUES ('M1', 1);
SELECT health_pass.protect('members', 'person_id');
GRANT SELECT, DELETE ON households TO regress_clerk;
SET ROLE regress_clerk;
DELETE FROM households WHERE hid = 1;
RESET ROLE;
SELECT (SELECT count(*) FROM households) AS households, (SELECT count(*) FROM members) AS members;
SELECT health_pass.unprotect('members');
DROP TABLE members, households;

-- 5. quotas: regress_nurse (through regress_nurses) may read 3 subjects an hour
SELECT mark() AS m \gset
SET ROLE regress_nurse;
SELECT name FROM registry WHERE person_id IN ('P20', 'P21') ORDER BY 1;
SELECT name FROM registry WHERE person_id = 'P20';
BEGIN;
DECLARE q CURSOR FOR SELECT person_id FROM registry WHERE person_id IN ('P20', 'P22', 'P23', 'P24') ORDER BY 1;
FETCH 1 FROM q;
FETCH 1 FROM q;
FETCH 1 FROM q;
ROLLBACK;
SELECT name FROM registry WHERE person_id = 'P21';
DO $$
BEGIN
    PERFORM * FROM registry WHERE person_id = 'P25';
EXCEPTION WHEN SQLSTATE 'YHQ01' THEN
    RAISE NOTICE 'quota error has SQLSTATE YHQ01';
END $$;
RESET ROLE;
SELECT * FROM audit_since(:m);

-- 6. break glass
SELECT mark() AS m \gset
SET ROLE regress_doctor;
BEGIN;
SELECT health_pass.break_glass('unconscious patient in ER');
ROLLBACK;
RESET ROLE;
GRANT EXECUTE ON FUNCTION health_pass.break_glass(text) TO regress_doctor;
SET ROLE regress_doctor;
SELECT health_pass.break_glass('unconscious patient in ER');
BEGIN;
SELECT health_pass.break_glass('  ');
ROLLBACK;
BEGIN;
SELECT health_pass.break_glass('unconscious patient in ER');
SELECT name FROM registry WHERE person_id IN ('P30', 'P31') ORDER BY 1;
COMMIT;
SELECT name FROM registry WHERE person_id = 'P30';
RESET ROLE;
SELECT * FROM audit_since(:m);

-- 7. records survive rollback, a failed transaction and read-only transactions
SELECT mark() AS m \gset
SET ROLE regress_clerk;
BEGIN;
SELECT name FROM registry WHERE person_id = 'P40';
ROLLBACK;
BEGIN;
SELECT name FROM registry WHERE person_id = 'P41';
SELECT 1 / 0;
ROLLBACK;
BEGIN READ ONLY;
SELECT name FROM registry WHERE person_id = 'P42';
COMMIT;
RESET ROLE;
SELECT * FROM audit_since(:m);

-- settings: audit_sync is the superuser's to set
SET ROLE regress_clerk;
SET health_pass.audit_sync = on;
SET health_pass.audit_timeout = '1s';
SET health_pass.purpose = 'this purpose is far too long to be stored in an audit record of health_pass';
RESET ROLE;
SET health_pass.audit_sync = on;
SET ROLE regress_clerk;
SELECT name FROM registry WHERE person_id = 'P43';
RESET ROLE;
RESET health_pass.audit_sync;

-- who_read: the investigator's answer, newest first
SELECT current_user_name, purpose, outcome, reason
FROM health_pass.who_read('registry', 'P30');
SET ROLE regress_clerk;
SELECT count(*) FROM health_pass.who_read('registry', 'P30');
RESET ROLE;

-- who_read() unpacks only the blocks whose bloom filter may hold the subject
CREATE TABLE crowd (person_id text);
INSERT INTO crowd SELECT 'C' || i FROM generate_series(1, 4000) i;
GRANT SELECT ON crowd TO regress_clerk;
SELECT health_pass.protect('crowd', 'person_id');
SELECT health_pass.allow('regress_clerk', 'crowd', 'care');
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT mark() AS crowd_mark \gset
SET ROLE regress_clerk;
SET health_pass.purpose = 'care';
SELECT count(*) FROM crowd;
RESET health_pass.purpose;
RESET ROLE;
SELECT health_pass.audit_flush() > 0 AS flushed;
-- 4,000 subjects in blocks of at most 256 records: the one block that holds
-- C1234 matches (another only by a false match), and over all 4,000
-- subjects a block falsely matches a subject it lacks about 1 time in 1,400
SELECT count(*) >= 16 AS blocks,
       count(*) FILTER (WHERE health_pass._audit_may_hold(subjects, 'crowd', 'C1234'))
           BETWEEN 1 AND 2 AS matching
FROM health_pass.audit_block WHERE max_id > :crowd_mark;
SELECT (sum(m) - 4000) / (4000.0 * (max(n) - 1)) < 0.002 AS few_false_matches
FROM (SELECT count(*) FILTER (WHERE health_pass._audit_may_hold(b.subjects, 'crowd', 'C' || i)) AS m,
             count(*) AS n
      FROM generate_series(1, 4000) i, health_pass.audit_block b WHERE b.max_id > :crowd_mark
      GROUP BY i) per_subject;
SELECT current_user_name, subject, outcome FROM health_pass.who_read('crowd', 'C1234');
SELECT health_pass.unprotect('crowd');
DROP TABLE crowd;

-- the writer is a background worker named after the extension
SELECT backend_type, datname = current_database() AS this_db
FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer';

-- 8. audit_log is append-only for everyone but superusers, its owner
-- included, both the view and the blocks under it
ALTER VIEW health_pass.audit_log OWNER TO regress_owner;
ALTER TABLE health_pass.audit_block OWNER TO regress_owner;
SET ROLE regress_owner;
UPDATE health_pass.audit_log SET subject = 'nobody' WHERE subject = 'P1';
DELETE FROM health_pass.audit_log WHERE subject = 'P1';
INSERT INTO health_pass.audit_log SELECT * FROM health_pass.audit_log LIMIT 1;
TRUNCATE health_pass.audit_log;
UPDATE health_pass.audit_block SET subjects = '\x';
DELETE FROM health_pass.audit_block;
TRUNCATE health_pass.audit_block;
INSERT INTO health_pass.audit_block SELECT * FROM health_pass.audit_block LIMIT 1;
ALTER TABLE health_pass.audit_block DISABLE TRIGGER audit_block_append_only;
ALTER TABLE health_pass.audit_log DISABLE TRIGGER audit_log_append_only;
RESET ROLE;
ALTER VIEW health_pass.audit_log OWNER TO CURRENT_USER;
ALTER TABLE health_pass.audit_block OWNER TO CURRENT_USER;
-- not even a superuser adds records but through the writer
INSERT INTO health_pass.audit_log SELECT * FROM health_pass.audit_log LIMIT 1;

-- 9. audit_verify() finds what a superuser altered, reordered or deleted
SELECT ok, checked > 0 AS checked, first_bad FROM health_pass.audit_verify();
SELECT min(id) AS victim FROM health_pass.audit_log WHERE subject = 'P2' AND outcome <> 'superuser' \gset
UPDATE health_pass.audit_log SET purpose = 'research' WHERE id = :victim;
SELECT ok, first_bad = :victim AS at_victim FROM health_pass.audit_verify();
UPDATE health_pass.audit_log SET purpose = 'care' WHERE id = :victim;
SELECT ok FROM health_pass.audit_verify();
UPDATE health_pass.audit_log SET id = -id WHERE id IN (:victim, :victim + 1);
UPDATE health_pass.audit_log SET id = CASE WHEN id = -:victim THEN :victim + 1 ELSE :victim END WHERE id < 0;
SELECT ok, first_bad = :victim AS at_victim FROM health_pass.audit_verify();
UPDATE health_pass.audit_log SET id = -id WHERE id IN (:victim, :victim + 1);
UPDATE health_pass.audit_log SET id = CASE WHEN id = -:victim THEN :victim + 1 ELSE :victim END WHERE id < 0;
SELECT ok FROM health_pass.audit_verify();
-- a block whose bloom filter was wiped (before 0.10.0 that hid its subjects
-- from who_read; the subject index is computed from the records, so it
-- finds the victim still), or whose bytes were damaged, is found at its
-- first record; a damaged
-- block shows in audit_log as one row saying so, rather than be skipped or
-- make every query on the log fail (test/sql/records.sql)
SELECT min_id AS blk, subjects AS saved_subjects, records AS saved_records
FROM health_pass.audit_block WHERE :victim BETWEEN min_id AND max_id \gset
UPDATE health_pass.audit_block SET subjects = decode(repeat('00', length(subjects)), 'hex')
WHERE min_id = :blk;
SELECT count(*) FROM health_pass.who_read('registry', 'P2') WHERE id = :victim;
SELECT ok, first_bad = :blk AS at_block FROM health_pass.audit_verify();
UPDATE health_pass.audit_block SET subjects = :'saved_subjects' WHERE min_id = :blk;
UPDATE health_pass.audit_block SET records = substr(records, 1, length(records) - 1)
WHERE min_id = :blk;
SELECT ok, first_bad = :blk AS at_block, why FROM health_pass.audit_verify();
SELECT reason FROM health_pass.audit_log WHERE id IS NULL;
UPDATE health_pass.audit_block SET records = :'saved_records' WHERE min_id = :blk;
SELECT ok FROM health_pass.audit_verify();
DELETE FROM health_pass.audit_log WHERE id = :victim + 2;
SELECT ok, first_bad = :victim + 2 AS at_deleted FROM health_pass.audit_verify();

-- unprotect: rules go, records stay
SELECT health_pass.unprotect('small');
SELECT health_pass.unprotect('small');
SELECT count(*) FROM health_pass.access_rule WHERE relation = 'small'::regclass;
SELECT * FROM stat_targets('small');
SET ROLE regress_clerk;
SELECT count(*) FROM small;
RESET ROLE;
-- a dropped table stops being protected
SELECT health_pass.protect('small', 'person_id');
DROP TABLE small;
SELECT relation FROM health_pass.protected_table;

RESET health_pass.purpose;
DROP OWNED BY regress_clerk, regress_nurse, regress_nurses, regress_owner, regress_doctor;
DROP ROLE regress_clerk, regress_nurse, regress_nurses, regress_owner, regress_doctor;
