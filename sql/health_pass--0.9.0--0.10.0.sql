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
