-- Issue 15 §3: the subject index (keyindex.c, docs/design/audit_index.md).
-- who_read() must give the answers of a scan of audit_log, whatever part of
-- the log the index covers: the runs (levels 0 to 2, keys spread over
-- several pages), the tail after the mark (bloom filters), both at once, and
-- blocks a superuser changed.  Randomized with a fixed seed.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
CREATE ROLE regress_ki_clerk LOGIN;
CREATE ROLE regress_ki_auditor LOGIN;
GRANT USAGE ON SCHEMA health_pass TO regress_ki_clerk, regress_ki_auditor;
GRANT SELECT ON health_pass.audit_block, health_pass.audit_log TO regress_ki_auditor;
CREATE TABLE ki_people (person_id text PRIMARY KEY, n int NOT NULL);
INSERT INTO ki_people SELECT 'K' || i, i FROM generate_series(1, 3000) i;
CREATE TABLE ki_other (person_id text PRIMARY KEY);
INSERT INTO ki_other SELECT 'K' || i FROM generate_series(1, 50) i;
GRANT SELECT ON ki_people, ki_other TO regress_ki_clerk;
SELECT health_pass.protect('ki_people', 'person_id');
SELECT health_pass.protect('ki_other', 'person_id');
SELECT health_pass.allow('regress_ki_clerk', 'ki_people', 'care');
SELECT health_pass.allow('regress_ki_clerk', 'ki_other', 'care');

-- the clerk reads the given subjects of one table in one statement
CREATE FUNCTION pg_temp.read(tbl text, ids text[]) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    SET LOCAL ROLE regress_ki_clerk;
    SET LOCAL health_pass.purpose = 'care';
    EXECUTE format('SELECT count(*) FROM public.%I WHERE person_id = ANY ($1)', tbl)
        INTO n USING ids;
    RESET ROLE;
    RESET health_pass.purpose;
    RETURN n;
END $$;
-- until the writer indexed every block and finished its merges
CREATE FUNCTION pg_temp.settle() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE s record;
BEGIN
    PERFORM health_pass.audit_flush();
    FOR i IN 1 .. 600 LOOP
        SELECT * INTO s FROM health_pass.audit_index_status();
        IF s.unindexed = 0 AND NOT s.merging AND
           NOT EXISTS (SELECT FROM health_pass.audit_key_run WHERE live
                       GROUP BY level HAVING count(*) >= 8) THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION 'the subject index did not cover the log in 30 s: % % % %', s,
        (SELECT array_agg(ROW(run, level, first_id, last_id, pairs, pages, live) ORDER BY run) FROM health_pass.audit_key_run),
        (SELECT array_agg(ROW(pid, datname, state, query, wait_event, backend_start)) FROM pg_stat_activity WHERE backend_type LIKE 'health%'),
        (SELECT array_agg(ROW(l.pid, l.mode, l.granted, l.objid)) FROM pg_locks l WHERE l.locktype = 'object');
END $$;
-- rows of who_read() and of a scan of audit_log that differ, over the given
-- subjects (each of ki_people and its relatives)
CREATE FUNCTION pg_temp.differences(subjects text[]) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM unnest(subjects) s(subject),
    LATERAL (
        (SELECT * FROM health_pass.who_read('ki_people', s.subject)
         EXCEPT ALL SELECT * FROM health_pass.audit_log
         WHERE relation = 'ki_people'::regclass AND subject = s.subject)
        UNION ALL
        (SELECT * FROM health_pass.audit_log
         WHERE relation = 'ki_people'::regclass AND subject = s.subject
         EXCEPT ALL SELECT * FROM health_pass.who_read('ki_people', s.subject))) d
$$;
-- from a clean index: earlier tests' edits left runs of their own
SELECT health_pass.audit_reindex();
SELECT pg_temp.settle() AS settled;

-- 1. Rounds of random reads, each flushed and indexed apart, so the log
-- gets level-0 runs, merges into levels 1 and 2, and K1 in more blocks than
-- a page of the index holds
SELECT setseed(0.15);
DO $$
DECLARE ids text[];
BEGIN
    FOR round IN 1 .. 80 LOOP
        FOR stmt IN 1 .. 8 LOOP
            SELECT array_agg('K' || (1 + floor(random() * 3000))::int) INTO ids
            FROM generate_series(1, 1 + floor(random() * 12)::int);
            PERFORM pg_temp.read('ki_people', ids || ARRAY['K1']);
            PERFORM health_pass.audit_flush();
        END LOOP;
        PERFORM pg_temp.read('ki_other', ARRAY['K1', 'K2', 'K' || round]);
        PERFORM pg_temp.settle();
    END LOOP;
END $$;
SELECT pg_temp.settle() AS settled;
SELECT runs > 0 AS has_runs, levels >= 2 AS merged_twice, unindexed AS tail, NOT merging AS idle
FROM health_pass.audit_index_status();
SELECT count(*) > 496 AS k1_in_more_blocks_than_a_page
FROM (SELECT DISTINCT b.min_id FROM health_pass.audit_block b,
      LATERAL health_pass._audit_rows(b.records) r
      WHERE r.relation = 'ki_people'::regclass AND r.subject = 'K1') x;
-- each block's distinct keys are in the index once
SELECT (SELECT sum(pairs) FROM health_pass.audit_key_run WHERE live) =
       (SELECT sum(cardinality(health_pass._audit_keys(records))) FROM health_pass.audit_block)
       AS pairs_match_blocks;

-- the answers: 300 random subjects (some never read), K1 (on many pages)
SET ROLE regress_ki_auditor;
SELECT pg_temp.differences(ARRAY(SELECT 'K' || (1 + floor(random() * 3100))::int
                                 FROM generate_series(1, 300)) || ARRAY['K1', 'K2', 'nobody'])
       AS differences_indexed;
SELECT count(*) AS k1_rows, count(*) = count(DISTINCT id) AS no_duplicates
FROM health_pass.who_read('ki_people', 'K1');
SELECT count(*) AS k1_rows_scan FROM health_pass.audit_log
WHERE relation = 'ki_people'::regclass AND subject = 'K1';
-- newest first
SELECT bool_and(a.id > b.id) AS newest_first
FROM (SELECT id, row_number() OVER () AS n FROM health_pass.who_read('ki_people', 'K1')) a
JOIN (SELECT id, row_number() OVER () AS n FROM health_pass.who_read('ki_people', 'K1')) b
  ON b.n = a.n + 1;
RESET ROLE;

-- 2. Nothing indexed (the whole log is the tail), then half of it: the same
-- answers.  In a transaction rolled back: the writer keeps its index.
BEGIN;
SELECT health_pass.audit_reindex();
SELECT indexed_to, runs FROM health_pass.audit_index_status();
SET LOCAL ROLE regress_ki_auditor;
SELECT pg_temp.differences(ARRAY(SELECT 'K' || (1 + floor(random() * 3100))::int
                                 FROM generate_series(1, 100)) || ARRAY['K1'])
       AS differences_all_tail;
ROLLBACK;
BEGIN;
UPDATE health_pass.audit_key_mark SET mark = (SELECT max_id FROM health_pass.audit_block
    ORDER BY min_id OFFSET (SELECT count(*) / 2 FROM health_pass.audit_block) LIMIT 1);
SET LOCAL ROLE regress_ki_auditor;
SELECT pg_temp.differences(ARRAY(SELECT 'K' || (1 + floor(random() * 3100))::int
                                 FROM generate_series(1, 100)) || ARRAY['K1'])
       AS differences_half_tail;
ROLLBACK;

-- 3. A superuser's changes are indexed at once from the records: a subject
-- edited into a block behind the mark, and a block whose bloom filter is
-- wiped, are found
SELECT min(id) AS edited FROM health_pass.audit_log
WHERE relation = 'ki_people'::regclass AND subject = 'K1' \gset
UPDATE health_pass.audit_log SET subject = 'K-edited' WHERE id = :edited;
SELECT id = :edited AS found_edited FROM health_pass.who_read('ki_people', 'K-edited');
SELECT count(*) FILTER (WHERE id = :edited) AS edited_id_under_old_subject
FROM health_pass.who_read('ki_people', 'K1');
SELECT pg_temp.read('ki_people', ARRAY['K1', 'K4']) AS read_once_more;
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT min_id AS wiped, subjects AS saved_subjects FROM health_pass.audit_block
ORDER BY min_id DESC LIMIT 1 \gset
UPDATE health_pass.audit_block SET subjects = decode(repeat('00', length(subjects)), 'hex')
WHERE min_id = :wiped;
SELECT count(*) FILTER (WHERE health_pass._audit_may_hold(subjects, 'ki_people', 'K4'))
       AS filter_says_k4 FROM health_pass.audit_block WHERE min_id = :wiped;
SELECT pg_temp.settle() AS settled;
SET ROLE regress_ki_auditor;
SELECT count(*) > 0 AS k4_found_in_wiped_block FROM health_pass.who_read('ki_people', 'K4')
WHERE id >= :wiped;
SELECT pg_temp.differences(ARRAY['K1', 'K2', 'K4', 'K-edited']) AS differences_after_edits;
RESET ROLE;
-- put both back: the chain verifies again
UPDATE health_pass.audit_log SET subject = 'K1' WHERE id = :edited;
UPDATE health_pass.audit_block SET subjects = :'saved_subjects' WHERE min_id = :wiped;
SELECT ok FROM health_pass.audit_verify();

-- 3b. Attacks on the mark (review of 0.11.0: each hid reads before the
-- fix).  A rebuild left open while new blocks arrive: the writer's level-0
-- step wrote its run after the rebuild and moved the mark past every block
-- the rebuild had emptied.
BEGIN;
SELECT health_pass.audit_reindex();
SELECT pg_temp.read('ki_people', ARRAY['K5', 'K6']) AS read_during_rebuild;
SELECT pg_sleep(1.5);
COMMIT;
SELECT pg_temp.settle() AS settled;
SET ROLE regress_ki_auditor;
SELECT pg_temp.differences(ARRAY['K1', 'K5', 'K6', 'K7']) AS differences_after_open_rebuild;
RESET ROLE;
-- A block a superuser inserts far ahead of the chain: the mark followed it
-- (a watermark of the highest id), so once it was deleted again every
-- later block was behind the mark and never indexed.
INSERT INTO health_pass.audit_block
SELECT 100000000, 100000000 + max_id - min_id, min_at, max_at, subjects, records
FROM health_pass.audit_block ORDER BY min_id DESC LIMIT 1;
SELECT pg_sleep(1.5);    -- the writer's steps, which left the mark where it was
SELECT unindexed AS forged_block_in_tail FROM health_pass.audit_index_status();
DELETE FROM health_pass.audit_block WHERE min_id = 100000000;
SELECT pg_temp.read('ki_people', ARRAY['K8', 'K9']) AS read_after_forged_block;
SELECT pg_temp.settle() AS settled;
SELECT indexed_to < 100000000 AS mark_not_moved_by_forgery FROM health_pass.audit_index_status();
SET ROLE regress_ki_auditor;
SELECT count(*) AS k8_found FROM health_pass.who_read('ki_people', 'K8');
SELECT pg_temp.differences(ARRAY['K1', 'K8', 'K9']) AS differences_after_forged_block;
RESET ROLE;
SELECT ok FROM health_pass.audit_verify();

-- 4. A rebuild: the writer indexes the whole log again, the same answers
SELECT health_pass.audit_reindex();
SELECT pg_temp.read('ki_people', ARRAY['K3']) AS read_to_wake_the_writer;
SELECT pg_temp.settle() AS settled;
SELECT indexed_to = (SELECT max(max_id) FROM health_pass.audit_block) AS all_indexed
FROM health_pass.audit_index_status();
SELECT (SELECT sum(pairs) FROM health_pass.audit_key_run WHERE live) =
       (SELECT sum(cardinality(health_pass._audit_keys(records))) FROM health_pass.audit_block)
       AS pairs_match_blocks;
SET ROLE regress_ki_auditor;
SELECT pg_temp.differences(ARRAY(SELECT 'K' || (1 + floor(random() * 3100))::int
                                 FROM generate_series(1, 100)) || ARRAY['K1', 'K-edited'])
       AS differences_rebuilt;
RESET ROLE;

-- 5. Privileges: the index is the superuser's; who_read() still needs
-- SELECT on audit_block
SET ROLE regress_ki_clerk;
SELECT * FROM health_pass.who_read('ki_people', 'K1');
SELECT count(*) FROM health_pass.audit_key_page;
SELECT health_pass.audit_reindex();
SELECT * FROM health_pass.audit_index_status();
SELECT health_pass._audit_key_patch('{1}', true);
RESET ROLE;
SET ROLE regress_ki_auditor;
SELECT health_pass.audit_reindex();
RESET ROLE;
GRANT pg_monitor TO regress_ki_clerk;
SET ROLE regress_ki_clerk;
SELECT runs > 0 AS monitor_sees_status FROM health_pass.audit_index_status();
RESET ROLE;
REVOKE pg_monitor FROM regress_ki_clerk;

SELECT health_pass.unprotect('ki_people');
SELECT health_pass.unprotect('ki_other');
DROP TABLE ki_people, ki_other;
DROP OWNED BY regress_ki_clerk, regress_ki_auditor;
DROP ROLE regress_ki_clerk, regress_ki_auditor;
