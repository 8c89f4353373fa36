-- Red team of the 0.6.0 gate (issue 11 rewrite): attacks by ordinary roles.
-- Each section says what 9c8068c (main) did; the expected output is that of
-- the fixed gate (1c since 0.7.0).  Concurrency attacks (EvalPlanQual without RETURNING,
-- MERGE, audit_sync and NOTICE/errors) are in test/isolation/specs/redteam.spec.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
-- every refusal recorded, whatever the time between statements (counting
-- repeated refusals: test/sql/denials.sql, test/sql/quota.sql §10)
SET health_pass.denial_interval = 0;

CREATE ROLE regress_red_quota LOGIN;     -- may read 10 subjects an hour
CREATE ROLE regress_red_none LOGIN;      -- no rule
CREATE ROLE regress_red_all LOGIN;       -- no quota
GRANT USAGE ON SCHEMA health_pass TO regress_red_quota, regress_red_none, regress_red_all;
CREATE TABLE red_reg (id int PRIMARY KEY, person text NOT NULL, note text);
INSERT INTO red_reg SELECT i, 'R' || i, 'note ' || i FROM generate_series(1, 2000) i;
UPDATE red_reg SET note = 'HIV positive' WHERE id IN (5, 17, 1234);
CREATE INDEX ON red_reg (person);
ANALYZE red_reg;
GRANT SELECT ON red_reg TO regress_red_quota, regress_red_none, regress_red_all;
GRANT UPDATE ON red_reg TO regress_red_all;
SELECT health_pass.protect('red_reg', 'person') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_red_quota', 'red_reg', 'care', 10, '1 hour') IS NOT NULL AS q,
       health_pass.allow('regress_red_all', 'red_reg', 'care') IS NOT NULL AS a;

-- records of red_reg for a role since mark: outcome, records, subjects
CREATE FUNCTION red_audited(role name, mark bigint) RETURNS TABLE (outcome text, records bigint, subjects bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY SELECT a.outcome, count(*), count(DISTINCT a.subject) FROM health_pass.audit_log a
    WHERE a.id > mark AND a.current_user_name = role AND a.relation = 'red_reg'::regclass
    GROUP BY a.outcome ORDER BY a.outcome;
END $$;
CREATE FUNCTION red_mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM health_pass.audit_log);
END $$;
GRANT EXECUTE ON FUNCTION red_audited(name, bigint), red_mark() TO PUBLIC;

-- 1. A leaky call WITHOUT a column in it passed contain_leaked_vars() and
-- ran before the gate, but only on rows the leakproof quals before it
-- accepted: an oracle on any leakproof predicate, with no record and no
-- quota.  main: currval 3 (the three 'HIV positive' rows), both settings
-- say 'hit', and NO record at all (the first red_audited() is empty); the
-- bulk count returns 0 instead of failing on the quota, after counting
-- every row with note >= 'I' (2000) into the sequence.  Fixed: such a qual
-- runs after the gate, so each row it sees is audited and counted against
-- the quota.
SELECT red_mark() AS m \gset
SET ROLE regress_red_quota;
SET health_pass.purpose = 'care';
CREATE TEMP SEQUENCE red_s;
-- how many rows say 'HIV positive'?
SELECT count(*) FROM red_reg WHERE note = 'HIV positive' AND nextval('red_s') < 0;
SELECT currval('red_s') AS rows_that_matched;
-- does R5 have it?  one bit, through a setting
SELECT count(*) FROM red_reg WHERE person = 'R5' AND note = 'HIV positive'
   AND set_config('red.hit', 'R5 is HIV positive', false) = 'no';
SELECT current_setting('red.hit', true) AS oracle;
-- the same bit inside one qual: a CASE branch
SELECT count(*) FROM red_reg WHERE person = 'R17'
   AND CASE WHEN note = 'HIV positive' THEN set_config('red.case', 'R17 too', false) ELSE 'x' END = 'never';
SELECT current_setting('red.case', true) AS oracle;
-- the same bit through an InitPlan, which runs when its parameter is first
-- needed: in a qual after a leakproof one, only if a row passed that one
-- (no function in the scan's qual at all, only a parameter)
SELECT count(*) FROM red_reg WHERE person = 'R1234' AND note = 'HIV positive'
   AND note NOT IN ((SELECT CASE WHEN set_config('red.ip', 'R1234 too', false) <> '' THEN 'HIV positive' END), 'a', 'b');
SELECT current_setting('red.ip', true) AS oracle;
RESET ROLE;
SELECT * FROM red_audited('regress_red_quota', :m);
SET ROLE regress_red_quota;
-- bulk: every row whose note is >= 'I' counted, past the 10-subject quota
SELECT count(*) FROM red_reg WHERE note >= 'I' AND nextval('red_s') < 0;
SELECT currval('red_s') > 3 AS counted_more;
RESET ROLE;
SELECT * FROM red_audited('regress_red_quota', :m);
-- a role with no rule gets nothing either way
SET ROLE regress_red_none;
SET health_pass.purpose = 'care';
SELECT count(*) FROM red_reg WHERE note = 'HIV positive' AND set_config('red.none', 'hit', false) = 'no';
SELECT current_setting('red.none', true) AS oracle;
RESET ROLE;
DROP SEQUENCE red_s;

-- 1a. The same oracle through an index condition rechecked row by row:
-- a leaky call on the non-column side (allowed when STABLE) ran once per
-- candidate row of a BRIN index (or a lossy bitmap page), before the gate.
-- main: 'called' once per row with code >= 1900 (101 rows), no record.
-- Fixed: the path is dropped and the condition runs after the gate.
ALTER TABLE red_reg ADD COLUMN code int;
UPDATE red_reg SET code = id;
CREATE INDEX red_reg_brin ON red_reg USING brin (code);
VACUUM ANALYZE red_reg;
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
CREATE FUNCTION pg_temp.red_stab() RETURNS int LANGUAGE plpgsql STABLE AS
$$ BEGIN PERFORM set_config('red.calls', (coalesce(nullif(current_setting('red.calls', true), ''), '0')::int + 1)::text, false); RETURN 5000; END $$;
SET enable_seqscan = off; SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM red_reg WHERE code >= 1900 AND code <= pg_temp.red_stab() AND code <= 50;
SELECT count(*) FROM red_reg WHERE code >= 1900 AND code <= pg_temp.red_stab() AND code <= 50;
SELECT current_setting('red.calls')::int < 10 AS no_row_counted;
RESET enable_seqscan; RESET enable_indexscan;
DROP FUNCTION pg_temp.red_stab();
RESET ROLE;
SELECT * FROM red_audited('regress_red_all', :m);

-- 1b. Rows that a leakproof condition rejects were neither seen nor
-- audited, and the role picks which side is rejected.  A role without quota
-- asked "is R5 HIV positive?" so that yes = no row: the subject whose
-- secret it learned was exactly the one the log never named (9c8068c: no
-- record of R5, R17 or R1234).  Fixed: only conditions on the subject alone
-- (and index conditions) run before the gate; note <> '...' runs after it,
-- so R5 is audited whatever the answer.
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
SELECT count(*) AS r5_not_positive FROM red_reg WHERE person = 'R5' AND note <> 'HIV positive';
SELECT count(*) AS r6_not_positive FROM red_reg WHERE person = 'R6' AND note <> 'HIV positive';
-- every positive subject of the table, and only the negatives audited
SELECT count(*) FROM red_reg WHERE note <> 'HIV positive';
RESET ROLE;
SELECT * FROM red_audited('regress_red_all', :m);
SELECT count(*) AS positives_named_in_log FROM health_pass.audit_log
 WHERE id > :m AND relation = 'red_reg'::regclass AND subject IN ('R5', 'R17', 'R1234');

-- 1c. Quotas were counted per current role, so a member of the group that
-- holds the rule read max_subjects as itself and as many again after SET
-- ROLE to the group.  Fixed in 0.7.0: a quota belongs to the rule.
CREATE ROLE regress_red_nurses NOLOGIN;
CREATE ROLE regress_red_alice LOGIN IN ROLE regress_red_nurses;
GRANT USAGE ON SCHEMA health_pass TO regress_red_nurses;
GRANT SELECT ON red_reg TO regress_red_nurses;
SELECT health_pass.allow('regress_red_nurses', 'red_reg', 'care', 3, '1 hour') IS NOT NULL AS allowed;
SELECT red_mark() AS m \gset
SET SESSION AUTHORIZATION regress_red_alice;
SET health_pass.purpose = 'care';
SELECT person FROM red_reg WHERE id BETWEEN 500 AND 503 ORDER BY id;
SELECT person FROM red_reg WHERE id BETWEEN 500 AND 502 ORDER BY id;
SET ROLE regress_red_nurses;
SELECT person FROM red_reg WHERE id BETWEEN 600 AND 602 ORDER BY id;
RESET SESSION AUTHORIZATION;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT count(DISTINCT subject) AS subjects_alice_read_with_a_quota_of_3 FROM health_pass.audit_log
 WHERE id > :m AND session_user_name = 'regress_red_alice' AND outcome = 'allowed';

-- 1d. The table's owner, no superuser, read every row without a record
-- through DDL that evaluates expressions over existing rows, added triggers
-- that see the rows other roles change, and switched row security (which
-- hides statistics) off.  Fixed (src/access/ddl.c): each is refused and audited.
CREATE ROLE regress_red_owner LOGIN;
GRANT CREATE ON SCHEMA public TO regress_red_owner;
SET ROLE regress_red_owner;
CREATE TABLE red_owned (id int, person text, note text);
INSERT INTO red_owned SELECT i, 'O' || i, 'secret ' || i FROM generate_series(1, 3) i;
RESET ROLE;
SELECT health_pass.protect('red_owned', 'person') IS NOT NULL AS protected;
SELECT red_mark() AS m \gset
SET ROLE regress_red_owner;
CREATE FUNCTION pg_temp.red_owner_sees(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
$$ BEGIN RAISE NOTICE 'owner sees %', $1; RETURN true; END $$;
ALTER TABLE red_owned ADD CONSTRAINT red_c CHECK (pg_temp.red_owner_sees(note));
CREATE FUNCTION red_owner_trg() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE NOTICE 'trigger sees %', OLD.note; RETURN NEW; END $$;
CREATE TRIGGER red_t BEFORE UPDATE ON red_owned FOR EACH ROW EXECUTE FUNCTION red_owner_trg();
ALTER TABLE red_owned DISABLE ROW LEVEL SECURITY;
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT count(*) AS owner_records FROM health_pass.audit_log
 WHERE id > :m AND current_user_name = 'regress_red_owner';
DROP TABLE red_owned;
DROP FUNCTION red_owner_trg(), pg_temp.red_owner_sees(text);
REVOKE CREATE ON SCHEMA public FROM regress_red_owner;

-- 1e. A partition added to a partitioned table whose partitions were
-- protected was not protected, and a role with no rule read its rows through
-- the parent.  Fixed: a partition alone cannot be protected (protect the
-- root), and a partition added to a protected root is protected.
CREATE TABLE red_part (id int, person text, note text) PARTITION BY RANGE (id);
CREATE TABLE red_part1 PARTITION OF red_part FOR VALUES FROM (0) TO (100);
SELECT health_pass.protect('red_part1', 'person') IS NOT NULL AS protected;
SELECT health_pass.protect('red_part', 'person') IS NOT NULL AS protected;
CREATE TABLE red_part2 PARTITION OF red_part FOR VALUES FROM (100) TO (200);
INSERT INTO red_part VALUES (1, 'Q1', 'old secret'), (150, 'Q150', 'new secret');
GRANT SELECT ON red_part TO regress_red_none;
SET ROLE regress_red_none;
SET health_pass.purpose = 'care';
SELECT * FROM red_part ORDER BY id;
RESET ROLE;
DROP TABLE red_part;

-- 1f. An error from leakproof code before the gate: starts_with() under a
-- nondeterministic collation fails whatever its arguments, and a CASE on the
-- subject alone decides whether it runs, so the error told whether a row
-- matching the index condition had the subject asked (a red-team pass read
-- which subjects are HIV positive, past the quota, with no record: 0.11.0
-- printed the error for R5 and no record of it).  Now the row a condition
-- failed on is gated, as a returned row, before the error goes on.
CREATE INDEX red_reg_note ON red_reg (note);
ANALYZE red_reg;
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
CREATE COLLATION pg_temp.red_nd (provider = icu, locale = 'und', deterministic = false);
SET enable_seqscan = off;
SELECT count(*) FROM red_reg WHERE note = 'HIV positive'
   AND CASE WHEN person = 'R5' THEN starts_with(person COLLATE pg_temp.red_nd, '') ELSE false END;
SELECT count(*) FROM red_reg WHERE note = 'HIV positive'
   AND CASE WHEN person = 'R6' THEN starts_with(person COLLATE pg_temp.red_nd, '') ELSE false END;
RESET enable_seqscan;
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, subject FROM health_pass.audit_log
 WHERE id > :m AND current_user_name = 'regress_red_all' ORDER BY id;
-- 1g. A LEAKPROOF function a superuser trusts (PL/pgSQL, search_path pinned
-- to pg_catalog, pg_temp) that takes anyelement: its body's v::text is a
-- cast the CALLER's type decides when it runs, found in pg_cast, which no
-- search_path covers.  A role passed ROW(person)::its own composite type
-- with its own cast to text, which raised each row's subject as a NOTICE
-- before the gate, behind the index condition on note: 0.12.0 before the
-- fix printed R5, R17 and R1234 with no record (a red-team pass read every
-- subject past a spent quota).  Now a user-defined PL or SQL function with
-- a polymorphic or record argument is not trusted as LEAKPROOF: it runs
-- after the gate, so each NOTICE is of a row with its record.
CREATE FUNCTION public.red_is_blank(v anyelement) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE LEAKPROOF SET search_path = pg_catalog, pg_temp
  AS $$ BEGIN RETURN v IS NULL OR v::text = ''; END $$;
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
CREATE TYPE pg_temp.red_ct AS (p text);
CREATE FUNCTION pg_temp.red_ct_text(c pg_temp.red_ct) RETURNS text LANGUAGE plpgsql
  AS $$ BEGIN RAISE NOTICE 'the cast saw %', c.p; RETURN c.p; END $$;
CREATE CAST (pg_temp.red_ct AS text) WITH FUNCTION pg_temp.red_ct_text(pg_temp.red_ct);
SET enable_seqscan = off;
SELECT count(*) FROM red_reg WHERE note = 'HIV positive' AND public.red_is_blank(ROW(person)::pg_temp.red_ct);
RESET enable_seqscan;
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, subject FROM health_pass.audit_log
 WHERE id > :m AND current_user_name = 'regress_red_all' ORDER BY subject;
DROP FUNCTION public.red_is_blank(anyelement);
-- The same through a fixed argument type that the role owns (a reviewer's):
-- its owner may add a cast from it whenever it likes, so a function over it
-- is not trusted either, however a superuser marked it.
CREATE TYPE public.red_ct2 AS (p text);
ALTER TYPE public.red_ct2 OWNER TO regress_red_all;
CREATE FUNCTION public.red_ct2_blank(v public.red_ct2) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE LEAKPROOF SET search_path = pg_catalog, pg_temp
  AS $$ BEGIN RETURN v IS NULL OR v::text = ''; END $$;
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
CREATE FUNCTION pg_temp.red_ct2_text(c public.red_ct2) RETURNS text LANGUAGE plpgsql
  AS $$ BEGIN RAISE NOTICE 'the cast saw %', c.p; RETURN c.p; END $$;
CREATE CAST (public.red_ct2 AS text) WITH FUNCTION pg_temp.red_ct2_text(public.red_ct2);
SET enable_seqscan = off;
SELECT count(*) FROM red_reg WHERE note = 'HIV positive' AND public.red_ct2_blank(ROW(person)::public.red_ct2);
RESET enable_seqscan;
DROP CAST (public.red_ct2 AS text);
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, subject FROM health_pass.audit_log
 WHERE id > :m AND current_user_name = 'regress_red_all' ORDER BY subject;
-- ... and through a superuser's domain over that type (a cast from a domain
-- is looked up on its base type)
CREATE DOMAIN public.red_dom AS public.red_ct2;
CREATE FUNCTION public.red_dom_blank(v public.red_dom) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE LEAKPROOF SET search_path = pg_catalog, pg_temp
  AS $$ BEGIN RETURN v IS NULL OR v::text = ''; END $$;
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
CREATE CAST (public.red_ct2 AS text) WITH FUNCTION pg_temp.red_ct2_text(public.red_ct2);
SET enable_seqscan = off;
SELECT count(*) FROM red_reg WHERE note = 'HIV positive'
   AND public.red_dom_blank(ROW(person)::public.red_ct2::public.red_dom);
RESET enable_seqscan;
DROP CAST (public.red_ct2 AS text);
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, subject FROM health_pass.audit_log
 WHERE id > :m AND current_user_name = 'regress_red_all' ORDER BY subject;
-- ... and through the result: a function over text that returns the
-- role's own enum converts its value with the role's cast (a reviewer's)
CREATE TYPE public.red_en AS ENUM ('x');
ALTER TYPE public.red_en OWNER TO regress_red_all;
CREATE FUNCTION public.red_as_en(v text) RETURNS public.red_en
  LANGUAGE plpgsql IMMUTABLE LEAKPROOF SET search_path = pg_catalog, pg_temp
  AS $$ BEGIN RETURN v; END $$;
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
CREATE FUNCTION pg_temp.red_en_in(t text) RETURNS public.red_en LANGUAGE plpgsql
  AS $$ BEGIN RAISE NOTICE 'the cast saw %', t; RETURN NULL; END $$;
CREATE CAST (text AS public.red_en) WITH FUNCTION pg_temp.red_en_in(text) AS ASSIGNMENT;
SET enable_seqscan = off;
SELECT count(*) FROM red_reg WHERE note = 'HIV positive' AND public.red_as_en(person) IS NOT NULL;
RESET enable_seqscan;
DROP CAST (text AS public.red_en);
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, subject FROM health_pass.audit_log
 WHERE id > :m AND current_user_name = 'regress_red_all' ORDER BY subject;
DROP FUNCTION public.red_as_en(text);
DROP TYPE public.red_en;
DROP FUNCTION public.red_dom_blank(public.red_dom);
DROP DOMAIN public.red_dom;
DROP FUNCTION public.red_ct2_blank(public.red_ct2);
DROP TYPE public.red_ct2;
-- 1h. A hashed "= ANY" (a constant array of 9 or more) runs the hash
-- function of the operator's hash operator family on every row it tests,
-- and the walkers looked only at the operator: hashtext() is not
-- LEAKPROOF.  Here a superuser's hash operator class (a hash function
-- that raises a NOTICE; its = is texteq) makes that visible: before the
-- fix every subject of the table was hashed before the gate, and records
-- exist only for the two that matched.  Now such a condition, when it runs
-- before the gate, compares element by element with its (leakproof)
-- operator: no hash, the same answer.
CREATE FUNCTION public.red_hash(t text) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN RAISE NOTICE 'hashed %', t; RETURN hashtext(t); END $$;
CREATE OPERATOR public.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = texteq, HASHES, COMMUTATOR = OPERATOR(public.===));
CREATE OPERATOR CLASS public.red_hash_ops FOR TYPE text USING hash AS
  OPERATOR 1 public.===, FUNCTION 1 public.red_hash(text);
CREATE TABLE red_small (id int, person text);
INSERT INTO red_small SELECT i, 'S' || i FROM generate_series(1, 12) i;
GRANT SELECT ON red_small TO regress_red_all;
SELECT health_pass.protect('red_small', 'person') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_red_all', 'red_small', 'care') IS NOT NULL AS allowed;
SELECT red_mark() AS m \gset
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
SELECT count(*) FROM red_small
 WHERE person OPERATOR(public.===) ANY ('{S3, S9, X1, X2, X3, X4, X5, X6, X7, X8}'::text[]);
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, subject FROM health_pass.audit_log
 WHERE id > :m AND current_user_name = 'regress_red_all' ORDER BY subject;
SELECT health_pass.unprotect('red_small') IS NOT NULL AS unprotected;
DROP TABLE red_small;
DROP OPERATOR CLASS public.red_hash_ops USING hash;
DROP OPERATOR public.=== (text, text);
DROP FUNCTION public.red_hash(text);
DROP INDEX red_reg_note;

-- 2. What held: no crash and no lost track of a scan, for cursors in every
-- order, cursors opened in functions and fetched elsewhere, WITH HOLD,
-- scroll, savepoints, errors mid-fetch, FOR UPDATE cursors and WHERE
-- CURRENT OF, ON CONFLICT, MERGE, recursive CTEs, plan invalidation inside
-- a per-row function (all as a role without quota).
SET ROLE regress_red_all;
SET health_pass.purpose = 'care';
CREATE FUNCTION pg_temp.opencur(n text) RETURNS refcursor LANGUAGE plpgsql AS
$$ DECLARE c refcursor := n; BEGIN OPEN c SCROLL FOR SELECT person FROM red_reg WHERE id < 50 ORDER BY id; RETURN c; END $$;
CREATE FUNCTION pg_temp.fetch1(n text) RETURNS text LANGUAGE plpgsql AS
$$ DECLARE c refcursor := n; r record; BEGIN FETCH c INTO r; RETURN r.person; END $$;
BEGIN;
SELECT pg_temp.opencur('a'), pg_temp.opencur('b');
SELECT pg_temp.fetch1('a'), pg_temp.fetch1('b') FROM generate_series(1, 3);
CLOSE a;
SELECT count(*) FROM (SELECT repeat('x', 100000) FROM generate_series(1, 50)) s;
FETCH BACKWARD 2 FROM b;
MOVE LAST IN b;
FETCH PRIOR FROM b;
SAVEPOINT s;
DECLARE z CURSOR FOR SELECT person, 1 / (id - 3) FROM red_reg WHERE id < 6 ORDER BY id;
FETCH 5 FROM z;
ROLLBACK TO s;
FETCH 1 FROM b;
DECLARE h CURSOR WITH HOLD FOR SELECT r.person, (SELECT count(*) FROM red_reg r2 WHERE r2.id = r.id) FROM red_reg r WHERE id < 4 ORDER BY id;
FETCH 1 FROM h;
COMMIT;
FETCH ALL FROM h;
CLOSE h;
CREATE TEMP TABLE red_tt (a int);
CREATE FUNCTION pg_temp.inval(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE 'ALTER TABLE red_tt ADD COLUMN c' || i || ' int';
    SELECT person INTO r FROM red_reg WHERE id = i;
    RETURN r;
END $$;
SELECT pg_temp.inval(id) FROM red_reg WHERE id BETWEEN 200 AND 202 ORDER BY id;
WITH RECURSIVE w(id) AS (SELECT 300 UNION ALL SELECT r.id + 1 FROM w JOIN red_reg r ON r.id = w.id WHERE r.id < 310)
SELECT count(*) FROM w;
DROP TABLE red_tt;
DROP FUNCTION pg_temp.opencur(text), pg_temp.fetch1(text), pg_temp.inval(int);
-- a correlated SubPlan over a protected table, copied into the quals of
-- each partition, shares one plan state; main: "executor node wrapped twice"
CREATE TEMP TABLE red_p (id int, note text) PARTITION BY RANGE (id);
CREATE TEMP TABLE red_p1 PARTITION OF red_p FOR VALUES FROM (0) TO (100);
CREATE TEMP TABLE red_p2 PARTITION OF red_p FOR VALUES FROM (100) TO (200);
INSERT INTO red_p SELECT i, 'x' FROM generate_series(1, 199) i;
SELECT count(*) FROM red_p WHERE id BETWEEN 95 AND 105 AND note <> (SELECT r.note FROM red_reg r WHERE r.id = red_p.id);
SELECT count(*) FROM red_p WHERE id BETWEEN 95 AND 105 AND note <> (SELECT r.note FROM red_reg r WHERE r.id = red_p.id FOR UPDATE);
DROP TABLE red_p;
RESET ROLE;
SELECT 1 AS alive;

DROP TABLE red_reg;
DROP FUNCTION red_audited(name, bigint), red_mark();
DELETE FROM health_pass.access_rule WHERE grantee::text LIKE 'regress_red%';
REVOKE ALL ON SCHEMA health_pass FROM regress_red_quota, regress_red_none, regress_red_all, regress_red_nurses;
DROP ROLE regress_red_quota, regress_red_none, regress_red_all, regress_red_alice, regress_red_nurses, regress_red_owner;
