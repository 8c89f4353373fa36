/* health_pass 0.4.0 -> 0.5.0: audit records packed into blocks */

\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.5.0'" to load this file. \quit

-- A row of about 300 bytes per record, with an index entry, cost the writer
-- more than everything else in a protected read.  The writer now packs up
-- to 256 consecutive records into one audit_block row: session fields the
-- records share are written once, times and ids as small steps, each record
-- keeps its own SHA-256 hash.  audit_log is a view that unpacks the blocks
-- and shows the same 15 columns as before.  Records, ids and hashes move as
-- they are, so the chain and every external anchor of it stay valid.
-- The server must run the 0.5.0 library (restart after installing it).

CREATE TABLE health_pass.audit_block (
    min_id bigint PRIMARY KEY,
    max_id bigint NOT NULL,
    min_at timestamptz NOT NULL,
    max_at timestamptz NOT NULL,
    subjects bytea NOT NULL,
    records bytea NOT NULL
) WITH (toast_tuple_target = 128);
-- records is mostly hashes, which do not compress: store it out of line
-- uncompressed, so a scan of the summaries reads little
ALTER TABLE health_pass.audit_block ALTER COLUMN records SET STORAGE EXTERNAL;
ALTER TABLE health_pass.audit_block ALTER COLUMN subjects SET STORAGE MAIN;
COMMENT ON TABLE health_pass.audit_block IS
    'storage of audit_log: each row packs a run of consecutive records (ids min_id to max_id, logged between min_at and max_at), with a bloom filter of their (relation, subject) pairs';
COMMENT ON COLUMN health_pass.audit_block.subjects IS
    'bloom filter of the (relation, subject) pairs of the block''s records: who_read() unpacks only blocks it matches';
COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records: the hash the first one chains to, the session fields they share, then each record and its hash (layout: src/block.c)';

CREATE TRIGGER audit_block_append_only BEFORE INSERT OR UPDATE OR DELETE ON health_pass.audit_block
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_guard();
CREATE TRIGGER audit_block_no_truncate BEFORE TRUNCATE ON health_pass.audit_block
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_guard();
COMMENT ON FUNCTION health_pass._audit_guard() IS
    'trigger: audit_block changes are refused to every role but superusers';

CREATE FUNCTION health_pass._audit_records(records bytea,
    OUT id bigint, OUT logged_at timestamptz, OUT session_user_name name,
    OUT current_user_name name, OUT client_addr inet, OUT application_name text,
    OUT backend_pid integer, OUT statement_id bigint, OUT relation regclass,
    OUT subject text, OUT purpose text, OUT outcome text, OUT reason text,
    OUT prev_hash bytea, OUT hash bytea)
    RETURNS SETOF record ROWS 256
    AS 'MODULE_PATHNAME', 'hp_audit_records' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION health_pass._audit_records(bytea) IS
    'the audit_log rows packed in one audit_block.records value, in the order they were written';

CREATE FUNCTION health_pass._audit_may_hold(subjects bytea, tbl regclass, subject text)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_audit_may_hold' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass._audit_may_hold(bytea, regclass, text) IS
    'false when a block''s bloom filter proves it holds no record of this subject of this table';

CREATE FUNCTION health_pass._audit_pack_table(old regclass) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hp_audit_pack_table' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION health_pass._audit_pack_table(regclass) FROM PUBLIC;

-- move the records, then let whoever could read them read them still
DROP FUNCTION health_pass.who_read(regclass, text);  -- returns the old table's rows
ALTER TABLE health_pass.audit_log RENAME TO audit_log_0_4;
SELECT health_pass._audit_pack_table('health_pass.audit_log_0_4') >= 0 AS moved;

CREATE VIEW health_pass.audit_log AS
    SELECT r.id, r.logged_at, r.session_user_name, r.current_user_name, r.client_addr,
           r.application_name, r.backend_pid, r.statement_id, r.relation, r.subject,
           r.purpose, r.outcome, r.reason, r.prev_hash, r.hash
    FROM health_pass.audit_block b
    CROSS JOIN LATERAL health_pass._audit_records(b.records) r;
COMMENT ON VIEW health_pass.audit_log IS
    'one record per (statement, subject) read of a protected table, and one per denied statement; hash chains each record to the one before (stored packed in audit_block)';

DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT a.grantee, a.privilege_type
             FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
             WHERE c.oid = 'health_pass.audit_log_0_4'::pg_catalog.regclass
               AND a.grantee <> c.relowner AND a.privilege_type = 'SELECT'
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON health_pass.audit_log, health_pass.audit_block TO %s',
            CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
    END LOOP;
END $$;
ALTER EXTENSION health_pass DROP TABLE health_pass.audit_log_0_4;  -- and from extconfig
DROP TABLE health_pass.audit_log_0_4;
DROP FUNCTION health_pass._audit_pack_table(regclass);

CREATE FUNCTION health_pass._audit_edit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hp_audit_edit' LANGUAGE C;
COMMENT ON FUNCTION health_pass._audit_edit() IS
    'trigger: UPDATE and DELETE on audit_log are refused to every role but superusers, whose changes go to the block that holds the record (audit_verify() finds them); records are added only by the writer';
CREATE TRIGGER audit_log_append_only INSTEAD OF INSERT OR UPDATE OR DELETE ON health_pass.audit_log
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_edit();

REVOKE ALL ON health_pass.audit_block, health_pass.audit_log FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_pass.audit_block', '');

-- who_read() reads only the blocks whose bloom filter matches, so it reads
-- audit_block: auditors are granted SELECT on both (the update copies
-- every SELECT grant on the old audit_log table to both)
CREATE FUNCTION health_pass.who_read(tbl regclass, subject text)
    RETURNS SETOF health_pass.audit_log
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
    SELECT r.* FROM health_pass.audit_block b
    CROSS JOIN LATERAL health_pass._audit_records(b.records) r
    WHERE health_pass._audit_may_hold(b.subjects, tbl, who_read.subject)
      AND r.relation = tbl AND r.subject = who_read.subject
    ORDER BY r.id DESC
$$;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject of one table, newest first (needs SELECT on audit_block)';
