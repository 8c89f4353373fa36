/* health_pass 0.6.0 -> 0.7.0: quotas and the audit writer stand up to crashes, floods and odd data */

\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.7.0'" to load this file. \quit

-- The server must run the 0.7.0 library (restart after installing it).

-- quotas: a subject is its value ----------------------------------------------
-- The gate tells a statement's subjects apart by their binary value and
-- records each as its type prints it under fixed settings (DateStyle ISO,
-- TimeZone UTC, extra_float_digits 1, ...), so session settings can neither
-- merge two subjects nor split one; a text longer than 127 bytes is recorded
-- as 'sha256:' and the hex SHA-256 of it.  subject_text() gives that text.
CREATE FUNCTION health_pass.subject_text(subject anyelement) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_subject_text_sql' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.subject_text(anyelement) IS
    'the text the audit log keeps of a subject value (printed under fixed settings; longer than 127 bytes: ''sha256:'' and its hex digest): what who_read() matches';

-- who_read() matches the recorded form of the text it is given
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
        SELECT r.* FROM health_pass.audit_block b
        CROSS JOIN LATERAL health_pass._audit_records(b.records) r
        WHERE health_pass._audit_may_hold(b.subjects, tbl, s)
          AND r.relation = tbl AND r.subject = s
        ORDER BY r.id DESC;
    ELSE
        RETURN QUERY
        SELECT r.* FROM health_pass.audit_block b
        CROSS JOIN LATERAL health_pass._audit_records(b.records) r
        WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(rels) t(rel)
                      WHERE health_pass._audit_may_hold(b.subjects, t.rel, s))
          AND r.relation = ANY (rels) AND r.subject = s
        ORDER BY r.id DESC;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject (its text as health_pass.subject_text() gives it) of one table and of its partitions and children, newest first (needs SELECT on audit_block)';

-- A quota belongs to the rule: every role reading through it shares its
-- max_subjects.  The shared tracker is sized at server start; a rule that
-- could never fit is refused, and a database whose quotas add up to more
-- than the tracker holds is warned about.
CREATE OR REPLACE FUNCTION health_pass.allow(grantee name, tbl regclass, purpose text,
                                             max_subjects integer DEFAULT NULL,
                                             per interval DEFAULT '1 hour') RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    capacity integer := pg_catalog.current_setting('health_pass.quota_capacity', true)::integer;
    total bigint;
BEGIN
    PERFORM health_pass._require_admin();
    IF NOT EXISTS (SELECT 1 FROM health_pass.protected_table p WHERE p.relation = tbl) THEN
        RAISE EXCEPTION 'table % is not protected', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call health_pass.protect() first.';
    END IF;
    IF allow.max_subjects > capacity THEN
        RAISE EXCEPTION 'max_subjects % is more than the quota tracker holds (health_pass.quota_capacity = %)',
            allow.max_subjects, capacity
            USING ERRCODE = 'configuration_limit_exceeded',
                  HINT = 'Raise health_pass.quota_capacity (takes a server restart), or allow fewer subjects.';
    END IF;
    INSERT INTO health_pass.access_rule AS r (grantee, relation, purpose, max_subjects, per)
    VALUES (allow.grantee::regrole, allow.tbl, allow.purpose, allow.max_subjects, allow.per)
    ON CONFLICT ON CONSTRAINT access_rule_pkey DO UPDATE
        SET max_subjects = EXCLUDED.max_subjects, per = EXCLUDED.per,
            created_at = now(), created_by = current_user;
    SELECT pg_catalog.sum(r.max_subjects) INTO total FROM health_pass.access_rule r;
    IF total > capacity THEN
        RAISE WARNING 'the quotas of this database add up to % subjects, more than the quota tracker holds (%)',
            total, capacity
            USING HINT = 'When the tracker is full, a read that needs a new subject counted is refused: raise health_pass.quota_capacity.';
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.allow(name, regclass, text, integer, interval) IS
    'let grantee (and roles with its privileges) read tbl for purpose, at most max_subjects distinct subjects per period for all of them together (NULL: no quota)';
