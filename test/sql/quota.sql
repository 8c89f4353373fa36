-- Quotas and subjects (issue 12): a quota belongs to the rule, a subject is
-- its value.  Each section is an attack that worked on 0.6.0.
-- (Quotas surviving a crash or restart, and a full tracker: test/t/050_quota_restart.pl.)
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;

CREATE FUNCTION q_mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM health_pass.audit_log);
END $$;
-- records of a table since mark, by outcome: records, distinct subjects, NULL subjects
CREATE FUNCTION q_audited(tbl regclass, mark bigint)
    RETURNS TABLE (outcome text, records bigint, subjects bigint, null_subjects bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY SELECT a.outcome, count(*), count(DISTINCT a.subject), count(*) FILTER (WHERE a.subject IS NULL)
    FROM health_pass.audit_log a WHERE a.id > mark AND a.relation = tbl
    GROUP BY a.outcome ORDER BY a.outcome;
END $$;

-- 1. Members made by a role with CREATEROLE got a fresh quota each under
-- the same rule: 0.6.0 counted per current role.  Now every role reading
-- through a rule shares its max_subjects.
CREATE ROLE regress_q_staff NOLOGIN;
CREATE ROLE regress_q_admin LOGIN CREATEROLE;
CREATE TABLE q_reg (id int PRIMARY KEY, person text NOT NULL);
INSERT INTO q_reg SELECT i, 'P' || i FROM generate_series(1, 100) i;
GRANT SELECT ON q_reg TO regress_q_staff;
SELECT health_pass.protect('q_reg', 'person') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_q_staff', 'q_reg', 'care', 5, '1 hour') IS NOT NULL AS allowed;
SET SESSION AUTHORIZATION regress_q_admin;
CREATE ROLE regress_q_m1 LOGIN IN ROLE regress_q_staff;
CREATE ROLE regress_q_m2 LOGIN IN ROLE regress_q_staff;
CREATE ROLE regress_q_m3 LOGIN IN ROLE regress_q_staff;
RESET SESSION AUTHORIZATION;
SELECT q_mark() AS m \gset
SET SESSION AUTHORIZATION regress_q_m1;
SET health_pass.purpose = 'care';
SELECT count(*) FROM q_reg WHERE id <= 3;
SET SESSION AUTHORIZATION regress_q_m2;
SET health_pass.purpose = 'care';
SELECT count(*) FROM q_reg WHERE id IN (1, 4, 5);  -- P1 is counted already
SELECT count(*) FROM q_reg WHERE id = 6;           -- the rule's sixth subject
SET SESSION AUTHORIZATION regress_q_m3;
SET health_pass.purpose = 'care';
SELECT count(*) FROM q_reg WHERE id = 7;
SELECT count(*) FROM q_reg WHERE id = 2;           -- read through the rule before
RESET SESSION AUTHORIZATION;
SELECT * FROM q_audited('q_reg', :m);

-- 2. A float subject printed under extra_float_digits = -12: 1,000 values
-- printed the same and counted as one subject, with one record.  Now they
-- are 1,000 subjects, recorded under fixed settings, whatever the session's.
CREATE TABLE q_float (id int PRIMARY KEY, subject float8 NOT NULL);
INSERT INTO q_float SELECT i, 1 + i * 1e-14 FROM generate_series(1, 1000) i;
CREATE ROLE regress_q_all LOGIN;
GRANT SELECT ON q_float TO regress_q_all, regress_q_staff;
SELECT health_pass.protect('q_float', 'subject') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_q_all', 'q_float', 'care') IS NOT NULL AS a,
       health_pass.allow('regress_q_staff', 'q_float', 'care', 100, '1 hour') IS NOT NULL AS q;
SELECT q_mark() AS m \gset
SET SESSION AUTHORIZATION regress_q_all;
SET health_pass.purpose = 'care';
SET extra_float_digits = -12;
SELECT count(*), count(DISTINCT subject::text) AS printed_apart FROM q_float;
SET SESSION AUTHORIZATION regress_q_m1;
SET health_pass.purpose = 'care';
SET extra_float_digits = -12;
SELECT count(*) FROM q_float WHERE id <= 200;
RESET SESSION AUTHORIZATION;
RESET extra_float_digits;
SELECT * FROM q_audited('q_float', :m);
-- what is recorded is the shortest text that reads back as the same value
SELECT count(*) AS records_that_read_back FROM health_pass.audit_log a JOIN q_float f
    ON a.subject::float8 = f.subject
WHERE a.id > :m AND a.relation = 'q_float'::regclass AND a.outcome = 'allowed';
SELECT health_pass.subject_text(1.5::float8) AS f, health_pass.subject_text(0.1::float4) AS f4;

-- 3. NULL subjects: 500 rows cost one quota unit and left one record.  A
-- NULL subject is now a subject of its own on every row.
CREATE TABLE q_null (id int PRIMARY KEY, person text);
INSERT INTO q_null SELECT i, CASE WHEN i <= 500 THEN NULL ELSE 'N' || i END
FROM generate_series(1, 510) i;
GRANT SELECT ON q_null TO regress_q_all, regress_q_staff;
SELECT health_pass.protect('q_null', 'person') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_q_all', 'q_null', 'care') IS NOT NULL AS a,
       health_pass.allow('regress_q_staff', 'q_null', 'care', 10, '1 hour') IS NOT NULL AS q;
SELECT q_mark() AS m \gset
SET SESSION AUTHORIZATION regress_q_all;
SET health_pass.purpose = 'care';
SELECT count(*) FROM q_null;
SET SESSION AUTHORIZATION regress_q_m1;
SET health_pass.purpose = 'care';
SELECT count(*) FROM (SELECT person FROM q_null LIMIT 10) s;  -- ten NULL subjects: the quota
SELECT count(*) FROM (SELECT person FROM q_null LIMIT 1) s;   -- the same row is an eleventh
RESET SESSION AUTHORIZATION;
SELECT * FROM q_audited('q_null', :m);

-- 4. A subject longer than 127 bytes failed every scan that reached it, for
-- all readers.  Now it is recorded by its SHA-256 digest, and who_read()
-- finds it by its value.
CREATE TABLE q_long (id int PRIMARY KEY, person text NOT NULL);
INSERT INTO q_long VALUES (1, repeat('x', 127)), (2, repeat('x', 128)),
                          (3, repeat('x', 300) || 'a'), (4, repeat('x', 300) || 'b');
GRANT SELECT ON q_long TO regress_q_all;
SELECT health_pass.protect('q_long', 'person') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_q_all', 'q_long', 'care') IS NOT NULL AS a;
SELECT q_mark() AS m \gset
SET SESSION AUTHORIZATION regress_q_all;
SET health_pass.purpose = 'care';
SELECT id, length(person) FROM q_long ORDER BY id;
RESET SESSION AUTHORIZATION;
SELECT * FROM q_audited('q_long', :m);
SELECT l.id, length(a.subject) AS recorded_length, left(a.subject, 7) AS recorded_as,
       a.subject = health_pass.subject_text(l.person) AS is_subject_text,
       a.subject = 'sha256:' || encode(sha256(convert_to(l.person, 'UTF8')), 'hex') AS is_documented_digest
FROM health_pass.audit_log a JOIN q_long l ON a.subject = health_pass.subject_text(l.person)
WHERE a.id > :m AND a.relation = 'q_long'::regclass ORDER BY l.id;
-- (the query above read q_long as a superuser, audited too; whether its
-- records were written before who_read() looked was a race: flushed, and
-- counted apart)
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT count(*) FILTER (WHERE current_user_name = 'regress_q_all') AS who_read_finds_it,
       count(*) FILTER (WHERE outcome = 'superuser') AS and_the_superuser_read
FROM health_pass.who_read('q_long', repeat('x', 300) || 'b');

-- 5. A time stamp subject reads the same in every time zone and date style
CREATE TABLE q_time (id int PRIMARY KEY, born timestamptz NOT NULL);
INSERT INTO q_time VALUES (1, '2021-05-01 10:00:00+02');
GRANT SELECT ON q_time TO regress_q_all;
SELECT health_pass.protect('q_time', 'born') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_q_all', 'q_time', 'care') IS NOT NULL AS a;
SELECT q_mark() AS m \gset
SET SESSION AUTHORIZATION regress_q_all;
SET health_pass.purpose = 'care';
SET TimeZone = 'America/Los_Angeles';
SET DateStyle = 'SQL, DMY';
SELECT born FROM q_time;
SET TimeZone = 'Asia/Tokyo';
SET DateStyle = 'German';
SELECT born FROM q_time;
RESET SESSION AUTHORIZATION;
RESET TimeZone;
RESET DateStyle;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT DISTINCT subject FROM health_pass.audit_log WHERE id > :m AND relation = 'q_time'::regclass;
SELECT count(*) AS who_read_finds_both
FROM health_pass.who_read('q_time', health_pass.subject_text('2021-05-01 08:00:00 UTC'::timestamptz));

-- 6. The tracker is sized at server start: a rule that could never fit in
-- it is refused
SELECT health_pass.allow('regress_q_all', 'q_reg', 'bulk',
    current_setting('health_pass.quota_capacity')::int + 1);

-- 6b. A quota period is at most 100 years (longer ones wrapped around: a
-- quota never enforced), and a subject column must print the same in every
-- session (money follows lc_monetary, regclass search_path)
SELECT health_pass.allow('regress_q_all', 'q_reg', 'bulk', 10, '1000000 years');
CREATE TABLE q_money (m money NOT NULL);
SELECT health_pass.protect('q_money', 'm');
CREATE DOMAIN q_rel AS regclass;
CREATE TABLE q_regclass (r q_rel NOT NULL);
SELECT health_pass.protect('q_regclass', 'r');
CREATE TYPE q_pair AS (a int, r regclass);
CREATE TABLE q_nested (p q_pair NOT NULL, ms money[] NOT NULL);
SELECT health_pass.protect('q_nested', 'p');
SELECT health_pass.protect('q_nested', 'ms');
DROP TABLE q_money, q_regclass, q_nested;
DROP TYPE q_pair;
DROP DOMAIN q_rel;

-- 7. Two members read 30 subjects each through a rule of 50: the second
-- stops at its 20th, whoever reads and however the reads are split
SELECT health_pass.allow('regress_q_staff', 'q_reg', 'audit', 50, '1 hour') IS NOT NULL AS allowed;
SELECT q_mark() AS m \gset
SET SESSION AUTHORIZATION regress_q_m1;
SET health_pass.purpose = 'audit';
SELECT count(*) FROM (SELECT person FROM q_reg WHERE id % 2 = 0 LIMIT 30) s;
SET SESSION AUTHORIZATION regress_q_m2;
SET health_pass.purpose = 'audit';
SELECT count(*) FROM (SELECT person FROM q_reg WHERE id % 2 = 1 LIMIT 30) s;
RESET SESSION AUTHORIZATION;
SELECT * FROM q_audited('q_reg', :m);


-- 8. A role in two groups with equal quotas: the rule it reads through is
-- chosen by oid, not by the order the rules happen to load in.  0.7.0's
-- first cut took the first rule loaded, and rewriting the other rule with
-- allow() (an UPDATE moves its row) moved the role to a fresh budget.
SET health_pass.denial_interval = '1h';  -- refusals below: one record, then counted
CREATE ROLE regress_q_g1 NOLOGIN;
CREATE ROLE regress_q_g2 NOLOGIN;
CREATE ROLE regress_q_both LOGIN IN ROLE regress_q_g1, regress_q_g2;
CREATE TABLE q_tie (id int PRIMARY KEY, person text NOT NULL);
INSERT INTO q_tie SELECT i, 'T' || i FROM generate_series(1, 10) i;
GRANT SELECT ON q_tie TO regress_q_g1, regress_q_g2;
SELECT health_pass.protect('q_tie', 'person') IS NOT NULL AS protected;
SELECT health_pass.allow('regress_q_g1', 'q_tie', 'care', 2, '1 hour') IS NOT NULL AS g1,
       health_pass.allow('regress_q_g2', 'q_tie', 'care', 2, '1 hour') IS NOT NULL AS g2;
SET SESSION AUTHORIZATION regress_q_both;
SET health_pass.purpose = 'care';
SELECT count(*) FROM q_tie WHERE id <= 2;
SELECT count(*) FROM q_tie WHERE id = 3;
RESET SESSION AUTHORIZATION;
SELECT health_pass.allow('regress_q_g1', 'q_tie', 'care', 2, '1 hour') IS NOT NULL AS rewritten_g1,
       health_pass.allow('regress_q_g2', 'q_tie', 'care', 2, '1 hour') IS NOT NULL AS rewritten_g2;
SET SESSION AUTHORIZATION regress_q_both;
SET health_pass.purpose = 'care';
SELECT count(*) FROM q_tie WHERE id = 4;      -- still the same rule's budget
-- SET ROLE reads through the other group's rule: its own budget, shared
-- with every member of that group (README: several rules, several budgets)
SET ROLE regress_q_g2;
SELECT count(*) FROM q_tie WHERE id = 5;
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT (SELECT g.rolname FROM pg_roles g WHERE g.oid = split_part(substr(reason, 15), '/', 1)::oid) AS rule_grantee,
       split_part(reason, '/', 2)::oid::regclass AS rule_table, count(*)
FROM health_pass.audit_log WHERE relation = 'q_tie'::regclass AND outcome = 'allowed'
GROUP BY 1, 2 ORDER BY 1;

-- 9. A subject refused inside a PL/pgSQL block that catches the error, then
-- read again in the same statement, is refused again and costs nothing; a
-- subject read before is read again.  (An error other than the quota's at
-- that point, a full tracker, crashed 0.7.0's first cut: test/t/050_quota_restart.pl §8.)
CREATE FUNCTION q_probe(ids int[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE i int; o text := ''; v text;
BEGIN
    FOREACH i IN ARRAY ids LOOP
        BEGIN
            SELECT person INTO v FROM q_tie WHERE id = i;
            o := o || i || ':ok ';
        EXCEPTION WHEN others THEN o := o || i || ':' || SQLSTATE || ' ';
        END;
    END LOOP;
    RETURN o;
END $$;
SET SESSION AUTHORIZATION regress_q_both;
SET health_pass.purpose = 'care';
SELECT q_probe(ARRAY[1, 7, 7, 2, 7]);
RESET SESSION AUTHORIZATION;
SELECT 1 AS still_up;
-- 10. A loop of statements refused by a quota cannot flood the log either,
-- and yet every subject refused is named: a refusal tells the reader that
-- the subject exists (the gate saw its row), so each (table, role, subject)
-- is recorded once per denial_interval, a repeat counted as any denial
-- (T7, refused three times: its record, then one opening the count of the
-- rule's refusals).  Before, the refusals above left one record, of the
-- first subject, and the others were only counted: a reader past its quota
-- probed which subjects exist, unnamed (denials.c)
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT subject, count(*) AS quota_exceeded_records FROM health_pass.audit_log
WHERE relation = 'q_tie'::regclass AND outcome = 'quota_exceeded' GROUP BY 1 ORDER BY 1;
RESET health_pass.denial_interval;

DROP TABLE q_reg, q_float, q_null, q_long, q_time, q_tie;
DROP FUNCTION q_probe(int[]);
DROP ROLE regress_q_m1, regress_q_m2, regress_q_m3, regress_q_admin, regress_q_all, regress_q_both;
DROP OWNED BY regress_q_staff, regress_q_g1, regress_q_g2;
DROP ROLE regress_q_staff, regress_q_g1, regress_q_g2;
