-- The pass type: I/O round trips, equality, btree and hash opclasses
CREATE EXTENSION IF NOT EXISTS health_pass;
\i test/fixtures/load.sql

-- text output decodes to the same COSE bytes (the value round-trips)
SELECT name, txt::health_pass.pass::text::health_pass.pass = txt::health_pass.pass AS round_trip
  FROM fx_pass ORDER BY name LIMIT 5;
SELECT count(*) AS all_round_trip FROM fx_pass
 WHERE txt::health_pass.pass::text::health_pass.pass = txt::health_pass.pass;
-- output is an HC1: string
SELECT left((SELECT txt FROM fx_pass WHERE name = 'ok_vacc')::health_pass.pass::text, 4) AS prefix;

-- a table of passes: UNIQUE, DISTINCT, hash join, merge join, ordering
CREATE TABLE t (id int, p health_pass.pass UNIQUE);
INSERT INTO t SELECT row_number() OVER (ORDER BY name), txt::health_pass.pass FROM fx_pass;
INSERT INTO t VALUES (100, (SELECT txt FROM fx_pass WHERE name = 'ok_vacc')::health_pass.pass);  -- duplicate
SELECT count(DISTINCT p) = count(*) AS distinct_ok FROM t;
SET enable_mergejoin = off; SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM t a JOIN t b ON a.p = b.p;
SELECT count(*) AS hash_join FROM t a JOIN t b ON a.p = b.p;
RESET enable_mergejoin; SET enable_hashjoin = off;
SELECT count(*) AS merge_join FROM t a JOIN t b ON a.p = b.p;
RESET enable_hashjoin; RESET enable_nestloop;
SELECT count(*) AS ordered FROM (SELECT p, lag(p) OVER (ORDER BY p) AS prev FROM t) s
 WHERE prev IS NULL OR prev < p;
SELECT a.p <> b.p AS ne, a.p < b.p OR a.p > b.p AS ordered_pair, a.p <= a.p AS le, a.p >= a.p AS ge
  FROM t a, t b WHERE a.id = 1 AND b.id = 2;
CREATE INDEX ON t USING hash (p);
SET enable_seqscan = off;
SELECT id FROM t WHERE p = (SELECT txt FROM fx_pass WHERE name = 'ok_vacc')::health_pass.pass;
RESET enable_seqscan;

-- binary send/recv round trip through COPY BINARY
COPY t TO '/tmp/health_pass_regress.bin' WITH (FORMAT binary);
CREATE TABLE t2 (LIKE t);
COPY t2 FROM '/tmp/health_pass_regress.bin' WITH (FORMAT binary);
SELECT count(*) AS binary_round_trip FROM t JOIN t2 USING (id) WHERE t.p = t2.p;
DROP TABLE t, t2;
