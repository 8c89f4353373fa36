/* health_pass 0.2.0 -> 0.3.0: a cheaper index for who_read */

\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.3.0'" to load this file. \quit

-- The audit writer adds a record for every subject read.  A btree on
-- (relation, subject, id) cost the writer a random leaf insert per record,
-- about two thirds of its work.  A BRIN index with a bloom filter of the
-- subjects in every 32 heap pages costs it almost nothing (the writer
-- summarizes each range once it is full) and still lets who_read() read only
-- the ranges that may hold a subject.  logged_at rides along as min/max, for
-- questions about a time window.
DROP INDEX health_pass.audit_log_subject_idx;
CREATE INDEX audit_log_read_idx ON health_pass.audit_log USING brin (
    subject pg_catalog.text_bloom_ops (n_distinct_per_range = 1000, false_positive_rate = 0.001),
    logged_at)
    WITH (pages_per_range = 32);
COMMENT ON INDEX health_pass.audit_log_read_idx IS
    'bloom filter of subjects and range of logged_at per 32 heap pages: who_read() and time-window questions read only the ranges that may match';

-- The planner cannot tell how selective a bloom filter is (subjects are not
-- correlated with the heap order), so who_read() asks for the bitmap scan.
CREATE OR REPLACE FUNCTION health_pass.who_read(tbl regclass, subject text)
    RETURNS SETOF health_pass.audit_log
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    SET enable_seqscan = off SET enable_indexscan = off
    SET max_parallel_workers_per_gather = 0 SET jit = off AS $$
    SELECT a.* FROM health_pass.audit_log a
    WHERE a.relation = tbl AND a.subject = who_read.subject
    ORDER BY a.id DESC
$$;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject of one table, newest first';
