-- What forced row security costs the planner's estimates (docs/design/ddl.md).
-- Run as a superuser in a database with health_pass (preloaded):
--   psql -X -f test/bench/estimates.sql
-- Prints, per query, the estimated rows of the top plan node for a reader
-- with SELECT, with the table unprotected and protected, and the true count.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP TABLE IF EXISTS est_big, est_regions, est_visits CASCADE;
DROP ROLE IF EXISTS est_reader;
CREATE ROLE est_reader;
CREATE TABLE est_big (pid text PRIMARY KEY, region int, dose int, city text, seen timestamptz);
INSERT INTO est_big
SELECT 'B' || i, i % 50, (i % 7) / 2,
       CASE WHEN i % 10 = 0 THEN 'berlin' WHEN i % 10 = 1 THEN 'paris' ELSE 'c' || i % 5000 END,
       timestamptz '2021-01-01' + (i % 365) * interval '1 day'
FROM generate_series(1, 200000) i;
CREATE TABLE est_regions (region int PRIMARY KEY, name text);
INSERT INTO est_regions SELECT i, 'r' || i FROM generate_series(0, 49) i;
CREATE TABLE est_visits (pid text, at date);
INSERT INTO est_visits SELECT 'B' || (i * 37 % 200000 + 1), date '2022-01-01' + i % 30 FROM generate_series(1, 2000) i;
CREATE INDEX ON est_big (city text_pattern_ops);
CREATE INDEX ON est_big (region);
ANALYZE est_big, est_regions, est_visits;
GRANT SELECT ON est_big, est_regions, est_visits TO est_reader;

CREATE OR REPLACE FUNCTION pg_temp.est(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO p;
    RETURN (p -> 0 -> 'Plan' ->> 'Node Type') || ' ' || (p -> 0 -> 'Plan' ->> 'Plan Rows');
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.est(text) TO est_reader;
CREATE TEMP TABLE q (n int, q text, actual bigint, unprotected text, protected text);
GRANT ALL ON q TO est_reader;
INSERT INTO q (n, q) VALUES
 (1, 'SELECT * FROM est_big WHERE pid = ''B42'''),
 (2, 'SELECT * FROM est_big WHERE city = ''berlin'''),
 (3, 'SELECT * FROM est_big WHERE city = ''c17'''),
 (4, 'SELECT * FROM est_big WHERE region < 10'),
 (5, 'SELECT * FROM est_big WHERE dose IN (0, 3)'),
 (6, 'SELECT * FROM est_big WHERE seen >= ''2021-12-01'''),
 (7, 'SELECT * FROM est_big WHERE city > ''p'''),
 (8, 'SELECT * FROM est_big WHERE city LIKE ''c1%'''),
 (9, 'SELECT * FROM est_big WHERE city ILIKE ''BER%'''),
 (10, 'SELECT * FROM est_big WHERE dose <> 1'),
 (11, 'SELECT region, count(*) FROM est_big GROUP BY region'),
 (12, 'SELECT city, count(*) FROM est_big GROUP BY city'),
 (13, 'SELECT * FROM est_big b JOIN est_regions r USING (region) WHERE r.name = ''r7'''),
 (14, 'SELECT * FROM est_visits v JOIN est_big b USING (pid)'),
 (15, 'SELECT * FROM est_big b WHERE b.pid IN (SELECT pid FROM est_visits WHERE at = ''2022-01-05'')'),
 (16, 'SELECT * FROM est_big WHERE city LIKE ''c17%'''),
 (17, 'SELECT * FROM est_big WHERE region = 7 AND city ILIKE ''%9''');
UPDATE q SET actual = (SELECT count(*) FROM (SELECT 1) x);
DO $$
DECLARE r record; c bigint;
BEGIN
    FOR r IN SELECT * FROM q LOOP
        EXECUTE 'SELECT count(*) FROM (' || r.q || ') s' INTO c;
        UPDATE q SET actual = c WHERE n = r.n;
    END LOOP;
END $$;
SET ROLE est_reader;
UPDATE q SET unprotected = pg_temp.est(q.q);
RESET ROLE;
SELECT health_pass.protect('est_big', 'pid');
SELECT health_pass.allow('est_reader', 'est_big', 'care');
SET ROLE est_reader;
UPDATE q SET protected = pg_temp.est(q.q);
RESET ROLE;
\pset format aligned
SELECT n, q, actual, unprotected, protected FROM q ORDER BY n;
-- the same with the subject column's statistics given back (a superuser's
-- choice, README): only row security is left
ALTER TABLE est_big ALTER COLUMN pid SET STATISTICS -1;
ANALYZE est_big;
SET ROLE est_reader;
UPDATE q SET protected = pg_temp.est(q.q);
RESET ROLE;
SELECT n, protected AS protected_with_subject_statistics FROM q WHERE n IN (1, 14, 15) ORDER BY n;
SELECT health_pass.unprotect('est_big');
DROP TABLE est_big, est_regions, est_visits;
DROP OWNED BY est_reader;
DROP ROLE est_reader;
