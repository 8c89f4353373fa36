-- health_pass 0.10.0 -> 0.11.0 (issue 15 §3): the subject index leaves the
-- writer's batch.  The GIN index on _audit_keys(records) gives way to sorted
-- runs the writer builds and merges between its batches (keyindex.c,
-- docs/design/audit_index.md).  The same objects as in sql/health_pass.sql
-- (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.11.0'" to load this file. \quit

DROP INDEX health_pass.audit_block_keys;
ALTER FUNCTION health_pass.who_read(regclass, text) RESET enable_seqscan;

-- The subject index (docs/design/audit_index.md): the 64-bit keys of a
-- block's (relation, subject) pairs, computed from its records (a damaged
-- block: the one key 0), kept as sorted runs of (key, block) pairs merged
-- level by level.  The audit writer indexes new blocks between its batches
-- and merges runs (keyindex.c); who_read() reads the runs for the blocks up
-- to the mark and the bloom filters of the blocks after it.  Derived data:
-- not dumped (the writer indexes a restored log again), rebuilt by
-- audit_reindex().
CREATE TABLE health_pass.audit_key_mark (
    mark bigint NOT NULL
);
INSERT INTO health_pass.audit_key_mark VALUES (0);
-- one row, always (who_read() trusts no run when it finds another count)
CREATE UNIQUE INDEX audit_key_mark_one ON health_pass.audit_key_mark ((true));
COMMENT ON TABLE health_pass.audit_key_mark IS
    'the subject index covers the blocks whose min_id is at most mark; who_read() tests the bloom filters of the blocks after it';
CREATE TABLE health_pass.audit_key_run (
    run bigint PRIMARY KEY,
    level integer NOT NULL,
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    pairs bigint NOT NULL,
    pages integer NOT NULL,
    live boolean NOT NULL
);
COMMENT ON TABLE health_pass.audit_key_run IS
    'runs of the subject index: each a list of (key, block) pairs sorted by key, in audit_key_page; level 0 from new or changed blocks, level n+1 merged from 8 of level n; a run not live is a merge under way, or at level -1 one whose pages are being deleted';
CREATE SEQUENCE health_pass.audit_key_run_seq;
CREATE TABLE health_pass.audit_key_page (
    run bigint NOT NULL,
    page integer NOT NULL,
    lo bigint NOT NULL,
    hi bigint NOT NULL,
    pairs bytea NOT NULL,
    PRIMARY KEY (run, page)
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000);
-- merges delete the pages of their inputs: vacuumed every 2,000 dead pages
-- (16 MB), so the next merges reuse the space instead of growing the file
-- a page is at most 496 pairs of 16 bytes: one row per heap page, never
-- compressed (the pairs are random) nor moved out of line
ALTER TABLE health_pass.audit_key_page ALTER COLUMN pairs SET STORAGE PLAIN;
CREATE UNIQUE INDEX audit_key_page_hi ON health_pass.audit_key_page (run, hi, page);
COMMENT ON TABLE health_pass.audit_key_page IS
    'pages of the subject index''s runs: pairs (key bigint, block bigint) in the server''s byte order, sorted; lo and hi are the first and last key';

-- Superusers' INSERT or UPDATE of audit_block (the writer's own inserts fire
-- no trigger): the changed blocks, and inserted blocks behind the mark, are
-- indexed at once from their records
CREATE FUNCTION health_pass._audit_key_patch(blocks bigint[], updated boolean) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hp_audit_key_patch' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass._audit_key_patch(bigint[], boolean) IS
    'trigger helper: index the given audit_block rows (all when updated, else those at or behind the mark) as a run of their own';
CREATE FUNCTION health_pass._audit_block_indexed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._audit_key_patch(ids, TG_OP = 'UPDATE')
        FROM (SELECT pg_catalog.array_agg(min_id) AS ids FROM changed_blocks) c
        WHERE ids IS NOT NULL;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION health_pass._audit_block_indexed() IS
    'trigger: a superuser''s INSERT or UPDATE of audit_block is indexed at once (_audit_key_patch)';
CREATE TRIGGER audit_block_indexed_insert AFTER INSERT ON health_pass.audit_block
    REFERENCING NEW TABLE AS changed_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_block_indexed();
CREATE TRIGGER audit_block_indexed_update AFTER UPDATE ON health_pass.audit_block
    REFERENCING NEW TABLE AS changed_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_block_indexed();

-- The index's state, and a rebuild
CREATE FUNCTION health_pass.audit_index_status(OUT indexed_to bigint, OUT unindexed bigint,
    OUT runs integer, OUT levels integer, OUT pairs bigint, OUT merging boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.mark,
           coalesce((SELECT sum(b.max_id - b.min_id + 1) FROM ONLY health_pass.audit_block b
                     WHERE b.min_id > m.mark), 0)::bigint,
           (SELECT count(*) FROM health_pass.audit_key_run r WHERE r.live)::integer,
           (SELECT count(DISTINCT r.level) FROM health_pass.audit_key_run r WHERE r.live)::integer,
           (SELECT coalesce(sum(r.pairs), 0) FROM health_pass.audit_key_run r WHERE r.live)::bigint,
           EXISTS (SELECT FROM health_pass.audit_key_run r WHERE NOT r.live AND r.level >= 0)
    FROM (SELECT max(mark) AS mark FROM health_pass.audit_key_mark) m
$$;
COMMENT ON FUNCTION health_pass.audit_index_status() IS
    'the subject index: its mark (the min_id of the last block it covers), the records of the blocks after it (who_read() tests their bloom filters), its live runs, their levels and pairs, and whether a merge is under way';
CREATE FUNCTION health_pass.audit_reindex() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'only superusers may rebuild the audit log''s subject index'
            USING ERRCODE = '42501';
    END IF;
    -- the mark first: its row lock keeps the writer's steps out until
    -- COMMIT (they skip a locked mark); DELETE, not TRUNCATE, so a snapshot
    -- taken before sees the old mark with the old runs
    UPDATE health_pass.audit_key_mark SET mark = 0;
    DELETE FROM health_pass.audit_key_page;
    DELETE FROM health_pass.audit_key_run;
END
$$;
COMMENT ON FUNCTION health_pass.audit_reindex() IS
    'superusers: empty the subject index; the audit writer indexes the whole log again, and who_read() reads the blocks not yet indexed by their bloom filters meanwhile';

REVOKE ALL ON health_pass.audit_key_mark, health_pass.audit_key_run,
              health_pass.audit_key_page, health_pass.audit_key_run_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._audit_key_patch(bigint[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass.audit_reindex() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass.audit_index_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION health_pass.audit_index_status() TO pg_monitor;
