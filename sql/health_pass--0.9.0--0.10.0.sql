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

CREATE OR REPLACE FUNCTION health_pass.who_read(tbl regclass, subject text)
    RETURNS SETOF health_pass.audit_log
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    rels regclass[];
    s text := health_pass.subject_text(who_read.subject);
BEGIN
    WITH RECURSIVE tree(rel) AS (
        SELECT tbl::oid
        UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.rel)
    SELECT pg_catalog.array_agg(t.rel::regclass) INTO rels FROM tree t;
    IF pg_catalog.cardinality(rels) = 1 THEN
        RETURN QUERY
        SELECT r.* FROM ONLY health_pass.audit_block b
        CROSS JOIN LATERAL health_pass._audit_rows(b.records) r
        WHERE health_pass._audit_may_hold(b.subjects, tbl, s)
          AND ((r.relation = tbl AND r.subject = s) OR r.id IS NULL)
        ORDER BY r.id DESC;
    ELSE
        RETURN QUERY
        SELECT r.* FROM ONLY health_pass.audit_block b
        CROSS JOIN LATERAL health_pass._audit_rows(b.records) r
        WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(rels) t(rel)
                      WHERE health_pass._audit_may_hold(b.subjects, t.rel, s))
          AND ((r.relation = ANY (rels) AND r.subject = s) OR r.id IS NULL)
        ORDER BY r.id DESC;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject (its text as health_pass.subject_text() gives it) of one table and of its partitions and children, newest first, and the "unreadable block" row of a damaged block that may hold one (needs SELECT on audit_block)';

DROP FUNCTION health_pass._audit_records(bytea);
COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/audit/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser, 5 issued, 6 revoked, 7 failover';

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
