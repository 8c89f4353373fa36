-- The read gate on every path (issue 11): statement and cursor state that
-- outlives the query that made it, quals and projections that are not
-- leakproof, break glass and savepoints, superusers audited.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
-- every refusal recorded, whatever the time between statements (counting
-- repeated refusals: test/sql/denials.sql, test/sql/quota.sql §10)
SET health_pass.denial_interval = 0;

CREATE ROLE regress_gate_quota LOGIN;     -- may read 10 subjects an hour
CREATE ROLE regress_gate_none LOGIN;      -- no rule
CREATE ROLE regress_gate_all LOGIN;       -- no quota
CREATE ROLE regress_gate_small LOGIN;     -- may read 3 subjects an hour
GRANT USAGE ON SCHEMA health_pass TO regress_gate_quota, regress_gate_none, regress_gate_all, regress_gate_small;
CREATE TABLE gate_reg (id int PRIMARY KEY, person text NOT NULL, note text);
INSERT INTO gate_reg SELECT i, 'G' || i, 'note ' || i FROM generate_series(1, 2000) i;
CREATE TABLE gate_reg2 (id int PRIMARY KEY, person text NOT NULL, note text);
INSERT INTO gate_reg2 SELECT i, 'H' || i, 'other ' || i FROM generate_series(1, 300) i;
ANALYZE gate_reg, gate_reg2;
GRANT SELECT ON gate_reg, gate_reg2 TO regress_gate_quota, regress_gate_none, regress_gate_all, regress_gate_small;
SELECT health_pass.protect('gate_reg', 'person'), health_pass.protect('gate_reg2', 'person');
SELECT health_pass.allow('regress_gate_quota', 'gate_reg', 'care', 10, '1 hour'),
       health_pass.allow('regress_gate_small', 'gate_reg', 'care', 3, '1 hour'),
       health_pass.allow('regress_gate_all', 'gate_reg', 'care'),
       health_pass.allow('regress_gate_all', 'gate_reg2', 'care');

-- a leaky function: it tells the client every value it is given
CREATE FUNCTION leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
$$ BEGIN RAISE NOTICE 'leak: %', $1; RETURN true; END $$;
CREATE OPERATOR === (LEFTARG = text, RIGHTARG = text, FUNCTION = texteq);
CREATE FUNCTION leaky_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN RAISE NOTICE 'leaky_eq: %', $1; RETURN $1 = $2; END $$;
CREATE OPERATOR ~~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = leaky_eq);
GRANT EXECUTE ON FUNCTION leak(text), leaky_eq(text, text) TO PUBLIC;

-- distinct subjects of gate_reg audited for a role since mark
CREATE FUNCTION gate_audited(role name, mark bigint) RETURNS TABLE (outcome text, records bigint, subjects bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN QUERY SELECT a.outcome, count(*), count(DISTINCT a.subject) FROM health_pass.audit_log a
    WHERE a.id > mark AND a.current_user_name = role GROUP BY a.outcome ORDER BY a.outcome;
END $$;
CREATE FUNCTION gate_mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM health_pass.audit_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM health_pass.audit_log);
END $$;
GRANT EXECUTE ON FUNCTION gate_audited(name, bigint), gate_mark() TO PUBLIC;

-- 1. state that outlives its statement: no crash, still gated
-- a cursor returned by a function, fetched after the statement that opened
-- it ended and its memory was reused
CREATE FUNCTION opencur() RETURNS refcursor LANGUAGE plpgsql AS
$$ DECLARE c refcursor := 'c'; BEGIN OPEN c FOR SELECT person FROM gate_reg ORDER BY id; RETURN c; END $$;
GRANT EXECUTE ON FUNCTION opencur() TO PUBLIC;
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_all;
SET health_pass.purpose = 'care';
BEGIN;
SELECT opencur();
SELECT count(*) FROM (SELECT repeat('x', 100000) FROM generate_series(1, 50)) s;
FETCH 5 FROM c;
SELECT count(*) FROM (SELECT repeat('y', 100000) FROM generate_series(1, 50)) s;
FETCH 2 FROM c;
COMMIT;
RESET ROLE;
SELECT * FROM gate_audited('regress_gate_all', :m);

-- the same cursor as a role with no rule: still empty, one denial
SET ROLE regress_gate_none;
SET health_pass.purpose = 'care';
BEGIN;
SELECT opencur();
SELECT count(*) FROM (SELECT repeat('x', 100000) FROM generate_series(1, 50)) s;
FETCH 5 FROM c;
COMMIT;
RESET ROLE;
SELECT * FROM gate_audited('regress_gate_none', :m);

-- cursors closed out of order, and opened again
SET ROLE regress_gate_all;
BEGIN;
DECLARE c1 CURSOR FOR SELECT id FROM gate_reg;
DECLARE c2 CURSOR FOR SELECT id FROM gate_reg;
CLOSE c1;
DECLARE c3 CURSOR FOR SELECT id FROM gate_reg;
DECLARE c4 CURSOR FOR SELECT id FROM gate_reg;
FETCH 1 FROM c2; FETCH 1 FROM c3; FETCH 1 FROM c4;
CLOSE c3;
FETCH 1 FROM c2; FETCH 1 FROM c4;
COMMIT;
RESET ROLE;

-- a function that reads two protected tables, called for 200 rows
CREATE FUNCTION two_tables(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a text; b text;
BEGIN
    SELECT person INTO a FROM gate_reg WHERE id = i;
    SELECT person INTO b FROM gate_reg2 WHERE id = i;
    RETURN a || b;
END $$;
GRANT EXECUTE ON FUNCTION two_tables(int) TO PUBLIC;
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_all;
SELECT count(DISTINCT two_tables(i)) FROM generate_series(1, 200) i;
-- an error between wrapping and gating (a row the quota refuses) leaves
-- nothing behind that a later statement trips over
SET ROLE regress_gate_small;
SELECT count(*) FROM gate_reg;
SELECT count(*) FROM gate_reg;
SET ROLE regress_gate_all;
SELECT count(DISTINCT two_tables(i)) FROM generate_series(1, 200) i;
-- a read that fails inside an exception block, per row: the block's
-- executor state is freed with its subtransaction, the statement goes on
RESET ROLE;
CREATE FUNCTION fail_inside(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a text;
BEGIN
    BEGIN
        SELECT person INTO STRICT a FROM gate_reg WHERE id BETWEEN i AND i + 1;
    EXCEPTION WHEN too_many_rows THEN a := 'two';
    END;
    RETURN a;
END $$;
GRANT EXECUTE ON FUNCTION fail_inside(int) TO PUBLIC;
SET ROLE regress_gate_all;
SELECT count(*) FILTER (WHERE fail_inside(i) = 'two') AS caught FROM generate_series(1, 50) i;
-- a cursor WITH HOLD outlives its transaction; a scroll cursor goes back
BEGIN;
DECLARE h CURSOR WITH HOLD FOR SELECT person FROM gate_reg WHERE id BETWEEN 501 AND 503;
DECLARE s SCROLL CURSOR FOR SELECT person FROM gate_reg WHERE id BETWEEN 601 AND 603;
FETCH 3 FROM s; FETCH BACKWARD 2 FROM s;
COMMIT;
FETCH ALL FROM h;
CLOSE h;
RESET ROLE;
SELECT * FROM gate_audited('regress_gate_all', :m);

-- 2. only leakproof code sees a row before the gate
-- a role with no rule: a leaky WHERE sees nothing, the cast that would
-- print a value never runs, session state stays untouched
SET health_pass.purpose = 'care';
SET ROLE regress_gate_none;
SELECT count(*) FROM gate_reg WHERE leak(person);
SELECT count(*) FROM gate_reg WHERE person ~~~ 'G1';
SELECT count(*) FROM gate_reg WHERE note::int > 0;
SELECT count(*) FROM gate_reg WHERE set_config('gate.last', person, false) IS NOT NULL;
SELECT current_setting('gate.last', true) AS last_seen;
-- EXPLAIN ANALYZE counts no row the gate hid
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM gate_reg WHERE leak(person);
RESET ROLE;

-- a role with a quota of 10: the leaky function sees exactly the 10 rows
-- the gate admitted (audited), then the 11th fails before it sees it (an
-- index condition on id chooses the rows, before the gate)
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_quota;
SELECT count(*) FROM gate_reg WHERE id BETWEEN 101 AND 130 AND leak(person);
-- the projection, too, sees no row past the quota
SELECT leak(person) FROM gate_reg WHERE id > 200 ORDER BY id;
-- the same subjects again are free: the index condition runs first
SELECT count(*) FROM gate_reg WHERE id BETWEEN 101 AND 110 AND leak(person);
RESET ROLE;
SELECT * FROM gate_audited('regress_gate_quota', :m);

-- leakproof conditions still run before the gate: a point lookup by id
-- keeps its index scan and audits one subject
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_all;
EXPLAIN (COSTS OFF) SELECT note FROM gate_reg WHERE id = 42 AND leak(note);
SELECT note FROM gate_reg WHERE id = 42 AND leak(note);
SELECT count(*) FROM gate_reg WHERE person = 'G7';
RESET ROLE;
SELECT * FROM gate_audited('regress_gate_all', :m);
-- EXPLAIN ANALYZE counts as removed only rows the gate saw: not the one
-- row the leakproof person <> 'G3' (on the subject alone) removed before
-- it, but the 5 the other conditions removed after it
SET ROLE regress_gate_all;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM gate_reg WHERE id <= 10 AND person <> 'G3' AND (id > 6 OR NOT leak(person));
-- a leakproof condition on another column runs after the gate: a row it
-- rejects was read, so it is audited (else WHERE person = 'G5' AND note <>
-- 'note 5' returning nothing would tell G5's note, with no record of G5)
RESET ROLE;
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_all;
SELECT count(*) FROM gate_reg WHERE person = 'G1500' AND note <> 'note 1500';
RESET ROLE;
SELECT * FROM gate_audited('regress_gate_all', :m);
SET ROLE regress_gate_all;
RESET ROLE;

-- an index condition runs before the gate too, so an index may serve a
-- protected table only through leakproof operators: numeric and jsonb
-- comparisons are not, and become filters after the gate
CREATE TABLE gate_num (amount numeric PRIMARY KEY, person text NOT NULL, doc jsonb);
INSERT INTO gate_num SELECT i, 'N' || i, jsonb_build_object('k', i) FROM generate_series(1, 2000) i;
CREATE INDEX ON gate_num USING gin (doc);
ANALYZE gate_num;
EXPLAIN (COSTS OFF) SELECT person FROM gate_num WHERE amount = 5;
EXPLAIN (COSTS OFF) SELECT person FROM gate_num WHERE doc @> '{"k": 5}';
SELECT health_pass.protect('gate_num', 'person');
EXPLAIN (COSTS OFF) SELECT person FROM gate_num WHERE amount = 5;
EXPLAIN (COSTS OFF) SELECT person FROM gate_num WHERE doc @> '{"k": 5}';
-- a leakproof condition on another index still gets its index scan
CREATE INDEX ON gate_num (person);
EXPLAIN (COSTS OFF) SELECT person FROM gate_num WHERE amount = 5 AND person = 'N5';
DROP TABLE gate_num;

-- 3. break glass follows subtransactions
GRANT EXECUTE ON FUNCTION health_pass.break_glass(text) TO regress_gate_none;
SET ROLE regress_gate_none;
BEGIN;
SAVEPOINT s;
SELECT health_pass.break_glass('testing a rollback');
SELECT count(*) FROM gate_reg WHERE id <= 2;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM gate_reg WHERE id <= 2;
SAVEPOINT t;
SELECT health_pass.break_glass('kept after release');
RELEASE SAVEPOINT t;
SELECT count(*) FROM gate_reg WHERE id <= 2;
COMMIT;
SELECT count(*) FROM gate_reg WHERE id <= 2;
-- inside a function's exception block, too
BEGIN;
DO $$ BEGIN
    PERFORM health_pass.break_glass('in a block that fails');
    RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN NULL;
END $$;
SELECT count(*) FROM gate_reg WHERE id <= 2;
COMMIT;
RESET ROLE;

-- 4. superusers and BYPASSRLS roles are audited, not gated
CREATE ROLE regress_gate_bypass LOGIN BYPASSRLS;
GRANT SELECT ON gate_reg TO regress_gate_bypass;
SELECT gate_mark() AS m \gset
SELECT count(*) FROM gate_reg WHERE id <= 3;
SET ROLE regress_gate_bypass;
SELECT count(*) FROM gate_reg WHERE id <= 4;
RESET ROLE;
SELECT * FROM gate_audited(current_user, :m);
SELECT * FROM gate_audited('regress_gate_bypass', :m);
-- COPY of the whole table by a superuser: every subject found by who_read
SELECT gate_mark() AS m \gset
COPY gate_reg TO '/dev/null';
SELECT * FROM gate_audited(current_user, :m);
SELECT count(*) FROM health_pass.who_read('gate_reg', 'G1999') WHERE outcome = 'superuser' AND id > :m;
-- only a superuser may switch it off; doing so leaves a record per
-- statement and table instead of one per subject
SET ROLE regress_gate_bypass;
SET health_pass.audit_superusers = off;
RESET ROLE;
SELECT gate_mark() AS m \gset
SET health_pass.audit_superusers = off;
SELECT count(*) FROM gate_reg;
RESET health_pass.audit_superusers;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT outcome, subject, reason FROM health_pass.audit_log WHERE id > :m ORDER BY id;
-- off for the whole database: a RESET ALL, which any role may run, changes
-- nothing and leaves no record (0.7.0's first cut recorded every one: a
-- loop of them flooded the log at 32,000 records a second)
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET health_pass.audit_superusers = off;
\c
SET health_pass.denial_interval = 0;
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_none;
RESET ALL;
RESET ALL;
RESET ALL;
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT count(*) AS records_of_reset_all FROM health_pass.audit_log WHERE id > :m;
ALTER DATABASE :"db" RESET health_pass.audit_superusers;
\c
SET health_pass.denial_interval = 0;

-- 5. counts over rows the gate never saw: EXPLAIN and the statistics views

-- EXPLAIN ANALYZE under enable_* settings that force a bitmap scan: the
-- bitmap index scan under it (an index condition on another column, run
-- before the gate) counted every row of flag = 1 and the heap blocks
-- holding them, though the leakproof person = 'B3' on the subject let the
-- gate see none: 667 rows told, no record.  Now neither count is shown.
CREATE TABLE gate_bm (id int, person text NOT NULL, flag int);
INSERT INTO gate_bm SELECT i, 'B' || i, i % 3 FROM generate_series(1, 2000) i;
CREATE INDEX ON gate_bm (flag);
ANALYZE gate_bm;
GRANT SELECT ON gate_bm TO regress_gate_all;
SELECT health_pass.protect('gate_bm', 'person');
SELECT health_pass.allow('regress_gate_all', 'gate_bm', 'care');
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_all;
SET health_pass.purpose = 'care';
SET enable_seqscan = off; SET enable_indexscan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM gate_bm WHERE flag = 1 AND person = 'B3';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT id FROM gate_bm WHERE flag = 1 AND person = 'B4';
RESET enable_seqscan; RESET enable_indexscan;
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT subject, outcome FROM health_pass.audit_log WHERE id > :m AND relation = 'gate_bm'::regclass ORDER BY id;

-- The statistics a scan keeps, which every role may read: the cumulative
-- statistics views (pg_stat_xact_user_tables at once, pg_stat_user_tables,
-- pg_stat_user_indexes and pg_statio_user_tables once flushed) and the
-- buffers of EXPLAIN (ANALYZE, BUFFERS).  They counted every row and page a
-- scan read before the gate: with the index condition flag = 1 and the
-- leakproof person = 'B3' that no row of flag = 1 meets, idx_tup_fetch told
-- 667 (how many rows have flag = 1), with no record, no quota spent.  Now a
-- protected table's counters move by at most one for each row the gate saw.
CREATE FUNCTION gate_stat_counts(OUT seq_tup_read bigint, OUT idx_tup_fetch bigint,
    OUT idx_tup_read bigint, OUT idx_fetch bigint, OUT blocks bigint)
LANGUAGE sql AS $$
SELECT t.seq_tup_read, t.idx_tup_fetch, i.idx_tup_read, i.idx_tup_fetch,
       s.heap_blks_read + s.heap_blks_hit + s.idx_blks_read + s.idx_blks_hit
  FROM pg_stat_user_tables t, pg_stat_user_indexes i, pg_statio_user_tables s
 WHERE t.relid = 'gate_bm'::regclass AND i.indexrelid = 'gate_bm_flag_idx'::regclass
   AND s.relid = 'gate_bm'::regclass $$;
-- shared blocks hit or read by a query's plan, as EXPLAIN (ANALYZE, BUFFERS) shows them
CREATE FUNCTION gate_plan_blocks(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO j;
    RETURN (SELECT sum((n ->> 'Shared Hit Blocks')::bigint + (n ->> 'Shared Read Blocks')::bigint)
              FROM jsonb_path_query(j::jsonb, 'strict $.**.Plan') AS p(n));
END $$;
GRANT EXECUTE ON FUNCTION gate_stat_counts(), gate_plan_blocks(text) TO regress_gate_all;
SELECT pg_stat_force_next_flush();
SELECT * FROM gate_stat_counts() \gset before_
SELECT gate_mark() AS m \gset
SET ROLE regress_gate_all;
SET health_pass.purpose = 'care';
BEGIN;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
SELECT id FROM gate_bm WHERE flag = 1 AND person = 'B3';      -- an index scan
SELECT seq_scan, seq_tup_read, idx_scan, idx_tup_fetch
  FROM pg_stat_xact_user_tables WHERE relid = 'gate_bm'::regclass;
SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = on;
SELECT id FROM gate_bm WHERE flag = 2 AND person = 'B3';      -- a bitmap scan
SELECT seq_scan, seq_tup_read, idx_scan, idx_tup_fetch
  FROM pg_stat_xact_user_tables WHERE relid = 'gate_bm'::regclass;
SELECT gate_plan_blocks($$SELECT id FROM gate_bm WHERE flag = 2 AND person = 'B3'$$) AS bitmap_blocks;
SET LOCAL enable_seqscan = on; SET LOCAL enable_bitmapscan = off;
SELECT id FROM gate_bm WHERE person = 'B3' AND id > 0;         -- a sequential scan: one row
SELECT seq_scan, seq_tup_read, idx_scan, idx_tup_fetch
  FROM pg_stat_xact_user_tables WHERE relid = 'gate_bm'::regclass;
SELECT gate_plan_blocks($$SELECT id FROM gate_bm WHERE person = 'B4' AND id > 0$$) <= 1 AS seq_blocks_at_most_one;
COMMIT;
-- SSI: a serializable transaction's predicate locks, which pg_locks shows
-- to every role, named every tuple the index scan read before the gate
-- (here promoted to their 11 heap pages and 2 index pages); now the table
-- and the index are locked whole
BEGIN ISOLATION LEVEL SERIALIZABLE;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
SELECT id FROM gate_bm WHERE flag = 1 AND person = 'B3';
SELECT relation::regclass, locktype, count(*) FROM pg_locks
 WHERE pid = pg_backend_pid() AND mode = 'SIReadLock' GROUP BY 1, 2 ORDER BY 1, 2;
COMMIT;
-- a gated scan that never runs (the inner side of a join with an empty
-- outer side) reads nothing and takes no lock: the relation locks are taken
-- at its first call, not when the plan starts (they were, and made
-- serializable transactions fail that read nothing of the table)
RESET ROLE;
CREATE TABLE gate_none (flag int);
GRANT SELECT ON gate_none TO regress_gate_all;
SET ROLE regress_gate_all;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
SELECT b.id FROM gate_none n JOIN gate_bm b ON b.flag = n.flag;
SELECT relation::regclass, locktype, count(*) FROM pg_locks
 WHERE pid = pg_backend_pid() AND mode = 'SIReadLock' AND relation <> 'gate_none'::regclass
 GROUP BY 1, 2 ORDER BY 1, 2;
COMMIT;
RESET ROLE;
DROP TABLE gate_none;
SET ROLE regress_gate_all;
SET health_pass.purpose = 'care';
RESET ROLE;
-- the planner's probe of an index's actual last value: rows added since
-- ANALYZE (ids 1001 to 1500), past the histogram, made the estimate of
-- id > 1200 differ from that of id > 2000, so a reader could bisect the
-- live maximum of id from EXPLAIN; now both rest on the histogram
CREATE TABLE gate_range (id int, person text NOT NULL);
INSERT INTO gate_range SELECT i, 'R' || i FROM generate_series(1, 1000) i;
CREATE INDEX ON gate_range (id);
ANALYZE gate_range;
INSERT INTO gate_range SELECT i, 'R' || i FROM generate_series(1001, 1500) i;
GRANT SELECT ON gate_range TO regress_gate_all;
SELECT health_pass.protect('gate_range', 'person');
SELECT health_pass.allow('regress_gate_all', 'gate_range', 'care');
CREATE FUNCTION gate_estimate(n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT id FROM gate_range WHERE id > %s', n) INTO j;
    RETURN (j -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END $$;
GRANT EXECUTE ON FUNCTION gate_estimate(int) TO regress_gate_all;
SET ROLE regress_gate_all;
SET health_pass.purpose = 'care';
SELECT gate_estimate(1200) = gate_estimate(2000) AS estimate_tells_nothing;
RESET ROLE;
DROP FUNCTION gate_estimate(int);
DROP TABLE gate_range;
SET ROLE regress_gate_all;
SET health_pass.purpose = 'care';
SELECT pg_stat_force_next_flush();
RESET ROLE;
SELECT s.seq_tup_read - :before_seq_tup_read AS seq_tup_read,
       s.idx_tup_fetch - :before_idx_tup_fetch AS idx_tup_fetch,
       s.idx_tup_read - :before_idx_tup_read AS index_idx_tup_read,
       s.idx_fetch - :before_idx_fetch AS index_idx_tup_fetch,
       s.blocks - :before_blocks <= 4 AS blocks_at_most_rows_seen
  FROM gate_stat_counts() s;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT subject, outcome FROM health_pass.audit_log WHERE id > :m AND relation = 'gate_bm'::regclass ORDER BY id;
-- and a leakproof qual on a long subject: the values it fetched from the
-- TOAST table were counted there (pg_stat_xact_all_tables: 3 scans and 6
-- chunks, for the rows of flag = 1 whose subject has the length compared)
CREATE TABLE gate_toast (id int, person text NOT NULL, flag int);
ALTER TABLE gate_toast ALTER person SET STORAGE EXTERNAL;
INSERT INTO gate_toast SELECT i, repeat('p', 3000) || i, i % 3 FROM generate_series(1, 300) i;
CREATE INDEX ON gate_toast (flag);
ANALYZE gate_toast;
GRANT SELECT ON gate_toast TO regress_gate_all;
SELECT health_pass.protect('gate_toast', 'person');
SELECT health_pass.allow('regress_gate_all', 'gate_toast', 'care');
SELECT pg_stat_force_next_flush();
SET ROLE regress_gate_all;
SET health_pass.purpose = 'care';
BEGIN;
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
SELECT id FROM gate_toast WHERE flag = 1 AND person = repeat('p', 3000) || '3';
SELECT sum(idx_scan) AS toast_idx_scan, sum(idx_tup_fetch) AS toast_idx_tup_fetch
  FROM pg_stat_xact_all_tables t JOIN pg_class c ON c.reltoastrelid = t.relid
 WHERE c.oid = 'gate_toast'::regclass;
COMMIT;
RESET ROLE;
DROP TABLE gate_toast;
DROP FUNCTION gate_stat_counts(), gate_plan_blocks(text);
DROP TABLE gate_bm;

-- the server survived all of it
SELECT 1 AS alive;

DROP TABLE gate_reg, gate_reg2;
DROP FUNCTION two_tables(int), fail_inside(int), opencur(), gate_audited(name, bigint), gate_mark();
DROP OPERATOR ~~~ (text, text); DROP OPERATOR === (text, text);
DROP FUNCTION leak(text), leaky_eq(text, text);
DELETE FROM health_pass.access_rule WHERE grantee::text LIKE 'regress_gate%';
REVOKE ALL ON SCHEMA health_pass FROM regress_gate_quota, regress_gate_none, regress_gate_all, regress_gate_small;
REVOKE EXECUTE ON FUNCTION health_pass.break_glass(text) FROM regress_gate_none;
DROP ROLE regress_gate_quota, regress_gate_none, regress_gate_all, regress_gate_small, regress_gate_bypass;
