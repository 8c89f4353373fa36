-- Existence probes through writes (docs/design/write_probes.md).  A role
-- that may INSERT or UPDATE a protected table learns whether a row with a
-- key exists from a unique or exclusion violation, or from ON CONFLICT DO
-- NOTHING inserting nothing.  Before 0.12.0 nothing was recorded: each
-- section below printed no record of the probed subject, and the role with
-- a quota of 2 probed 4 subjects.  Now a conflict is a read of the
-- conflicting row: gated, counted and audited with that row's subject.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;

CREATE ROLE regress_pr_w LOGIN;       -- a rule with a quota of 2
CREATE ROLE regress_pr_x LOGIN;       -- no rule
GRANT USAGE ON SCHEMA health_pass TO regress_pr_w, regress_pr_x;
GRANT CREATE ON SCHEMA public TO regress_pr_w;
-- the registry: the subject is the key; a pass table whose unique key is
-- not the subject; a booking table with an exclusion constraint; a
-- partitioned table
CREATE TABLE pr_reg (pid text PRIMARY KEY, diagnosis text);
INSERT INTO pr_reg VALUES ('P1', 'mumps'), ('P2', 'measles'), ('P3', 'flu'), ('P4', 'hiv'), ('P5', 'cold');
CREATE TABLE pr_pass (pid text, uvci text UNIQUE);
INSERT INTO pr_pass VALUES ('P1', 'URN:UVCI:01:FR:AAA'), ('P4', 'URN:UVCI:01:FR:HIV');
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TABLE pr_slot (pid text, room int, during tsrange,
                      EXCLUDE USING gist (room WITH =, during WITH &&));
INSERT INTO pr_slot VALUES ('P2', 7, '[2026-01-01 10:00, 2026-01-01 11:00)');
CREATE TABLE pr_gen (pid text, code text, code_h text GENERATED ALWAYS AS (md5(code)) STORED UNIQUE);
INSERT INTO pr_gen (pid, code) VALUES ('P4', 'secret-code');
CREATE TABLE pr_part (pid text, region int, PRIMARY KEY (pid, region)) PARTITION BY LIST (region);
CREATE TABLE pr_part_1 PARTITION OF pr_part FOR VALUES IN (1);
INSERT INTO pr_part VALUES ('P3', 1);
GRANT SELECT, INSERT, UPDATE ON pr_reg, pr_pass, pr_slot, pr_part, pr_gen TO regress_pr_w, regress_pr_x;
SELECT health_pass.protect('pr_reg', 'pid') IS NOT NULL AS p1,
       health_pass.protect('pr_pass', 'pid') IS NOT NULL AS p2,
       health_pass.protect('pr_slot', 'pid') IS NOT NULL AS p3,
       health_pass.protect('pr_part', 'pid') IS NOT NULL AS p4,
       health_pass.allow('regress_pr_w', 'pr_reg', 'intake', 2) IS NOT NULL AS a1,
       health_pass.allow('regress_pr_w', 'pr_pass', 'intake') IS NOT NULL AS a2,
       health_pass.allow('regress_pr_w', 'pr_slot', 'intake') IS NOT NULL AS a3,
       health_pass.allow('regress_pr_w', 'pr_part', 'intake') IS NOT NULL AS a4,
       health_pass.protect('pr_gen', 'pid') IS NOT NULL AS p5,
       health_pass.allow('regress_pr_w', 'pr_gen', 'intake') IS NOT NULL AS a5;
-- a partition made after protect() is protected and probed too
CREATE TABLE pr_part_2 PARTITION OF pr_part FOR VALUES IN (2);
INSERT INTO pr_part VALUES ('P5', 2);

CREATE FUNCTION pr_mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM health_pass.audit_log);
END $$;
CREATE FUNCTION pr_since(mark bigint)
RETURNS TABLE (current_user_name name, relation regclass, subject text, purpose text, outcome text, reason text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY
    SELECT a.current_user_name, a.relation, a.subject, a.purpose, a.outcome,
           regexp_replace(a.reason, 'rule [0-9]+/[0-9]+', 'rule <oids>')
    FROM health_pass.audit_log a
    WHERE a.id > mark AND a.current_user_name::text LIKE 'regress_pr%' ORDER BY a.id;
END $$;
GRANT EXECUTE ON FUNCTION pr_mark(), pr_since(bigint) TO PUBLIC;
GRANT SELECT ON health_pass.audit_log TO PUBLIC;
GRANT EXECUTE ON FUNCTION health_pass.audit_flush() TO PUBLIC;
SELECT pr_mark() AS mark \gset

-- 1. a unique violation on the subject's own key: P1 exists, P9 does not
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
INSERT INTO pr_reg VALUES ('P1', 'probe');
BEGIN;
INSERT INTO pr_reg VALUES ('P9', 'probe');   -- no conflict: nothing read
ROLLBACK;
-- 2. ON CONFLICT DO NOTHING: nothing inserted tells P2 exists
INSERT INTO pr_reg VALUES ('P2', 'probe') ON CONFLICT DO NOTHING;
-- 3. the quota of 2 holds: a third subject probed is refused before the
-- write, and the refusal names it
INSERT INTO pr_reg VALUES ('P3', 'probe') ON CONFLICT DO NOTHING;
-- a subject already counted may be probed again
INSERT INTO pr_reg VALUES ('P1', 'probe') ON CONFLICT DO NOTHING;
RESET ROLE;
SELECT * FROM pr_since(:mark);
SELECT pr_mark() AS mark \gset

-- 4. a unique key that is not the subject: the record names the subject of
-- the row that holds the key (P4), not the one the probe wrote (X1)
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
INSERT INTO pr_pass VALUES ('X1', 'URN:UVCI:01:FR:HIV');
-- 5. UPDATE of a key onto an existing one; the row updated itself is no
-- conflict (its key unchanged)
INSERT INTO pr_pass VALUES ('X2', 'URN:UVCI:01:FR:NEW');
UPDATE pr_pass SET uvci = 'URN:UVCI:01:FR:AAA' WHERE pid = 'X2';
UPDATE pr_pass SET pid = 'X2' WHERE pid = 'X2';
-- 6. an exclusion constraint: an overlapping booking tells P2 holds room 7
INSERT INTO pr_slot VALUES ('X3', 7, '[2026-01-01 10:30, 2026-01-01 10:45)');
INSERT INTO pr_slot VALUES ('X3', 7, '[2026-01-01 12:00, 2026-01-01 13:00)');
-- 7. through a partitioned table, into a partition made after protect()
INSERT INTO pr_part VALUES ('P3', 1) ON CONFLICT DO NOTHING;
INSERT INTO pr_part VALUES ('P5', 2) ON CONFLICT DO NOTHING;
-- 7b. a unique index on a stored generated column (computed after BEFORE
-- triggers): the probe computes it as the row will get it
INSERT INTO pr_gen (pid, code) VALUES ('X4', 'secret-code') ON CONFLICT DO NOTHING;
RESET ROLE;
SELECT * FROM pr_since(:mark);
SELECT pr_mark() AS mark \gset

-- 8. a role with no rule: a conflict is refused (42501) and recorded as a
-- denial naming the subject; a write with no conflict is not refused
SET ROLE regress_pr_x;
SET health_pass.purpose = 'intake';
INSERT INTO pr_reg VALUES ('P5', 'probe') ON CONFLICT DO NOTHING;
INSERT INTO pr_reg VALUES ('P4', 'probe');
BEGIN;
INSERT INTO pr_reg VALUES ('P8', 'new patient');
ROLLBACK;
RESET ROLE;
SELECT current_user_name, relation, subject, outcome,
       reason LIKE '%no rule allows this role and purpose%' AS no_rule
FROM pr_since(:mark) WHERE subject IS NOT NULL;

-- 9. the trigger behind it: internal (not dumped, not a blocker of
-- protect()), and the owner may not drop, rename or disable it
SELECT count(*) AS probe_triggers FROM pg_trigger
WHERE tgisinternal AND tgfoid = 'health_pass._write_probe()'::regprocedure
  AND tgrelid IN ('pr_reg'::regclass, 'pr_pass'::regclass, 'pr_slot'::regclass,
                  'pr_part_1'::regclass, 'pr_part_2'::regclass);
SELECT health_pass.protect('pr_reg', 'pid') IS NOT NULL AS protect_again;
CREATE ROLE regress_pr_owner LOGIN;
ALTER TABLE pr_reg OWNER TO regress_pr_owner;
SELECT tgname AS trig FROM pg_trigger
WHERE tgrelid = 'pr_reg'::regclass AND tgfoid = 'health_pass._write_probe()'::regprocedure \gset
-- (the trigger's name ends with its oid: the statements run through
-- pr_try(), which prints the SQLSTATE, and the error without the name)
CREATE FUNCTION pr_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || regexp_replace(SQLERRM, 'health_pass_write_probe_[0-9]+', '<trigger>');
END $$;
GRANT EXECUTE ON FUNCTION pr_try(text) TO regress_pr_owner, regress_pr_w;
GRANT CREATE ON SCHEMA public TO regress_pr_owner;
SET ROLE regress_pr_owner;
SELECT pr_try(format('DROP TRIGGER %I ON pr_reg', :'trig')) AS drop_trigger;
SELECT pr_try(format('ALTER TRIGGER %I ON pr_reg RENAME TO t2', :'trig')) AS rename;
SELECT pr_try(format('ALTER TABLE pr_reg DISABLE TRIGGER %I', :'trig')) AS disable_it;
SELECT pr_try('ALTER TABLE pr_reg DISABLE TRIGGER ALL') AS disable_all;
SELECT pr_try('ALTER TABLE pr_reg DISABLE TRIGGER USER') AS disable_user;  -- ok: ours is not a user trigger
RESET ROLE;
SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'pr_reg'::regclass AND tgname = :'trig';
-- 10. the same bit through the owner's DDL: a unique, primary key or
-- exclusion index built over the rows fails when two share a key, and the
-- owner can aim that at a hidden row by writing its own (a red-team pass
-- read P4's diagnosis so, unrecorded); refused, whatever form the build takes
SET ROLE regress_pr_owner;
SELECT pr_try('CREATE UNIQUE INDEX ON pr_reg (pid, diagnosis)') AS unique_index;
SELECT pr_try('CREATE UNIQUE INDEX CONCURRENTLY ON pr_reg (diagnosis)') AS concurrently;
SELECT pr_try('ALTER TABLE pr_reg ADD UNIQUE (diagnosis)') AS add_unique;
SELECT pr_try('ALTER TABLE pr_reg ADD CONSTRAINT k EXCLUDE USING btree (diagnosis WITH =)') AS add_exclude;
SELECT pr_try('ALTER TABLE pr_reg ADD COLUMN c int DEFAULT 1 UNIQUE') AS add_column_unique;
SELECT pr_try('ALTER TABLE pr_reg DROP CONSTRAINT pr_reg_pkey') AS drop_pkey;   -- allowed
SELECT pr_try('ALTER TABLE pr_reg ADD PRIMARY KEY (pid)') AS add_primary_key;
SELECT pr_try('CREATE INDEX ON pr_reg (diagnosis)') AS plain_index;               -- allowed
-- an invalid unique index (a superuser's concurrent build that failed on a
-- duplicate) is rebuilt by REINDEX, VACUUM FULL and CLUSTER: refused to the
-- owner too
RESET ROLE;
INSERT INTO pr_reg VALUES ('P6', 'flu');
CREATE UNIQUE INDEX CONCURRENTLY pr_reg_dx ON pr_reg (diagnosis);
SET ROLE regress_pr_owner;
SELECT pr_try('REINDEX TABLE pr_reg') AS reindex_invalid_unique;
SELECT pr_try('VACUUM FULL pr_reg') AS vacuum_full;
RESET ROLE;
DROP INDEX pr_reg_dx;
DELETE FROM pr_reg WHERE pid = 'P6';
SET ROLE regress_pr_owner;
SELECT pr_try('REINDEX TABLE pr_reg') AS reindex_valid;                       -- allowed
-- 11. the subject column: the owner may not drop it; without it (a
-- superuser dropped it) every write fails, not only one that matches a row
SELECT pr_try('ALTER TABLE pr_reg DROP COLUMN pid') AS drop_subject;
RESET ROLE;
ALTER TABLE pr_reg ADD PRIMARY KEY (pid);
CREATE TABLE pr_drop (pid text, code text UNIQUE);
INSERT INTO pr_drop VALUES ('P1', 'c1');
GRANT INSERT ON pr_drop TO regress_pr_w;
SELECT health_pass.protect('pr_drop', 'pid') IS NOT NULL AS protected;
ALTER TABLE pr_drop DROP COLUMN pid;
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
SELECT pr_try($$INSERT INTO pr_drop VALUES ('c1')$$) AS matching_key;
SELECT pr_try($$INSERT INTO pr_drop VALUES ('c9')$$) AS other_key;
RESET ROLE;
SELECT health_pass.unprotect('pr_drop') IS NOT NULL AS unprotected;
DROP TABLE pr_drop;

-- 12. an update that moves a row to another partition is probed where the
-- row goes, not against the partition it leaves (the red-team pass had a
-- legitimate update refused by the quota and P1 recorded)
CREATE TABLE pr_xp (pid text, region int, uvci text) PARTITION BY LIST (region);
CREATE TABLE pr_xp_1 PARTITION OF pr_xp FOR VALUES IN (1);
CREATE TABLE pr_xp_2 PARTITION OF pr_xp FOR VALUES IN (2);
CREATE UNIQUE INDEX ON pr_xp_1 (uvci);
INSERT INTO pr_xp VALUES ('P1', 1, 'K'), ('W1', 1, 'K2');
GRANT SELECT, UPDATE ON pr_xp TO regress_pr_w;
SELECT health_pass.protect('pr_xp', 'pid') IS NOT NULL AS p,
       health_pass.allow('regress_pr_w', 'pr_xp', 'intake', 1) IS NOT NULL AS a;
SELECT pr_mark() AS mark \gset
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
UPDATE pr_xp SET region = 2, uvci = 'K' WHERE pid = 'W1';
RESET ROLE;
SELECT * FROM pr_since(:mark);
-- ... and a partition an UPDATE moves a row into is checked for its trigger
-- too, though pruning leaves it out of the plan's result tables (a
-- reviewer's: with pr_xp_2's trigger disabled, the move told whether a key
-- existed there)
INSERT INTO pr_xp VALUES ('C1', 1, 'K3');
CREATE UNIQUE INDEX ON pr_xp_2 (uvci);
SELECT tgname AS trig4 FROM pg_trigger
WHERE tgrelid = 'pr_xp_2'::regclass AND tgfoid = 'health_pass._write_probe()'::regprocedure \gset
ALTER TABLE pr_xp_2 DISABLE TRIGGER :"trig4";
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
SELECT pr_try($$UPDATE pr_xp SET region = 2 WHERE pid = 'C1' AND region = 1$$) AS moved_into_unprobed;
RESET ROLE;
SELECT health_pass.unprotect('pr_xp') IS NOT NULL AS unprotected;
DROP TABLE pr_xp;

-- 13. a protected table without its trigger (a data-only restore with
-- --disable-triggers, or a superuser) is not written past it: refused to
-- every gated role until protect() puts it back
SELECT tgname AS trig2 FROM pg_trigger
WHERE tgrelid = 'pr_pass'::regclass AND tgfoid = 'health_pass._write_probe()'::regprocedure \gset
ALTER TABLE pr_pass DISABLE TRIGGER :"trig2";
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
SELECT pr_try($$INSERT INTO pr_pass VALUES ('X5', 'URN:UVCI:01:FR:HIV') ON CONFLICT DO NOTHING$$) AS disabled;
RESET ROLE;
ALTER TABLE pr_pass ENABLE TRIGGER :"trig2";
DROP TRIGGER :"trig2" ON pr_pass;
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
SELECT pr_try($$INSERT INTO pr_pass VALUES ('X5', 'URN:UVCI:01:FR:HIV') ON CONFLICT DO NOTHING$$) AS dropped;
SELECT pr_try($$UPDATE pr_pass SET uvci = uvci WHERE false$$) AS dropped_update;
RESET ROLE;
SELECT health_pass.protect('pr_pass', 'pid') IS NOT NULL AS protect_again;
-- a trigger that does not fire in the session counts as missing: one a
-- superuser enabled for REPLICA only, and an ORIGIN one under
-- session_replication_role = replica (a role a superuser let set it
-- switched the probe off: a reviewer probed a key so, unrecorded)
SELECT tgname AS trig3 FROM pg_trigger
WHERE tgrelid = 'pr_pass'::regclass AND tgfoid = 'health_pass._write_probe()'::regprocedure \gset
ALTER TABLE pr_pass ENABLE REPLICA TRIGGER :"trig3";
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
SELECT pr_try($$INSERT INTO pr_pass VALUES ('X5', 'URN:UVCI:01:FR:HIV') ON CONFLICT DO NOTHING$$) AS replica_only;
RESET ROLE;
ALTER TABLE pr_pass ENABLE TRIGGER :"trig3";
GRANT SET ON PARAMETER session_replication_role TO regress_pr_w;
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
SET session_replication_role = replica;
SELECT pr_try($$INSERT INTO pr_pass VALUES ('X5', 'URN:UVCI:01:FR:HIV') ON CONFLICT DO NOTHING$$) AS replica_session;
RESET session_replication_role;
RESET ROLE;
REVOKE SET ON PARAMETER session_replication_role FROM regress_pr_w;
SET ROLE regress_pr_w;
SET health_pass.purpose = 'intake';
SELECT pr_try($$INSERT INTO pr_pass VALUES ('X5', 'URN:UVCI:01:FR:HIV') ON CONFLICT DO NOTHING$$) AS restored;
RESET ROLE;

-- unprotect() drops them
SELECT health_pass.unprotect('pr_part') IS NOT NULL AS unprotected;
SELECT count(*) AS left_on_part FROM pg_trigger
WHERE tgfoid = 'health_pass._write_probe()'::regprocedure
  AND tgrelid IN ('pr_part_1'::regclass, 'pr_part_2'::regclass);

-- cleanup
SELECT health_pass.unprotect(t) IS NOT NULL FROM unnest(ARRAY['pr_reg', 'pr_pass', 'pr_slot', 'pr_gen']::regclass[]) t;
DROP TABLE pr_reg, pr_pass, pr_slot, pr_part, pr_gen;
REVOKE SELECT ON health_pass.audit_log FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.audit_flush() FROM PUBLIC;
DROP FUNCTION pr_mark(), pr_since(bigint), pr_try(text);
DELETE FROM health_pass.access_rule WHERE grantee IN ('regress_pr_w'::regrole, 'regress_pr_x'::regrole);
REVOKE CREATE ON SCHEMA public FROM regress_pr_w, regress_pr_owner;
DROP OWNED BY regress_pr_w, regress_pr_x, regress_pr_owner;
DROP ROLE regress_pr_w, regress_pr_x, regress_pr_owner;
