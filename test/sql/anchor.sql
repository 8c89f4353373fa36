-- Issue 15 §3-5: the subject index who_read() uses, checkpoints that make
-- audit_verify() incremental, and retention (audit_archive).  The attacks
-- on the anchors come first in each part: before the chain had to name
-- every anchor, a checkpoint or archive anchor inserted into audit_anchor by
-- a superuser made audit_verify() skip altered or deleted records.
-- Runs last: it archives the log the other tests wrote.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
CREATE ROLE regress_an_clerk LOGIN;
CREATE ROLE regress_an_auditor LOGIN;
GRANT USAGE ON SCHEMA health_pass TO regress_an_clerk, regress_an_auditor;
GRANT SELECT ON health_pass.audit_block, health_pass.audit_log TO regress_an_auditor;
CREATE TABLE an_people (person_id text, region int) PARTITION BY LIST (region);
CREATE TABLE an_people_1 PARTITION OF an_people FOR VALUES IN (1);
CREATE TABLE an_people_2 PARTITION OF an_people FOR VALUES IN (2);
INSERT INTO an_people SELECT 'A' || i, 1 + i % 2 FROM generate_series(1, 600) i;
GRANT SELECT ON an_people TO regress_an_clerk;
SELECT health_pass.protect('an_people', 'person_id');
SELECT health_pass.allow('regress_an_clerk', 'an_people', 'care');
CREATE FUNCTION pg_temp.read_all() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    SET LOCAL ROLE regress_an_clerk;
    SET LOCAL health_pass.purpose = 'care';
    SELECT count(*) INTO n FROM public.an_people;
    RETURN n;
END $$;
SELECT pg_temp.read_all();
SELECT pg_temp.read_all();
SELECT health_pass.audit_flush() > 0 AS flushed;

-- 1. The subject index: one key per distinct (relation, subject) of a
-- block, computed from its records; who_read() asks it, through the
-- partitions, and answers as a scan of audit_log does
SELECT bool_and(cardinality(health_pass._audit_keys(records)) =
                (SELECT count(DISTINCT (r.relation, r.subject)) FROM health_pass._audit_rows(b.records) r
                 WHERE r.subject IS NOT NULL)) AS one_key_per_pair
FROM health_pass.audit_block b;
SELECT health_pass._audit_keys('\x4842010203') AS damaged_block_key;
SET ROLE regress_an_auditor;
SELECT relation, subject, outcome, purpose FROM health_pass.who_read('an_people', 'A7');
SELECT count(*) AS differences FROM (
    (SELECT * FROM health_pass.who_read('an_people', 'A8')
     EXCEPT ALL SELECT * FROM health_pass.audit_log
     WHERE relation IN ('an_people', 'an_people_1', 'an_people_2') AND subject = 'A8')
    UNION ALL
    (SELECT * FROM health_pass.audit_log
     WHERE relation IN ('an_people', 'an_people_1', 'an_people_2') AND subject = 'A8'
     EXCEPT ALL SELECT * FROM health_pass.who_read('an_people', 'A8'))) d;
SELECT count(*) FROM health_pass.who_read('an_people_1', 'A8');
SELECT count(*) FROM health_pass.who_read('an_people', 'nobody');
-- newest first
SELECT bool_and(a.id > b.id) AS newest_first
FROM (SELECT id, row_number() OVER () AS n FROM health_pass.who_read('an_people', 'A8')) a
JOIN (SELECT id, row_number() OVER () AS n FROM health_pass.who_read('an_people', 'A8')) b
  ON b.n = a.n + 1;
RESET ROLE;

-- 2. Checkpoints.  Only a superuser sets one, even with EXECUTE granted,
-- and nobody else writes audit_anchor
SET ROLE regress_an_auditor;
SELECT health_pass.audit_checkpoint();
INSERT INTO health_pass.audit_anchor (id, hash, kind) VALUES (1, '\x00', 'verified');
RESET ROLE;
GRANT EXECUTE ON FUNCTION health_pass.audit_checkpoint() TO regress_an_auditor;
GRANT INSERT ON health_pass.audit_anchor TO regress_an_auditor;
SET ROLE regress_an_auditor;
SELECT health_pass.audit_checkpoint();
INSERT INTO health_pass.audit_anchor (id, hash, kind)
    VALUES (1, decode(repeat('00', 32), 'hex'), 'verified');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION health_pass.audit_checkpoint() FROM regress_an_auditor;
REVOKE INSERT ON health_pass.audit_anchor FROM regress_an_auditor;

SELECT ok, why FROM health_pass.audit_verify();
-- the caller's search_path: the walk's query named its operators bare, so
-- an =(bigint, integer) the auditor planted in a schema of his before
-- pg_catalog made audit_verify() read no block at all: an altered record
-- unseen and the log "sound" where the writer's head was not consulted
-- (REPEATABLE READ, before 0.12.0 read the head only in READ COMMITTED:
-- test/t/111_session_settings.pl), "records missing at the end" where it
-- was; and in a
-- superuser's audit_checkpoint() or audit_archive() it ran as the superuser
SELECT max(max_id) - 3 AS altered FROM health_pass.audit_block \gset
SELECT min_id AS altblk, records AS altrecords FROM health_pass.audit_block
WHERE :altered BETWEEN min_id AND max_id \gset
UPDATE health_pass.audit_log SET purpose = 'research' WHERE id = :altered;
CREATE SCHEMA regress_an_evil AUTHORIZATION regress_an_auditor;
SET ROLE regress_an_auditor;
CREATE FUNCTION regress_an_evil.eq(bigint, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'evil = ran as superuser %', current_user;
    END IF;
    RETURN false;
END $$;
CREATE OPERATOR regress_an_evil.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = regress_an_evil.eq);
SET search_path = regress_an_evil, pg_catalog, public;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT ok, checked > 0 AS read_blocks, first_bad - :altered AS first_bad, why
FROM health_pass.audit_verify();
COMMIT;
SELECT ok, checked > 0 AS read_blocks, first_bad - :altered AS first_bad, why
FROM health_pass.audit_verify();
RESET ROLE;
DO $$ BEGIN PERFORM health_pass.audit_checkpoint();
EXCEPTION WHEN data_corrupted THEN RAISE NOTICE 'refused: %', SQLSTATE; END $$;
DO $$ BEGIN PERFORM health_pass.audit_archive(clock_timestamp());
EXCEPTION WHEN data_corrupted THEN RAISE NOTICE 'refused: %', SQLSTATE; END $$;
RESET search_path;
SELECT count(*) AS anchors FROM health_pass.audit_anchor;
DROP SCHEMA regress_an_evil CASCADE;
UPDATE health_pass.audit_block SET records = :'altrecords' WHERE min_id = :altblk;
SELECT ok, why FROM health_pass.audit_verify();
SELECT max(max_id) AS head FROM health_pass.audit_block \gset
SELECT id = :head AS at_head FROM health_pass.audit_checkpoint();
SELECT id - :head AS id, kind, made_by = current_user AS by_me FROM health_pass.audit_anchor;
-- the checkpoint is a record in the chain, after the records it anchors
SELECT id - :head AS n, outcome, subject, left(reason, 7) AS reason
FROM health_pass.audit_log WHERE id > :head;
SELECT (regexp_match(reason, '^anchor (\d+) ([0-9a-f]{64});'))[1]::bigint = :head AS names_head,
       (regexp_match(reason, '^anchor (\d+) ([0-9a-f]{64});'))[2] =
       (SELECT encode(hash, 'hex') FROM health_pass.audit_log WHERE id = :head) AS names_hash
FROM health_pass.audit_log WHERE id = :head + 1;
-- an incremental check reads only what came after it
SELECT pg_temp.read_all();
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT ok, checked, from_id - :head AS from_id, last_id - :head AS last_id
FROM health_pass.audit_verify(true);
SELECT ok, checked > 1000 AS full_check, from_id FROM health_pass.audit_verify(false);

-- the attack: a record after the checkpoint altered, and a checkpoint
-- forged in audit_anchor after it, so that audit_verify(true) starts past
-- the altered record
SELECT max(max_id) AS head2 FROM health_pass.audit_block \gset
UPDATE health_pass.audit_log SET purpose = 'research' WHERE id = :head + 5;
SELECT ok, first_bad - :head AS first_bad, why FROM health_pass.audit_verify(true);
INSERT INTO health_pass.audit_anchor (id, hash, kind)
SELECT id, hash, 'verified' FROM health_pass.audit_log WHERE id = :head2;
SELECT ok, first_bad - :head AS first_bad, replace(why, :'head2', 'N') AS why
FROM health_pass.audit_verify(true);
-- a forged hash instead: the first record after it does not chain to it
UPDATE health_pass.audit_anchor SET hash = decode(repeat('ab', 32), 'hex') WHERE id = :head2;
SELECT ok, first_bad - :head AS first_bad, why FROM health_pass.audit_verify(true);
-- the full check finds the altered record whatever audit_anchor says
SELECT ok, first_bad - :head AS first_bad, why FROM health_pass.audit_verify();
-- and no checkpoint is set over it
DO $$ BEGIN PERFORM health_pass.audit_checkpoint();
EXCEPTION WHEN data_corrupted THEN RAISE NOTICE 'refused: %', SQLSTATE; END $$;
SELECT count(*) AS anchors FROM health_pass.audit_anchor;
DELETE FROM health_pass.audit_anchor WHERE id = :head2;
UPDATE health_pass.audit_log SET purpose = 'care' WHERE id = :head + 5;
SELECT ok FROM health_pass.audit_verify(true);
-- a checkpoint whose own record was altered
SELECT min_id AS cpblk, records AS cprecords FROM health_pass.audit_block
WHERE :head + 1 BETWEEN min_id AND max_id \gset
UPDATE health_pass.audit_log SET reason = 'anchor 1 ' || repeat('00', 32) || '; x' WHERE id = :head + 1;
SELECT ok, first_bad - :head AS first_bad, why FROM health_pass.audit_verify(true);
SELECT ok, first_bad - :head AS first_bad, why FROM health_pass.audit_verify();
UPDATE health_pass.audit_block SET records = :'cprecords' WHERE min_id = :cpblk;
SELECT ok FROM health_pass.audit_verify(true);

-- 3. Retention.  Only a superuser archives
SET ROLE regress_an_auditor;
SELECT * FROM health_pass.audit_archive(now());
RESET ROLE;
-- nothing that old: nothing dropped, nothing written
SELECT blocks, records FROM health_pass.audit_archive('-infinity');
-- a range that does not verify is not dropped
SELECT min_id AS first, records AS firstrecords FROM health_pass.audit_block
ORDER BY min_id LIMIT 1 \gset
UPDATE health_pass.audit_log SET purpose = 'research' WHERE id = :first;
SELECT count(*) AS blocks FROM health_pass.audit_block \gset
DO $$ BEGIN PERFORM health_pass.audit_archive(clock_timestamp());
EXCEPTION WHEN data_corrupted THEN RAISE NOTICE 'refused: %', SQLSTATE; END $$;
SELECT count(*) = :blocks AS nothing_dropped FROM health_pass.audit_block;
UPDATE health_pass.audit_block SET records = :'firstrecords' WHERE min_id = :first;
SELECT ok FROM health_pass.audit_verify();
SELECT health_pass.audit_flush() > 0 AS flushed;
-- drop everything logged so far: the new anchor is the last record dropped,
-- recorded in the chain by an archived record, and the log verifies from it
SELECT max(max_id) AS head3 FROM health_pass.audit_block \gset
SELECT blocks > 0 AS dropped, records > 0 AS records, last_id = :head3 AS at_head
FROM health_pass.audit_archive(clock_timestamp());
SELECT count(*) AS blocks_left FROM health_pass.audit_block;
SELECT id - :head3 AS id, outcome, left(reason, 7) AS reason FROM health_pass.audit_log;
SELECT kind FROM health_pass.audit_anchor WHERE id = :head3;
SELECT ok, checked, why FROM health_pass.audit_verify();
SELECT ok, checked, from_id - :head3 AS from_id FROM health_pass.audit_verify(true);
-- the writer goes on from the anchor
SELECT pg_temp.read_all();
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT ok, checked FROM health_pass.audit_verify();
-- the attack: old blocks deleted and an archive anchor forged at the last
-- of them, so that audit_verify() starts past them
SELECT pg_temp.read_all();
SELECT pg_temp.read_all();
SELECT health_pass.audit_flush() > 0 AS flushed;
INSERT INTO health_pass.audit_anchor (id, hash, kind)
SELECT b.max_id, (SELECT hash FROM health_pass._audit_rows(b.records) r WHERE r.id = b.max_id), 'archived'
FROM health_pass.audit_block b ORDER BY min_id LIMIT 1 OFFSET 1 RETURNING id AS forged \gset
CREATE TEMP TABLE saved AS SELECT * FROM health_pass.audit_block WHERE min_id <= :forged;
DELETE FROM health_pass.audit_block WHERE min_id <= :forged;
SELECT ok, first_bad = :forged AS at_forged, replace(why, :'forged', 'N') AS why
FROM health_pass.audit_verify();
SELECT ok, first_bad = :forged AS at_forged, replace(why, :'forged', 'N') AS why
FROM health_pass.audit_verify(true);
-- put back, the log verifies again from its last real anchor
DELETE FROM health_pass.audit_anchor WHERE id = :forged;
INSERT INTO health_pass.audit_block SELECT * FROM saved;
SELECT ok, why FROM health_pass.audit_verify();

-- every block dropped, and the writer started again: it goes on from the
-- anchor in audit_anchor
SELECT max(max_id) AS head4 FROM health_pass.audit_block \gset
SELECT last_id = :head4 AS at_head FROM health_pass.audit_archive(clock_timestamp());
SELECT pg_terminate_backend(writer_pid) FROM health_pass.audit_status();
SELECT pg_sleep(1.5);
-- (a superuser deletes the block of the archived record too, and what the
-- writer wrote as it stopped)
DELETE FROM health_pass.audit_block;
SELECT count(*) AS blocks_left FROM health_pass.audit_block;
SELECT pg_temp.read_all();
SELECT health_pass.audit_flush() > 0 AS flushed;
SELECT min(id) - :head4 AS first_id FROM health_pass.audit_log;
-- (the archived record went with its block: the newest anchor is not
-- named in the chain any more, and the check says so)
SELECT ok, first_bad - :head4 AS first_bad, replace(why, :'head4', 'N') AS why
FROM health_pass.audit_verify();

SELECT health_pass.unprotect('an_people');
DROP TABLE an_people;
DROP OWNED BY regress_an_clerk, regress_an_auditor;
DROP ROLE regress_an_clerk, regress_an_auditor;
