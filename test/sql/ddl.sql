-- Owner DDL, statistics and partitions of protected tables (issue 11,
-- items 3, 4 and 5).  Each attack runs as the table's owner, who has no
-- access rule: a leaky function raises a NOTICE with the values it sees,
-- so a NOTICE below that shows a value is a read around the gate.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
-- every refusal recorded, whatever the time between statements (counting
-- repeated denials: test/sql/denials.sql)
SET health_pass.denial_interval = 0;

CREATE ROLE regress_ddl_owner LOGIN;
CREATE ROLE regress_ddl_reader LOGIN;
CREATE SCHEMA ddl AUTHORIZATION regress_ddl_owner;
GRANT USAGE ON SCHEMA ddl TO regress_ddl_reader;
GRANT USAGE ON SCHEMA health_pass TO regress_ddl_owner, regress_ddl_reader;
SET search_path = ddl, public;

-- the audit records since mark, without what varies per run
CREATE FUNCTION public.ddl_mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM health_pass.audit_log);
END $$;
CREATE FUNCTION public.ddl_audit_since(mark bigint)
RETURNS TABLE (current_user_name name, relation regclass, subject text, outcome text, reason text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY SELECT a.current_user_name, a.relation, a.subject, a.outcome, a.reason
    FROM health_pass.audit_log a WHERE a.id > mark ORDER BY a.id;
END $$;

SET ROLE regress_ddl_owner;
-- leaky functions, as any role may write them
CREATE FUNCTION ddl.leak(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
    $$ BEGIN RAISE NOTICE 'leaked %', $1; RETURN true; END $$;
CREATE FUNCTION ddl.leakt(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
    $$ BEGIN RAISE NOTICE 'leaked %', $1; RETURN $1; END $$;
CREATE TABLE ddl.reg (pid text PRIMARY KEY, diagnosis text, born int);
INSERT INTO ddl.reg VALUES ('S1', 'flu', 1950), ('S2', 'measles', 1960), ('S3', 'flu', 1970);
CREATE TABLE ddl.copies (pid text, diagnosis text);
GRANT SELECT ON ddl.reg TO regress_ddl_reader;
RESET ROLE;
SELECT health_pass.protect('ddl.reg', 'pid');

-- 1. DDL that evaluates expressions over the rows: refused to the owner,
-- each refusal audited (subject NULL, outcome denied)
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_owner;
ALTER TABLE reg ADD CONSTRAINT c1 CHECK (leak(diagnosis));
ALTER TABLE reg ADD CONSTRAINT c2 CHECK (leak(diagnosis)) NOT VALID;
ALTER TABLE reg ADD COLUMN d2 text CHECK (leak(diagnosis));
ALTER TABLE reg ALTER COLUMN born TYPE text USING leakt(diagnosis);
ALTER TABLE reg ALTER COLUMN diagnosis TYPE int USING 0;
ALTER TABLE reg ADD COLUMN g text GENERATED ALWAYS AS (leakt(diagnosis)) STORED;
ALTER TABLE reg ADD COLUMN r float8 DEFAULT random();
ALTER TABLE reg ADD COLUMN s serial;
CREATE INDEX ON reg (leakt(diagnosis));
CREATE INDEX ON reg (diagnosis) WHERE leak(diagnosis);
ALTER TABLE reg ADD CONSTRAINT x EXCLUDE USING btree (leakt(diagnosis) WITH =);
CREATE STATISTICS st ON (leakt(diagnosis)), born FROM reg;
CREATE FUNCTION ddl.copy_row() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO ddl.copies VALUES (OLD.pid, OLD.diagnosis); RETURN NEW; END $$;
CREATE TRIGGER t BEFORE UPDATE ON reg FOR EACH ROW EXECUTE FUNCTION copy_row();
CREATE RULE r AS ON UPDATE TO reg DO ALSO INSERT INTO ddl.copies VALUES (OLD.pid, OLD.diagnosis);
CREATE POLICY p ON reg USING (leak(diagnosis));
ALTER TABLE reg DISABLE ROW LEVEL SECURITY;
ALTER TABLE reg NO FORCE ROW LEVEL SECURITY;
-- SQLSTATE 42501, and a hint
DO $$
DECLARE h text;
BEGIN
    ALTER TABLE ddl.reg ADD CONSTRAINT c3 CHECK (true);
EXCEPTION WHEN insufficient_privilege THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RAISE NOTICE 'SQLSTATE %, hint: %', SQLSTATE, h;
END $$;
-- a foreign key from the protected table: with the owner's own SELECT
-- revoked, validation reads every row outside the executor and locks the
-- referenced row each names, FOR KEY SHARE: xmax of the referenced table
-- then shows every (pid, diagnosis) pair of the protected rows, no record
CREATE TABLE ddl.fkref (pid text, diagnosis text, PRIMARY KEY (pid, diagnosis));
INSERT INTO ddl.fkref SELECT p, d FROM (VALUES ('S1'), ('S2'), ('S3')) a(p), (VALUES ('flu'), ('measles')) b(d);
CREATE TABLE ddl.fkone (pid text PRIMARY KEY);
REVOKE SELECT ON ddl.reg FROM regress_ddl_owner;
BEGIN;
ALTER TABLE reg ADD CONSTRAINT fk FOREIGN KEY (pid, diagnosis) REFERENCES ddl.fkref;
SELECT pid, diagnosis FROM ddl.fkref WHERE xmax <> 0 ORDER BY 1, 2;
ROLLBACK;
GRANT SELECT ON ddl.reg TO regress_ddl_owner;
ALTER TABLE reg ADD CONSTRAINT fk2 FOREIGN KEY (pid, diagnosis) REFERENCES ddl.fkref NOT VALID;
ALTER TABLE reg ADD COLUMN ref text REFERENCES ddl.fkone;
-- a new partition's bound checked against the default partition's rows:
-- whether CREATE ... PARTITION OF fails told whether a protected row with
-- a key in the bound exists ('HIV': yes; 'TB': no), no record
CREATE TABLE ddl.preg (pid text, dx text) PARTITION BY LIST (dx);
CREATE TABLE ddl.preg_flu PARTITION OF ddl.preg FOR VALUES IN ('flu');
CREATE TABLE ddl.preg_def PARTITION OF ddl.preg DEFAULT;
INSERT INTO ddl.preg VALUES ('P1', 'flu'), ('P2', 'HIV');
CREATE TABLE ddl.preg_x (pid text, dx text);
RESET ROLE;
SELECT health_pass.protect('ddl.preg', 'pid');
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.preg_hiv PARTITION OF ddl.preg FOR VALUES IN ('HIV');
CREATE TABLE ddl.preg_tb PARTITION OF ddl.preg FOR VALUES IN ('TB');
ALTER TABLE ddl.preg ATTACH PARTITION ddl.preg_x FOR VALUES IN ('HIV');
-- and a foreign key brought in with a new partition (of a protected table
-- without a default partition): declared in it, or on a table attached
RESET ROLE;
DROP TABLE ddl.preg_def;
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.preg_fk PARTITION OF ddl.preg (FOREIGN KEY (pid) REFERENCES ddl.fkone) FOR VALUES IN ('TB');
CREATE TABLE ddl.preg_y (pid text REFERENCES ddl.fkone, dx text);
ALTER TABLE ddl.preg ATTACH PARTITION ddl.preg_y FOR VALUES IN ('TB');
CREATE TABLE ddl.preg_ok PARTITION OF ddl.preg FOR VALUES IN ('TB');
-- a protected table moved under a table whose partition key is leaky
CREATE TABLE ddl.other (pid text, diagnosis text, born int) PARTITION BY LIST (leakt(diagnosis));
ALTER TABLE ddl.other ATTACH PARTITION ddl.reg FOR VALUES IN ('flu', 'measles');
RESET ROLE;
SELECT * FROM ddl_audit_since(:m);
SELECT count(*) AS copied FROM ddl.copies;

-- a CHECK added to a domain runs over every column of that domain, and a
-- publication would send the table's rows to a subscriber past the gate
SET ROLE regress_ddl_owner;
CREATE DOMAIN ddl.diag AS text;
CREATE DOMAIN ddl.diag2 AS ddl.diag;
CREATE TABLE ddl.typed (pid text, d ddl.diag2);
INSERT INTO ddl.typed VALUES ('T1', 'asthma');
RESET ROLE;
SELECT health_pass.protect('ddl.typed', 'pid');
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO regress_ddl_owner', current_database()); END $$;
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_owner;
ALTER DOMAIN ddl.diag ADD CONSTRAINT dc CHECK (leak(VALUE));
ALTER DOMAIN ddl.diag2 ADD CONSTRAINT dc2 CHECK (leak(VALUE)) NOT VALID;
ALTER DOMAIN ddl.diag2 VALIDATE CONSTRAINT dc2;
CREATE PUBLICATION ddl_pub FOR TABLE ddl.reg;
SET client_min_messages = error;    -- wal_level is not logical here
CREATE PUBLICATION ddl_pub FOR TABLE ddl.copies;
RESET client_min_messages;
ALTER PUBLICATION ddl_pub ADD TABLE ddl.typed;
DROP PUBLICATION ddl_pub;
RESET ROLE;
SELECT * FROM ddl_audit_since(:m);
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM regress_ddl_owner', current_database()); END $$;

-- VALIDATE CONSTRAINT of a constraint a superuser added NOT VALID; REINDEX,
-- CLUSTER and VACUUM FULL once a superuser made an expression index
ALTER TABLE reg ADD CONSTRAINT born_ok CHECK (born > 0) NOT VALID;
CREATE INDEX reg_expr ON reg (leakt(diagnosis));
SET ROLE regress_ddl_owner;
ALTER TABLE reg VALIDATE CONSTRAINT born_ok;
REINDEX TABLE reg;
REINDEX INDEX reg_expr;
REINDEX SCHEMA ddl;
VACUUM FULL reg;
CLUSTER reg USING reg_pkey;
-- the same without naming a table: they would reach it too
VACUUM FULL;
CLUSTER;
RESET ROLE;
DROP INDEX reg_expr;
ALTER TABLE reg DROP CONSTRAINT born_ok;

-- harmless DDL still works for the owner
SET ROLE regress_ddl_owner;
CREATE INDEX reg_diag ON reg (diagnosis);
ALTER TABLE reg ADD COLUMN note text;
ALTER TABLE reg ADD COLUMN added timestamptz DEFAULT now();
ALTER TABLE reg ADD COLUMN flag boolean NOT NULL DEFAULT false;
ALTER TABLE reg ALTER COLUMN note SET DEFAULT 'none';
ALTER TABLE reg RENAME COLUMN note TO remark;
COMMENT ON TABLE reg IS 'registry';
GRANT SELECT ON reg TO PUBLIC;
REVOKE SELECT ON reg FROM PUBLIC;
CREATE STATISTICS reg_dep (dependencies) ON diagnosis, born FROM reg;
ALTER TABLE reg ENABLE ROW LEVEL SECURITY;
ALTER TABLE reg FORCE ROW LEVEL SECURITY;
ALTER TABLE reg SET UNLOGGED;
ALTER TABLE reg SET LOGGED;
REINDEX TABLE reg;
VACUUM FULL reg;
ANALYZE reg;
ALTER TABLE reg DROP COLUMN remark, DROP COLUMN added, DROP COLUMN flag;
RESET ROLE;

-- superusers may do everything (since 0.12.0 a unique index is theirs to
-- build: a build that fails on a duplicate tells the owner that two rows
-- share a key, test/sql/probes.sql §10)
ALTER TABLE reg ADD CONSTRAINT born_unique UNIQUE (born);
ALTER TABLE reg ADD CONSTRAINT born_ok CHECK (born > 0);
ALTER TABLE reg DROP CONSTRAINT born_ok;

-- protect() refuses a table whose objects would run user code over its rows
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.hazard (pid text, diagnosis text CHECK (leak(diagnosis)), born int CHECK (born > 0));
CREATE INDEX ON ddl.hazard (lower(diagnosis));
CREATE INDEX ON ddl.hazard (born) WHERE born > 1900;
CREATE TRIGGER t BEFORE UPDATE ON ddl.hazard FOR EACH ROW EXECUTE FUNCTION copy_row();
RESET ROLE;
SELECT health_pass.protect('ddl.hazard', 'pid');
DROP TABLE ddl.hazard;
-- column types that run the owner's code on every value: a domain whose
-- CHECK passes VALUE to a leaky function ran it on each value another role
-- wrote (the owner saw them), and a range type with a leaky subtype_diff
-- ran it on the values ANALYZE sampled; protect() refused neither
SET ROLE regress_ddl_owner;
CREATE DOMAIN ddl.spy AS text CHECK (leak(VALUE) IS NOT NULL);
CREATE FUNCTION ddl.spy_diff(a text, b text) RETURNS float8 LANGUAGE plpgsql IMMUTABLE AS
    $$ BEGIN RAISE NOTICE 'diff sees % / %', a, b; RETURN 0; END $$;
CREATE TYPE ddl.spyrange AS RANGE (subtype = text, subtype_diff = ddl.spy_diff);
CREATE TABLE ddl.typed2 (pid text, d ddl.spy, stay ddl.spyrange, ok int4range, arr ddl.spy[]);
CREATE TABLE ddl.typed3 (pid text, stay ddl.spyrange);
CREATE TABLE ddl.typed4 (pid text, ok int4range, dates daterange);
GRANT INSERT ON ddl.typed2 TO regress_ddl_reader;
RESET ROLE;
SELECT health_pass.protect('ddl.typed2', 'pid');
SELECT health_pass.protect('ddl.typed3', 'pid');
SELECT health_pass.protect('ddl.typed4', 'pid');  -- built-in ranges: protected
-- a column of such a type added to a protected table, also nine domains
-- down (the first cut stopped looking at eight), and an attribute of such
-- a type added to a composite a protected column uses; a domain whose
-- CHECK uses only built-in functions (a regular expression) is fine
SET ROLE regress_ddl_owner;
CREATE DOMAIN ddl.s1 AS ddl.spy; CREATE DOMAIN ddl.s2 AS ddl.s1; CREATE DOMAIN ddl.s3 AS ddl.s2;
CREATE DOMAIN ddl.s4 AS ddl.s3; CREATE DOMAIN ddl.s5 AS ddl.s4; CREATE DOMAIN ddl.s6 AS ddl.s5;
CREATE DOMAIN ddl.s7 AS ddl.s6; CREATE DOMAIN ddl.s8 AS ddl.s7; CREATE DOMAIN ddl.s9 AS ddl.s8;
CREATE TYPE ddl.pair AS (a text, b text);
CREATE DOMAIN ddl.zip AS text CHECK (VALUE ~ '^[0-9]{5}$' AND length(VALUE) = 5);
ALTER TABLE ddl.typed4 ADD COLUMN p ddl.pair;
ALTER TABLE ddl.typed4 ADD COLUMN d ddl.spy;
ALTER TABLE ddl.typed4 ADD COLUMN stay ddl.spyrange;
ALTER TABLE ddl.typed4 ADD COLUMN deep ddl.s9;
ALTER TYPE ddl.pair ADD ATTRIBUTE c ddl.spy;
ALTER TABLE ddl.typed4 ADD COLUMN fine text;
ALTER TABLE ddl.typed4 ADD COLUMN z ddl.zip;
RESET ROLE;
DROP TABLE ddl.typed2, ddl.typed3, ddl.typed4;
DROP TYPE ddl.spyrange, ddl.pair;
DROP DOMAIN ddl.s9, ddl.s8, ddl.s7, ddl.s6, ddl.s5, ddl.s4, ddl.s3, ddl.s2, ddl.s1, ddl.spy, ddl.zip;
DROP FUNCTION ddl.spy_diff(text, text);

-- 2. statistics: no view shows a value of a protected table to the owner
-- or a reader; superusers still see them
SET ROLE regress_ddl_owner;
CREATE STATISTICS reg_mcv (mcv) ON diagnosis, born FROM reg;
RESET ROLE;
CREATE STATISTICS reg_ex ON (lower(diagnosis)) FROM reg;   -- a superuser's choice
ANALYZE reg;
SELECT health_pass.allow('regress_ddl_owner', 'ddl.reg', 'care');
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'ddl.reg'::regclass;
SELECT attname, most_common_vals FROM pg_stats WHERE tablename = 'reg' ORDER BY attname;
SELECT statistics_name, most_common_vals FROM pg_stats_ext WHERE tablename = 'reg' ORDER BY 1;
SELECT statistics_name, most_common_vals FROM pg_stats_ext_exprs WHERE tablename = 'reg';
SET ROLE regress_ddl_owner;
SELECT attname, most_common_vals FROM pg_stats WHERE tablename = 'reg' ORDER BY attname;
SELECT statistics_name, most_common_vals FROM pg_stats_ext WHERE tablename = 'reg';
SELECT statistics_name, most_common_vals FROM pg_stats_ext_exprs WHERE tablename = 'reg';
-- the owner still reads every row its rule allows: the gate, not row
-- security, decides
SET health_pass.purpose = 'care';
SELECT count(*) FROM reg;
RESET health_pass.purpose;
RESET ROLE;
SET ROLE regress_ddl_reader;
SELECT attname, most_common_vals FROM pg_stats WHERE tablename = 'reg' ORDER BY attname;
SELECT statistics_name FROM pg_stats_ext WHERE tablename = 'reg';
SELECT statistics_name FROM pg_stats_ext_exprs WHERE tablename = 'reg';
RESET ROLE;
DROP STATISTICS reg_ex;
-- known consequences of row security: COPY FROM is refused to roles under
-- it (INSERT works), and so is row_security = off (pg_dump by the owner)
SET ROLE regress_ddl_owner;
-- (\copy from a file: with inline data rows, psql before 15.19 reads them as
-- SQL after the refusal)
\copy reg (pid, diagnosis, born) FROM '/dev/null'
INSERT INTO reg (pid, diagnosis, born) VALUES ('S9', 'mumps', 1980);
SET row_security = off;
SELECT count(*) FROM reg;
RESET row_security;
RESET ROLE;
DELETE FROM reg WHERE pid = 'S9';
-- a unique violation no longer prints the row's values (row security hides them);
-- and since 0.12.0 a role with no rule is refused before it: the key matched
-- a row it may not read (test/sql/probes.sql)
\set VERBOSITY default
SET ROLE regress_ddl_owner;
INSERT INTO reg (pid, diagnosis, born) VALUES ('S4', 'x', 1950);
RESET ROLE;
INSERT INTO reg (pid, diagnosis, born) VALUES ('S4', 'x', 1950);
\set VERBOSITY terse

-- 3. partitions: protecting the root protects every partition, now and later
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.vac (region text, pid text, shot date) PARTITION BY LIST (region);
CREATE TABLE ddl.vac_north PARTITION OF ddl.vac FOR VALUES IN ('north');
CREATE TABLE ddl.vac_south (pid text, shot date, region text);    -- other attnums
ALTER TABLE ddl.vac ATTACH PARTITION ddl.vac_south FOR VALUES IN ('south');
INSERT INTO ddl.vac VALUES ('north', 'N1', '2021-01-01'), ('south', 'X1', '2021-02-01');
GRANT SELECT ON ddl.vac TO regress_ddl_reader;
RESET ROLE;
SELECT health_pass.protect('ddl.vac_north', 'pid');
SELECT health_pass.protect('ddl.vac', 'pid');
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.vac_east PARTITION OF ddl.vac FOR VALUES IN ('east');
CREATE TABLE ddl.vac_west (shot date, region text, pid text);
ALTER TABLE ddl.vac ATTACH PARTITION ddl.vac_west FOR VALUES IN ('west');
CREATE TABLE ddl.vac_sub PARTITION OF ddl.vac FOR VALUES IN ('sub') PARTITION BY LIST (pid);
CREATE TABLE ddl.vac_sub_1 PARTITION OF ddl.vac_sub FOR VALUES IN ('U1');
INSERT INTO ddl.vac VALUES ('east', 'E1', '2021-03-01'), ('west', 'W1', '2021-04-01'),
    ('sub', 'U1', '2021-05-01');
RESET ROLE;
SELECT relation, subject_column, protected_through FROM health_pass.protected_tables
WHERE relation::text LIKE 'vac%' ORDER BY 1::text;
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
WHERE c.relname LIKE 'vac%' AND c.relkind IN ('r', 'p') ORDER BY 1;
-- a rule on the root lets a reader through every partition, each row audited
SELECT health_pass.allow('regress_ddl_reader', 'ddl.vac', 'care');
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_reader;
SET health_pass.purpose = 'care';
SELECT pid FROM ddl.vac ORDER BY 1;
RESET health_pass.purpose;
RESET ROLE;
SELECT current_user_name, relation, subject, outcome FROM ddl_audit_since(:m) ORDER BY 2::text, 3;
-- who_read() of the root finds the reads of its partitions
SELECT relation, subject, outcome FROM health_pass.who_read('ddl.vac', 'W1');
-- the owner can neither detach a partition nor move it away, nor add a
-- leaky partition or inheritance link
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_owner;
ALTER TABLE ddl.vac DETACH PARTITION ddl.vac_east;
CREATE TABLE ddl.vac_leaky PARTITION OF ddl.vac (CHECK (leak(pid))) FOR VALUES IN ('leaky');
ALTER TABLE ddl.vac ADD CONSTRAINT shot_ok CHECK (leak(pid));
ALTER TABLE ddl.vac_south ADD CONSTRAINT shot_ok CHECK (leak(pid));
CREATE TRIGGER t BEFORE UPDATE ON ddl.vac FOR EACH ROW EXECUTE FUNCTION copy_row();
RESET ROLE;
SELECT current_user_name, relation, outcome, reason FROM ddl_audit_since(:m);
-- inheritance: a child of a protected table is protected too, whoever
-- creates it; links into or out of protection are refused
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.hist (at date, pid text);
CREATE TABLE ddl.hist_2020 (extra int) INHERITS (ddl.hist);
CREATE TABLE ddl.plain (at date, pid text);
RESET ROLE;
SELECT health_pass.protect('ddl.hist_2020', 'pid');
SELECT health_pass.protect('ddl.hist', 'pid');
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.hist_2021 () INHERITS (ddl.hist);
ALTER TABLE ddl.hist_2020 NO INHERIT ddl.hist;
ALTER TABLE ddl.plain INHERIT ddl.hist;
ALTER TABLE ddl.hist INHERIT ddl.plain;
CREATE TABLE ddl.both () INHERITS (ddl.hist, ddl.plain);
RESET ROLE;
SELECT relation, subject_column, protected_through FROM health_pass.protected_tables
WHERE relation::text LIKE 'hist%' ORDER BY 1::text;
SELECT current_user_name, relation, outcome, reason FROM ddl_audit_since(:m);
-- the parent's statistics (inherited = true) are hidden like the partitions'
ANALYZE ddl.vac;
SELECT count(*) > 0 AS superuser_sees FROM pg_stats WHERE tablename = 'vac';
SET ROLE regress_ddl_reader;
SELECT count(*) AS reader_sees FROM pg_stats WHERE schemaname = 'ddl' AND tablename LIKE 'vac%';
RESET ROLE;
-- unprotect() of a partition alone is refused; of the root, it ends
-- protection of the whole tree and restores each table's row security
SELECT health_pass.unprotect('ddl.vac_north');
-- a superuser may detach a partition: it stays protected until unprotected
ALTER TABLE ddl.vac DETACH PARTITION ddl.vac_east;
SELECT p.relation, p.protected_through, c.relrowsecurity, c.relforcerowsecurity
FROM health_pass.protected_tables p JOIN pg_class c ON c.oid = p.relation
WHERE p.relation = 'ddl.vac_east'::regclass;
SELECT health_pass.unprotect('ddl.vac_east');
SELECT health_pass.unprotect('ddl.vac');
SELECT count(*) FROM health_pass.protected_table WHERE relation::text LIKE 'vac%';
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
WHERE c.relname LIKE 'vac%' AND c.relkind IN ('r', 'p') ORDER BY 1;

-- a table that had row security of its own keeps its policies, now forced
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.own (pid text, team text);
INSERT INTO ddl.own VALUES ('O1', 'a'), ('O2', 'b');
ALTER TABLE ddl.own ENABLE ROW LEVEL SECURITY;
CREATE POLICY team_a ON ddl.own USING (team = 'a');
RESET ROLE;
SELECT health_pass.protect('ddl.own', 'pid');
SELECT health_pass.allow('regress_ddl_owner', 'ddl.own', 'care');
SET ROLE regress_ddl_owner;
SET health_pass.purpose = 'care';
SELECT pid FROM ddl.own;
RESET health_pass.purpose;
RESET ROLE;
SELECT health_pass.unprotect('ddl.own');
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'ddl.own'::regclass;

-- 4. the planner under row security: a point lookup by subject still uses
-- the index, and a join on a non-subject column keeps a sane estimate
-- (operators in the query must be LEAKPROOF to use the stored statistics;
-- docs/design/ddl.md measures what is lost)
CREATE TABLE ddl.big (pid text PRIMARY KEY, region int, dose int, city text);
INSERT INTO ddl.big SELECT 'B' || i, i % 50, i % 4,
    CASE WHEN i % 10 = 0 THEN 'berlin' ELSE 'c' || i % 1000 END FROM generate_series(1, 10000) i;
CREATE TABLE ddl.regions (region int PRIMARY KEY, name text);
INSERT INTO ddl.regions SELECT i, 'r' || i FROM generate_series(0, 49) i;
ANALYZE ddl.big, ddl.regions;
GRANT SELECT ON ddl.big, ddl.regions TO regress_ddl_reader;
CREATE FUNCTION public.ddl_rows(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO p;
    RETURN (p -> 0 -> 'Plan' ->> 'Node Type') || ' ' || (p -> 0 -> 'Plan' ->> 'Plan Rows');
END $$;
CREATE TEMP TABLE estimates (q text, protected boolean, plan text);
GRANT ALL ON estimates TO regress_ddl_reader;
INSERT INTO estimates
SELECT q, false, ddl_rows(q) FROM (VALUES
    ('SELECT * FROM ddl.big WHERE pid = ''B42'''),
    ('SELECT * FROM ddl.big WHERE dose = 2'),
    ('SELECT * FROM ddl.big WHERE region < 10'),
    ('SELECT * FROM ddl.big WHERE city = ''berlin'''),
    ('SELECT * FROM ddl.big WHERE city LIKE ''berlin%'''),
    ('SELECT * FROM ddl.big WHERE city LIKE ''c1%'''),
    ('SELECT * FROM ddl.big WHERE length(city) = 6'),
    ('SELECT * FROM ddl.big b JOIN ddl.regions r USING (region) WHERE r.name = ''r7''')) v(q);
SELECT health_pass.protect('ddl.big', 'pid');
SELECT health_pass.allow('regress_ddl_reader', 'ddl.big', 'care');
SET ROLE regress_ddl_reader;
INSERT INTO estimates SELECT q, true, ddl_rows(q) FROM estimates;
RESET ROLE;
SELECT e.q, u.plan AS unprotected, e.plan AS protected
FROM estimates e JOIN estimates u ON u.q = e.q AND NOT u.protected WHERE e.protected ORDER BY 1;

-- 5. a role PostgreSQL itself refuses gets PostgreSQL's error and leaves no
-- record (nothing ran).  On 0.7.0 the refusal was audited before
-- PostgreSQL's permission check: a role with no privilege on the tables
-- made a denial key per reason and partition, filled the denial table and
-- was then recorded once per statement (the loop below left 100 records).
CREATE ROLE regress_ddl_nobody LOGIN;
GRANT USAGE ON SCHEMA ddl TO regress_ddl_nobody;
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.hreg (pid text PRIMARY KEY, diagnosis text) PARTITION BY HASH (pid);
CREATE TABLE ddl.hreg_0 PARTITION OF ddl.hreg FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE ddl.hreg_1 PARTITION OF ddl.hreg FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE FUNCTION ddl.trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
RESET ROLE;
SELECT health_pass.protect('ddl.hreg', 'pid') IS NOT NULL AS protected;
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_nobody;
ALTER TABLE hreg_0 ADD CONSTRAINT c CHECK (leak(diagnosis));
ALTER TABLE hreg_1 ALTER COLUMN diagnosis TYPE int USING 0;
ALTER TABLE hreg DISABLE ROW LEVEL SECURITY;
CREATE INDEX ON hreg_0 (leakt(diagnosis));
CREATE TRIGGER t BEFORE INSERT ON hreg_1 FOR EACH ROW EXECUTE FUNCTION trg();
CREATE RULE r AS ON INSERT TO hreg_0 DO INSTEAD NOTHING;
CREATE POLICY p ON hreg_1 USING (true);
CREATE STATISTICS s ON (leakt(diagnosis)) FROM hreg_0;
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        BEGIN
            EXECUTE 'CREATE POLICY p ON ddl.reg USING (true)';
        EXCEPTION WHEN insufficient_privilege THEN NULL;
        END;
    END LOOP;
END $$;
RESET ROLE;
SELECT count(*) AS records FROM ddl_audit_since(:m);
-- with the privilege PostgreSQL asks for (TRIGGER), the refusal and its
-- record are the extension's
GRANT TRIGGER ON ddl.hreg_1 TO regress_ddl_nobody;
SET ROLE regress_ddl_nobody;
CREATE TRIGGER t BEFORE INSERT ON hreg_1 FOR EACH ROW EXECUTE FUNCTION trg();
RESET ROLE;
SELECT current_user_name, relation, outcome, reason FROM ddl_audit_since(:m);

-- 6. the extension, its schema and its objects cannot be renamed, moved,
-- re-owned or dropped by a role with the extension owner's privileges (not
-- a superuser).  On 0.7.0 ALTER SCHEMA health_pass RENAME turned the gate
-- off: protected reads returned no rows and left no record, the audit log's
-- guards were off.  Each command runs in a transaction rolled back, so that
-- the old code's successes are undone.
CREATE ROLE regress_ddl_admin LOGIN;
SELECT (SELECT r.rolname FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner
         WHERE e.extname = 'health_pass') AS extowner \gset
GRANT :"extowner" TO regress_ddl_admin;
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_admin;
SELECT rolsuper AS is_superuser FROM pg_roles WHERE rolname = current_user;
BEGIN; ALTER SCHEMA health_pass RENAME TO hp_moved; ROLLBACK;
BEGIN; ALTER SCHEMA health_pass OWNER TO regress_ddl_admin; ROLLBACK;
BEGIN; ALTER EXTENSION health_pass DROP TABLE health_pass.access_rule; ROLLBACK;
BEGIN; ALTER TABLE health_pass.access_rule RENAME TO access_rule2; ROLLBACK;
BEGIN; ALTER TABLE health_pass.protected_table RENAME COLUMN relation TO relation2; ROLLBACK;
BEGIN; ALTER TABLE health_pass.protected_table SET SCHEMA public; ROLLBACK;
BEGIN; ALTER TABLE health_pass.access_rule OWNER TO regress_ddl_admin; ROLLBACK;
BEGIN; ALTER FUNCTION health_pass.audit_flush() RENAME TO audit_flush2; ROLLBACK;
BEGIN; ALTER FUNCTION health_pass.audit_flush() SET SCHEMA public; ROLLBACK;
BEGIN; ALTER FUNCTION health_pass.audit_flush() OWNER TO regress_ddl_admin; ROLLBACK;
BEGIN; DROP SCHEMA health_pass CASCADE; ROLLBACK;
BEGIN; DROP EXTENSION health_pass CASCADE; ROLLBACK;
-- (PostgreSQL itself refuses these for the bootstrap superuser, the
-- extension's owner here; refused by the extension for any other owner)
BEGIN; REASSIGN OWNED BY :"extowner" TO regress_ddl_admin; ROLLBACK;
BEGIN; DROP OWNED BY :"extowner"; ROLLBACK;
-- left alone: a comment
BEGIN; COMMENT ON SCHEMA health_pass IS 'a comment'; ROLLBACK;
RESET ROLE;
SELECT current_user_name, relation, outcome, reason, count(*)
  FROM ddl_audit_since(:m) GROUP BY 1, 2, 3, 4 ORDER BY 4;
-- a role without those privileges gets PostgreSQL's error, and no record
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_nobody;
ALTER SCHEMA health_pass RENAME TO hp_moved;
DROP EXTENSION health_pass;
ALTER EXTENSION health_pass DROP TABLE health_pass.access_rule;
RESET ROLE;
SELECT count(*) AS records FROM ddl_audit_since(:m);

-- 7. the gate finds its tables by the extension's schema OID, so a schema
-- renamed (by a superuser) still gates and audits (on 0.7.0 the read
-- returned no rows and left no record); and when its tables are gone from
-- that schema, a read of a protected table fails.  The rename of a table
-- fails by itself while the event trigger (which reads the policy) is on.
SELECT ddl_mark() AS m \gset
BEGIN;
ALTER SCHEMA health_pass RENAME TO hp_moved;
SET LOCAL ROLE regress_ddl_reader;
SET LOCAL health_pass.purpose = 'care';
SELECT count(*) AS rows_read FROM ddl.big WHERE pid IN ('B1', 'B2');
ROLLBACK;
SELECT current_user_name, relation, outcome, count(*)
  FROM ddl_audit_since(:m) WHERE relation = 'ddl.big'::regclass GROUP BY 1, 2, 3;
BEGIN;
ALTER TABLE health_pass.access_rule RENAME TO access_rule_gone;
ROLLBACK;
BEGIN;
ALTER EVENT TRIGGER health_pass_protect_new_children DISABLE;
SET LOCAL health_pass.purpose = 'care';
ALTER TABLE health_pass.access_rule RENAME TO access_rule_gone;
SET LOCAL ROLE regress_ddl_reader;
SELECT count(*) FROM ddl.big;
ROLLBACK;

-- 8. a function a protected table runs, accepted because a superuser
-- marked it LEAKPROOF, could be replaced (or made NOT LEAKPROOF) by its
-- owner, no superuser: the new body then ran over the rows.  A red-team pass
-- read every row through a range type's subtype_diff at ANALYZE, and the rows
-- other roles wrote through a CHECK constraint (0.11.0 printed the leaked
-- values below, with no record).  Refused now, for each way a table runs it.
SET ROLE regress_ddl_owner;
CREATE FUNCTION ddl.fdiff(a float8, b float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN a - b; END $$;
CREATE TYPE ddl.frange AS RANGE (subtype = float8, subtype_diff = ddl.fdiff);
CREATE FUNCTION ddl.okcheck(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN t IS NOT NULL; END $$;
CREATE FUNCTION ddl.pred(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN t <> 'x'; END $$;
CREATE FUNCTION ddl.opf(a text, b text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN a = b; END $$;
CREATE OPERATOR ddl.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = ddl.opf);
CREATE FUNCTION ddl.unused(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN true; END $$;
CREATE TABLE ddl.visits (pid text PRIMARY KEY, load ddl.frange, note text CHECK (ddl.okcheck(note)));
CREATE INDEX visits_pred ON ddl.visits (pid) WHERE ddl.pred(note);
CREATE INDEX visits_op ON ddl.visits (pid) WHERE note OPERATOR(ddl.===) 'y';
INSERT INTO ddl.visits SELECT 'V' || g, ddl.frange(g * 1000 + 7, g * 1000 + 8), 'note ' || g
  FROM generate_series(1, 30) g;
RESET ROLE;
ALTER FUNCTION ddl.fdiff(float8, float8) LEAKPROOF;
ALTER FUNCTION ddl.okcheck(text) LEAKPROOF;
ALTER FUNCTION ddl.pred(text) LEAKPROOF;
ALTER FUNCTION ddl.opf(text, text) LEAKPROOF;
SELECT health_pass.protect('ddl.visits', 'pid') IS NOT NULL AS protected;
SELECT ddl_mark() AS m \gset
SET ROLE regress_ddl_owner;
CREATE OR REPLACE FUNCTION ddl.fdiff(a float8, b float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked % %', a, b; RETURN a - b; END $$;
ALTER FUNCTION ddl.fdiff(float8, float8) NOT LEAKPROOF;
CREATE OR REPLACE FUNCTION ddl.okcheck(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked %', t; RETURN true; END $$;
CREATE OR REPLACE FUNCTION ddl.pred(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked %', t; RETURN true; END $$;
CREATE OR REPLACE FUNCTION ddl.opf(a text, b text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked %', a; RETURN a = b; END $$;
ALTER FUNCTION ddl.okcheck(text) COST 1;
-- a function no protected table runs may change
CREATE OR REPLACE FUNCTION ddl.unused(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN false; END $$;
ANALYZE ddl.visits;
RESET ROLE;
SELECT current_user_name, relation, outcome, reason FROM ddl_audit_since(:m);
SELECT health_pass.unprotect('ddl.visits') IS NOT NULL AS unprotected;
DROP TABLE ddl.visits;
-- a reviewer's siblings: the same replacement by an unqualified name that
-- pg_catalog also has (the check looked at pg_catalog's float8mi); of a
-- function another one's SQL-standard body calls; of an operator class's
-- support function (a btree's comparison sees every key it passes); of a
-- function of expression statistics (ANALYZE runs it)
SET ROLE regress_ddl_owner;
CREATE FUNCTION ddl.float8mi(a float8, b float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN a - b; END $$;
CREATE TYPE ddl.frange2 AS RANGE (subtype = float8, subtype_diff = ddl.float8mi);
CREATE FUNCTION ddl.inner_f(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN t IS NOT NULL; END $$;
CREATE FUNCTION ddl.outer_f(t text) RETURNS boolean LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC SELECT ddl.inner_f(t); END;
CREATE FUNCTION ddl.mycmp(a text, b text) RETURNS int LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN bttextcmp(a, b); END $$;
CREATE FUNCTION ddl.stf(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RETURN t; END $$;
RESET ROLE;
ALTER FUNCTION ddl.float8mi(float8, float8) LEAKPROOF;
ALTER FUNCTION ddl.inner_f(text) LEAKPROOF;
ALTER FUNCTION ddl.outer_f(text) LEAKPROOF;
ALTER FUNCTION ddl.mycmp(text, text) LEAKPROOF;
CREATE OPERATOR CLASS ddl.my_text_ops FOR TYPE text USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 ddl.mycmp(text, text);
CREATE TABLE ddl.more (pid text, load ddl.frange2, note text CHECK (ddl.outer_f(note)));
CREATE INDEX more_cmp ON ddl.more (pid ddl.my_text_ops);
ALTER TABLE ddl.more OWNER TO regress_ddl_owner;
SELECT health_pass.protect('ddl.more', 'pid') IS NOT NULL AS protected;
ALTER FUNCTION ddl.stf(text) LEAKPROOF;
CREATE STATISTICS ddl.more_st ON (ddl.stf(note)) FROM ddl.more;   -- a superuser's, after protect()
SET ROLE regress_ddl_owner;
-- search_path ddl: the function is created (replaced) in ddl; pg_catalog,
-- searched first, has a float8mi too
SET search_path = ddl;
CREATE OR REPLACE FUNCTION float8mi(a float8, b float8) RETURNS float8 LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked % %', a, b; RETURN a - b; END $$;
SET search_path = ddl, public;
CREATE OR REPLACE FUNCTION ddl.inner_f(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked %', t; RETURN true; END $$;
CREATE OR REPLACE FUNCTION ddl.mycmp(a text, b text) RETURNS int LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked % %', a, b; RETURN bttextcmp(a, b); END $$;
CREATE OR REPLACE FUNCTION ddl.stf(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
    $$ BEGIN RAISE NOTICE 'leaked %', t; RETURN t; END $$;
-- an operator's negator stands in for it: NOT (note === 'zz') in a CHECK
-- is prepared as note !== 'zz', so a new operator naming === as its
-- negator ran over the rows at ANALYZE and over other roles' writes (a
-- reviewer's); and protect() refuses a table whose operator already has a
-- leaky negator
CREATE FUNCTION ddl.negf(a text, b text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
    $$ BEGIN RAISE NOTICE 'leaked % %', a, b; RETURN a <> b; END $$;
RESET ROLE;
SELECT health_pass.unprotect('ddl.more') IS NOT NULL AS unprotected;
DROP TABLE ddl.more;
DROP OPERATOR CLASS ddl.my_text_ops USING btree;
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.negs (pid text, note text CHECK (NOT (note OPERATOR(ddl.===) 'zz')));
INSERT INTO ddl.negs VALUES ('N1', 'secret');
RESET ROLE;
SELECT health_pass.protect('ddl.negs', 'pid') IS NOT NULL AS protected;   -- ddl.=== has no negator yet
SET ROLE regress_ddl_owner;
CREATE OPERATOR ddl.!== (LEFTARG = text, RIGHTARG = text, FUNCTION = ddl.negf, NEGATOR = OPERATOR(ddl.===));
ANALYZE ddl.negs;
RESET ROLE;
SELECT health_pass.unprotect('ddl.negs') IS NOT NULL AS unprotected;
SET ROLE regress_ddl_owner;
CREATE OPERATOR ddl.!== (LEFTARG = text, RIGHTARG = text, FUNCTION = ddl.negf, NEGATOR = OPERATOR(ddl.===));
RESET ROLE;
SELECT health_pass.protect('ddl.negs', 'pid') IS NOT NULL AS protected;   -- now it has one: refused
DROP TABLE ddl.negs;

-- and a LEAKPROOF function that resolves names when it runs, without a
-- pinned search_path, is not trusted as LEAKPROOF: a name in its body
-- resolves under the caller's search_path (ANALYZE keeps the owner's), so
-- the owner could put its own upper() before pg_catalog's (a reviewer's)
SET ROLE regress_ddl_owner;
CREATE FUNCTION ddl.unpinned(t text) RETURNS boolean LANGUAGE sql IMMUTABLE AS
    $$ SELECT upper(t) IS NOT NULL $$;
CREATE TABLE ddl.pinless (pid text, note text CHECK (ddl.unpinned(note)));
RESET ROLE;
ALTER FUNCTION ddl.unpinned(text) LEAKPROOF;
SELECT health_pass.protect('ddl.pinless', 'pid') IS NOT NULL AS protected;
-- pinned to pg_catalog alone it is not trusted either: pg_temp, unnamed,
-- is searched first for types, and a temporary domain over text put the
-- caller's code in it (a reviewer's); nor with a schema a caller can write
ALTER FUNCTION ddl.unpinned(text) SET search_path = pg_catalog;
SELECT health_pass.protect('ddl.pinless', 'pid') IS NOT NULL AS protected_pg_catalog_alone;
ALTER FUNCTION ddl.unpinned(text) SET search_path = "$user", pg_catalog, pg_temp;
SELECT health_pass.protect('ddl.pinless', 'pid') IS NOT NULL AS protected_user_schema;
ALTER FUNCTION ddl.unpinned(text) SET search_path = pg_catalog, pg_temp;
SELECT health_pass.protect('ddl.pinless', 'pid') IS NOT NULL AS protected_once_pinned;
SELECT health_pass.unprotect('ddl.pinless') IS NOT NULL AS unprotected;
DROP TABLE ddl.pinless;
-- an index whose operator class has a support function the gate does not
-- trust: the comparison sees every key it passes before the gate (a
-- reviewer's leaky FUNCTION 1 printed the subjects next to the one asked)
SET ROLE regress_ddl_owner;
CREATE FUNCTION ddl.cmp2(a text, b text) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
    $$ BEGIN RAISE NOTICE 'leaked % %', a, b; RETURN bttextcmp(a, b); END $$;
CREATE TABLE ddl.opc (pid text, note text);
RESET ROLE;
CREATE OPERATOR CLASS ddl.leaky_ops FOR TYPE text USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 ddl.cmp2(text, text);
CREATE INDEX opc_leaky ON ddl.opc (pid ddl.leaky_ops);
SELECT health_pass.protect('ddl.opc', 'pid') IS NOT NULL AS protected;
DROP INDEX ddl.opc_leaky;
SELECT health_pass.protect('ddl.opc', 'pid') IS NOT NULL AS protected_without_it;
SET ROLE regress_ddl_owner;
CREATE INDEX opc_leaky ON ddl.opc (pid ddl.leaky_ops);
RESET ROLE;
SELECT health_pass.unprotect('ddl.opc') IS NOT NULL AS unprotected;
DROP TABLE ddl.opc;
DROP OPERATOR CLASS ddl.leaky_ops USING btree;

-- a foreign key NOT VALID into a protected table, from the owner's own
-- table of guessed keys: nothing checks them, and ON DELETE CASCADE then
-- deletes the guess another role deletes in the protected table, which a
-- trigger on the owner's table sees (a red-team pass learned that S2
-- existed, with no record naming the owner).  Refused; a validated foreign
-- key reads the guesses through the gate (the owner has no rule: denied,
-- recorded, and the validation fails whichever keys exist).
SELECT public.ddl_mark() AS m \gset
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.watch (k text);
INSERT INTO ddl.watch VALUES ('S1'), ('S2'), ('S7');
CREATE TABLE ddl.seen (k text);
CREATE FUNCTION ddl.spy() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO ddl.seen VALUES (OLD.k); RETURN OLD; END $$;
CREATE TRIGGER spy BEFORE DELETE ON ddl.watch FOR EACH ROW EXECUTE FUNCTION ddl.spy();
ALTER TABLE ddl.watch ADD FOREIGN KEY (k) REFERENCES ddl.reg (pid) ON DELETE CASCADE NOT VALID;
ALTER TABLE ddl.watch ADD FOREIGN KEY (k) REFERENCES ddl.reg (pid) ON DELETE CASCADE;
RESET ROLE;
SELECT current_user_name, relation, subject, outcome, reason FROM public.ddl_audit_since(:m);
DELETE FROM ddl.reg WHERE pid = 'S2';
SELECT k FROM ddl.seen;
DROP TABLE ddl.watch, ddl.seen;
DROP FUNCTION ddl.spy();
-- siblings (a reviewer's): ADD COLUMN ... REFERENCES, which PostgreSQL does
-- not validate when the column has no default of its own, though a domain's
-- volatile default (or an identity column) fills every existing row: 0.12.0
-- before the fix took 3,000 guesses behind a key marked valid.  Refused;
-- CREATE TABLE with a foreign key into a protected table still works (its
-- table is empty; the first fix refused it too), and its rows are checked
-- through the gate; and protect() refuses a table that an unvalidated
-- foreign key already references.
SET ROLE regress_ddl_owner;
CREATE SEQUENCE ddl.dseq;
CREATE DOMAIN ddl.dguess AS text DEFAULT ('S' || nextval('ddl.dseq'));
CREATE TABLE ddl.d1 (x int);
INSERT INTO ddl.d1 SELECT g FROM generate_series(1, 5) g;
ALTER TABLE ddl.d1 ADD COLUMN k ddl.dguess REFERENCES ddl.reg (pid) ON DELETE CASCADE;
ALTER TABLE ddl.d1 ADD COLUMN k int GENERATED ALWAYS AS IDENTITY REFERENCES ddl.reg (born);
CREATE TABLE ddl.refs (k text REFERENCES ddl.reg (pid));
INSERT INTO ddl.refs VALUES ('S1');
CREATE TABLE ddl.later (pid text PRIMARY KEY, dx text);
CREATE TABLE ddl.f_l (k text);
INSERT INTO ddl.f_l VALUES ('L1'), ('L9');
ALTER TABLE ddl.f_l ADD FOREIGN KEY (k) REFERENCES ddl.later ON DELETE CASCADE NOT VALID;
RESET ROLE;
SELECT health_pass.protect('ddl.later', 'pid');
ALTER TABLE ddl.f_l DROP CONSTRAINT f_l_k_fkey;
SELECT health_pass.protect('ddl.later', 'pid') IS NOT NULL AS protected_without_it;
SELECT health_pass.unprotect('ddl.later') IS NOT NULL AS unprotected;
-- ... nor one that a foreign key with a writing ON DELETE action references
-- from a table that is not protected: a key made by ADD COLUMN ...
-- REFERENCES while the table was unprotected is marked valid though a
-- domain's default filled its rows unchecked, and the action then shows
-- its owner which keys are deleted (a reviewer's sequence, through ATTACH
-- PARTITION of the referenced table to a protected one)
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.f_w (n int);
INSERT INTO ddl.f_w SELECT g FROM generate_series(1, 3) g;
ALTER TABLE ddl.f_w ADD COLUMN k ddl.dguess REFERENCES ddl.later ON DELETE CASCADE;
RESET ROLE;
SELECT convalidated FROM pg_constraint WHERE conrelid = 'ddl.f_w'::regclass;
SELECT health_pass.protect('ddl.later', 'pid');
ALTER TABLE ddl.f_w DROP CONSTRAINT f_w_k_fkey;
DELETE FROM ddl.f_w;
ALTER TABLE ddl.f_w ADD FOREIGN KEY (k) REFERENCES ddl.later;
SELECT health_pass.protect('ddl.later', 'pid') IS NOT NULL AS protected_with_a_plain_key;
SELECT health_pass.unprotect('ddl.later') IS NOT NULL AS unprotected;
DROP TABLE ddl.f_w;
-- ... and such a key made after protect() is refused in the same way,
-- validated or not: it kept showing its owner which keys other roles
-- deleted, and the new values of keys they changed, also once its rule
-- was gone (a reviewer's); and a cloned one on each new partition then
-- blocked adding partitions.  A key without such an action still works.
SET ROLE regress_ddl_owner;
CREATE TABLE ddl.wc (k text REFERENCES ddl.reg (pid) ON DELETE CASCADE);
CREATE TABLE ddl.wc (k text REFERENCES ddl.reg (pid) ON UPDATE SET NULL);
CREATE TABLE ddl.wc (k text);
ALTER TABLE ddl.wc ADD FOREIGN KEY (k) REFERENCES ddl.reg (pid) ON DELETE SET DEFAULT;
ALTER TABLE ddl.wc ADD FOREIGN KEY (k) REFERENCES ddl.reg (pid) ON DELETE RESTRICT;
RESET ROLE;
SELECT conname, confdeltype FROM pg_constraint WHERE conrelid = 'ddl.wc'::regclass;
DROP TABLE ddl.wc;
-- GREATEST/LEAST compare with their type's btree comparison, which the
-- check for untrusted LEAKPROOF code did not visit: protect() took a CHECK
-- that reached a superuser-marked LEAKPROOF PL comparison without a pinned
-- search_path through GREATEST, though it refused the same function called
-- directly (a reviewer's)
CREATE TYPE ddl.mt AS (v text);
CREATE FUNCTION ddl.mt_cmp(a ddl.mt, b ddl.mt) RETURNS int LANGUAGE plpgsql IMMUTABLE LEAKPROOF AS
    $$ BEGIN RETURN bttextcmp(a.v, b.v); END $$;
CREATE FUNCTION ddl.mt_op(a ddl.mt, b ddl.mt) RETURNS boolean LANGUAGE sql IMMUTABLE AS
    $$ SELECT ddl.mt_cmp(a, b) = 0 $$;
CREATE OPERATOR ddl.< (LEFTARG = ddl.mt, RIGHTARG = ddl.mt, FUNCTION = ddl.mt_op);
CREATE OPERATOR ddl.<= (LEFTARG = ddl.mt, RIGHTARG = ddl.mt, FUNCTION = ddl.mt_op);
CREATE OPERATOR ddl.= (LEFTARG = ddl.mt, RIGHTARG = ddl.mt, FUNCTION = ddl.mt_op);
CREATE OPERATOR ddl.>= (LEFTARG = ddl.mt, RIGHTARG = ddl.mt, FUNCTION = ddl.mt_op);
CREATE OPERATOR ddl.> (LEFTARG = ddl.mt, RIGHTARG = ddl.mt, FUNCTION = ddl.mt_op);
CREATE OPERATOR CLASS ddl.mt_ops DEFAULT FOR TYPE ddl.mt USING btree AS
    OPERATOR 1 ddl.<, OPERATOR 2 ddl.<=, OPERATOR 3 ddl.=, OPERATOR 4 ddl.>=, OPERATOR 5 ddl.>,
    FUNCTION 1 ddl.mt_cmp(ddl.mt, ddl.mt);
CREATE TABLE ddl.m1 (pid text PRIMARY KEY, dx text,
    CHECK (GREATEST(ROW(dx)::ddl.mt, ROW('a')::ddl.mt) IS NOT NULL));
SELECT health_pass.protect('ddl.m1', 'pid');
DROP TABLE ddl.m1;
DROP OPERATOR FAMILY ddl.mt_ops USING btree;
DROP OPERATOR ddl.< (ddl.mt, ddl.mt), ddl.<= (ddl.mt, ddl.mt), ddl.= (ddl.mt, ddl.mt),
    ddl.>= (ddl.mt, ddl.mt), ddl.> (ddl.mt, ddl.mt);
DROP FUNCTION ddl.mt_op(ddl.mt, ddl.mt), ddl.mt_cmp(ddl.mt, ddl.mt);
DROP TYPE ddl.mt;
-- the same NOT VALID key past the check before the statement (a
-- reviewer's): the check looked the referenced table up by name while
-- search_path named an unprotected decoy; an earlier subcommand's default
-- then set search_path, and PostgreSQL found the protected table of the
-- same name.  The foreign keys an ALTER TABLE made are checked again after
-- it, by the table's OID.
CREATE SCHEMA ddl_decoy AUTHORIZATION regress_ddl_owner;
SET ROLE regress_ddl_owner;
CREATE TABLE ddl_decoy.reg (pid text PRIMARY KEY);
CREATE FUNCTION ddl.sw() RETURNS int LANGUAGE plpgsql IMMUTABLE AS
    $$ BEGIN PERFORM set_config('search_path', 'ddl', false); RETURN 1; END $$;
CREATE TABLE ddl.watch2 (k text);
INSERT INTO ddl.watch2 VALUES ('S1'), ('S2'), ('S7');
SET search_path = ddl_decoy;
ALTER TABLE ddl.watch2 ADD COLUMN z int DEFAULT ddl.sw(),
  ADD CONSTRAINT wfk FOREIGN KEY (k) REFERENCES reg (pid) ON DELETE CASCADE NOT VALID;
SET search_path = ddl_decoy;
ALTER TABLE ddl.watch2 ADD COLUMN z2 int DEFAULT ddl.sw(),
  ADD COLUMN k2 ddl.dguess REFERENCES reg (pid) ON DELETE CASCADE;
SET search_path = ddl, public;
SELECT count(*) AS keys_into_reg FROM pg_constraint WHERE conrelid = 'ddl.watch2'::regclass;
-- a NOT VALID key into the unprotected decoy is still added
SET search_path = ddl_decoy;
ALTER TABLE ddl.watch2 ADD CONSTRAINT dfk FOREIGN KEY (k) REFERENCES ddl_decoy.reg (pid) NOT VALID;
SET search_path = ddl, public;
RESET ROLE;
SELECT conname, confrelid::regclass FROM pg_constraint WHERE conrelid = 'ddl.watch2'::regclass;
DROP TABLE ddl.d1, ddl.refs, ddl.f_l, ddl.later, ddl.watch2;
DROP SCHEMA ddl_decoy CASCADE;
DROP FUNCTION ddl.sw();
DROP DOMAIN ddl.dguess;
DROP SEQUENCE ddl.dseq;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA ddl CASCADE;
RESET client_min_messages;
DROP FUNCTION public.ddl_mark(), public.ddl_audit_since(bigint);
REVOKE :"extowner" FROM regress_ddl_admin;
DROP OWNED BY regress_ddl_owner, regress_ddl_reader, regress_ddl_nobody;
DROP ROLE regress_ddl_owner, regress_ddl_reader, regress_ddl_nobody, regress_ddl_admin;
