-- health_pass 0.9.0 -> 0.10.0 (issue 15): audited reads on hot standbys, a
-- chain that survives failover, and an audit log that answers in
-- milliseconds at a billion records.  The same objects as in
-- sql/health_pass.sql (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.10.0'" to load this file. \quit

-- A. Standbys and failover (issue 15 §1-2) ===================================

-- audit_log gains node (the standby that read): a new row function, since
-- _audit_records' columns cannot change in place; CREATE OR REPLACE VIEW
-- keeps the view's grants and its trigger.
CREATE FUNCTION health_pass._audit_rows(records bytea,
    OUT id bigint, OUT logged_at timestamptz, OUT session_user_name name,
    OUT current_user_name name, OUT client_addr inet, OUT application_name text,
    OUT backend_pid integer, OUT statement_id bigint, OUT relation regclass,
    OUT subject text, OUT purpose text, OUT outcome text, OUT reason text,
    OUT prev_hash bytea, OUT hash bytea, OUT node text)
    RETURNS SETOF record ROWS 256
    AS 'MODULE_PATHNAME', 'hp_audit_records' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION health_pass._audit_rows(bytea) IS
    'the audit_log rows packed in one audit_block.records value, in the order they were written; never fails on what the block holds: a field that cannot be shown as stored is escaped or NULL with reason "unreadable record: <fields>", a block that does not decode is one row with only reason "unreadable block: <why>"';

CREATE OR REPLACE VIEW health_pass.audit_log AS
    SELECT r.id, r.logged_at, r.session_user_name, r.current_user_name, r.client_addr,
           r.application_name, r.backend_pid, r.statement_id, r.relation, r.subject,
           r.purpose, r.outcome, r.reason, r.prev_hash, r.hash, r.node
    FROM ONLY health_pass.audit_block b
    CROSS JOIN LATERAL health_pass._audit_rows(b.records) r;
COMMENT ON VIEW health_pass.audit_log IS
    'one record per (statement, subject) read of a protected table, and one per denied statement; hash chains each record to the one before (stored packed in audit_block); node names the standby that read (NULL: this server)';

DROP FUNCTION health_pass._audit_records(bytea);

-- Standbys (docs/design/standby.md): a standby ships the records of its
-- reads to the primary, which writes them into its chain naming the standby
-- (_audit_ship), and asks the primary's quota counters (_audit_quota_admit).
-- The role in the standby's health_pass.primary_conninfo needs EXECUTE on
-- both; they are revoked from PUBLIC (section 9).
CREATE FUNCTION health_pass._audit_ship(node text, boot timestamptz, first_seq bigint,
                                        records bytea,
                                        OUT last_id bigint, OUT last_hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_ship' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass._audit_ship(text, timestamptz, bigint, bytea) IS
    'on the primary: write a standby''s audit records (a packed block; ids and hashes are this server''s) into the chain, each naming node, and return once they are durable, with the chain''s head; first_seq is the first record''s number in the queue of the standby started at boot, so a batch shipped again after a failed answer is not written twice; records NULL: only the head';
CREATE FUNCTION health_pass._audit_quota_admit(grantee oid, relid oid, purpose text,
                                               subject_key bytea,
                                               OUT admitted boolean, OUT subjects integer)
    AS 'MODULE_PATHNAME', 'hp_audit_quota_admit' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass._audit_quota_admit(oid, oid, text, bytea) IS
    'on the primary: count a standby''s read of a subject (its 16-byte key; NULL: a NULL subject) against the rule (grantee, table, purpose); subjects is -1 when this server has no such rule with a quota';

-- Timelines of the chain: the writer notes each timeline of the server it
-- writes on (a promotion or a restored backup starts a new one) and the
-- record the chain continues after, and writes a "failover" record into the
-- chain when the timeline changed.
CREATE TABLE health_pass.audit_timeline (
    timeline   bigint PRIMARY KEY,
    previous   bigint,
    after_id   bigint NOT NULL,
    after_hash bytea NOT NULL,
    noted_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    note       text
);
COMMENT ON TABLE health_pass.audit_timeline IS
    'each WAL timeline the audit chain was written on: the record it continues after (after_id, after_hash), and the failover record''s text (note; NULL for the first timeline noted)';

REVOKE ALL ON FUNCTION health_pass._audit_ship(text, timestamptz, bigint, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._audit_quota_admit(oid, oid, text, bytea) FROM PUBLIC;
REVOKE ALL ON health_pass.audit_timeline FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_pass.audit_timeline', '');

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
    USING gin (health_pass._audit_keys(records)) WITH (fastupdate = off);

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
