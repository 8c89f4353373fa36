-- health_pass 0.9.0 -> 0.10.0 (issue 15): audited reads on hot standbys, a
-- chain that survives failover, and an audit log that answers in
-- milliseconds at a billion records.  The same objects as in
-- sql/health_pass.sql (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.10.0'" to load this file. \quit

-- A. Standbys and failover (issue 15 §1-2) ===================================

-- B. The audit log at scale: subject index, checkpoints, retention (§3-5) ====

-- outcome codes 7 (failover, section A), 8 archived and 9 verified
COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/audit/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser, 5 issued, 6 revoked, 7 failover, 8 archived, 9 verified';

-- The subject index (docs/design/audit_index.md): built here over the whole
-- log, one decode per block (about a minute per 10 M records)
CREATE FUNCTION health_pass._audit_keys(records bytea) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'hp_audit_keys' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass._audit_keys(bytea) IS
    'the subject-index keys of one audit_block.records value: the distinct 64-bit hashes of its records'' (relation, subject) pairs, or {0} when the block does not decode';
CREATE INDEX audit_block_keys ON health_pass.audit_block
    USING gin (health_pass._audit_keys(records)) WITH (fastupdate = on, gin_pending_list_limit = 256);

-- who_read() in C on the subject index (was PL/pgSQL over every bloom filter)
CREATE OR REPLACE FUNCTION health_pass.who_read(tbl regclass, subject text)
    RETURNS SETOF health_pass.audit_log
    AS 'MODULE_PATHNAME', 'hp_who_read' LANGUAGE C STABLE STRICT
    SET search_path = pg_catalog, pg_temp SET jit = off SET enable_seqscan = off;

-- Anchors of the chain (docs/design/audit_index.md): a record id and its
-- hash the chain is checked from.  'verified': a checkpoint set by
-- audit_checkpoint() after the chain verified up to there; 'archived': the
-- last record audit_archive() dropped, which the first remaining block
-- chains to.  Each one is also a record of its own in the chain (outcome
-- verified or archived, reason "anchor <id> <hash>; ..."), written before the
-- row: audit_verify() reports an anchor the chain does not name.
CREATE TABLE health_pass.audit_anchor (
    id bigint PRIMARY KEY,
    hash bytea NOT NULL CHECK (pg_catalog.length(hash) = 32),
    kind text NOT NULL CHECK (kind IN ('verified', 'archived')),
    made_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    made_by name NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE health_pass.audit_anchor IS
    'anchors of the audit chain: (id, hash) of a record audit_verify() checks from; verified: a checkpoint (audit_checkpoint), archived: the last record dropped by audit_archive; each is named by a record of its own in the chain';
CREATE TRIGGER audit_anchor_append_only BEFORE INSERT OR UPDATE OR DELETE ON health_pass.audit_anchor
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_guard();
CREATE TRIGGER audit_anchor_no_truncate BEFORE TRUNCATE ON health_pass.audit_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_guard();

CREATE FUNCTION health_pass.audit_verify(incremental boolean,
    OUT ok boolean, OUT checked bigint, OUT first_bad bigint, OUT why text,
    OUT from_id bigint, OUT last_id bigint, OUT last_hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_verify' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass.audit_verify(boolean) IS
    'audit_verify() from the newest anchor of any kind (a checkpoint) when incremental, else from the newest archive anchor or the first record; also the first record checked and the last one with its hash';

CREATE FUNCTION health_pass.audit_checkpoint(OUT id bigint, OUT hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_checkpoint' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_checkpoint() IS
    'superuser only: verify the chain from the newest anchor and, when it is sound, anchor its last record (a verified record in the chain, and a row in audit_anchor), where audit_verify(true) starts next time';

CREATE FUNCTION health_pass.audit_archive(before timestamptz,
    OUT blocks bigint, OUT records bigint, OUT last_id bigint, OUT last_hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_archive' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass.audit_archive(timestamptz) IS
    'superuser only: drop the oldest audit blocks, up to the first holding a record logged at or after before, once they verify, and anchor the chain at the last record dropped (an archived record in the chain, and a row in audit_anchor); archive them first (COPY)';

REVOKE ALL ON health_pass.audit_anchor FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.audit_checkpoint() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.audit_archive(timestamptz) FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_pass.audit_anchor', '');
