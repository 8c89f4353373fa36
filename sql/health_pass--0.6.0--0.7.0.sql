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

-- who_read() matches the recorded form of the text it is given, and returns
-- the one row of a block that does not decode when its bloom filter matches
-- (the investigator sees the log is damaged there)
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
        CROSS JOIN LATERAL health_pass._audit_records(b.records) r
        WHERE health_pass._audit_may_hold(b.subjects, tbl, s)
          AND ((r.relation = tbl AND r.subject = s) OR r.id IS NULL)
        ORDER BY r.id DESC;
    ELSE
        RETURN QUERY
        SELECT r.* FROM ONLY health_pass.audit_block b
        CROSS JOIN LATERAL health_pass._audit_records(b.records) r
        WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(rels) t(rel)
                      WHERE health_pass._audit_may_hold(b.subjects, t.rel, s))
          AND ((r.relation = ANY (rels) AND r.subject = s) OR r.id IS NULL)
        ORDER BY r.id DESC;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject (its text as health_pass.subject_text() gives it) of one table and of its partitions and children, newest first, and the "unreadable block" row of a damaged block that may hold one (needs SELECT on audit_block)';

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
    IF allow.per > interval '100 years' THEN
        RAISE EXCEPTION 'a quota period of % is longer than 100 years', allow.per
            USING ERRCODE = 'invalid_parameter_value';
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

-- records: (issue 12, item 5; docs/design/records.md) ------------------------
-- The writer checks every record before it chains it and writes an invalid
-- one in a safe form that says so; audit_log and who_read() show whatever a
-- block holds without failing (a field they cannot show as stored is
-- escaped or NULL, the reason says "unreadable record: <fields>"; a block
-- that does not decode is one row "unreadable block: <why>"); audit_verify()
-- reports such a record or block, and says why in a new column.
COMMENT ON FUNCTION health_pass._audit_records(bytea) IS
    'the audit_log rows packed in one audit_block.records value, in the order they were written; never fails on what the block holds: a field that cannot be shown as stored is escaped or NULL with reason "unreadable record: <fields>", a block that does not decode is one row with only reason "unreadable block: <why>"';

-- a new OUT column: drop and create again, keeping who may execute it
-- (nothing in the extension depends on it)
DO $$
DECLARE
    acl aclitem[];
    g record;
BEGIN
    SELECT p.proacl INTO acl FROM pg_catalog.pg_proc p
    WHERE p.oid = 'health_pass.audit_verify()'::pg_catalog.regprocedure;
    DROP FUNCTION health_pass.audit_verify();
    CREATE FUNCTION health_pass.audit_verify(OUT ok boolean, OUT checked bigint,
                                             OUT first_bad bigint, OUT why text)
        AS 'MODULE_PATHNAME', 'hp_audit_verify' LANGUAGE C VOLATILE;
    IF acl IS NOT NULL THEN
        REVOKE ALL ON FUNCTION health_pass.audit_verify() FROM PUBLIC;
        FOR g IN SELECT a.grantee, a.is_grantable FROM pg_catalog.aclexplode(acl) a
                 WHERE a.privilege_type = 'EXECUTE'
                   AND a.grantee <> (SELECT p.proowner FROM pg_catalog.pg_proc p
                                     WHERE p.oid = 'health_pass.audit_verify()'::pg_catalog.regprocedure)
        LOOP
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION health_pass.audit_verify() TO %s%s',
                CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,
                CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.audit_verify() IS
    'walk the audit_log hash chain; first_bad is the id of the first record altered, reordered, deleted or unreadable (or where a block that does not decode, or whose summary is wrong, sits), why says which; never fails on what the log holds';

-- writer: ----------------------------------------------------------------------
-- The audit writer cannot be stopped or stalled by non-superusers (issue 12,
-- item 4; docs/design/writer.md).  audit_status() says what a stalled writer
-- waits for; it and audit_flush() are no longer for every role (item 8):
-- audit_status() for superusers and pg_monitor, audit_flush() for superusers
-- and the roles the DBA grants it.  Grants of audit_status() to other roles
-- survive the new definition.
DO $writer$
DECLARE
    grantees text[];
BEGIN
    SELECT pg_catalog.array_agg(pg_catalog.quote_ident(r.rolname))
      INTO grantees
      FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
      JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
     WHERE p.oid = 'health_pass.audit_status()'::pg_catalog.regprocedure
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner;
    DROP FUNCTION health_pass.audit_status();
    CREATE FUNCTION health_pass.audit_status(OUT writer_pid integer, OUT queued bigint,
                                             OUT written bigint, OUT batches bigint,
                                             OUT waiting_on text, OUT waiting_since timestamptz,
                                             OUT blocked_by integer[])
        AS 'MODULE_PATHNAME', 'hp_audit_status' LANGUAGE C VOLATILE;
    IF grantees IS NOT NULL THEN
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION health_pass.audit_status() TO %s',
                                  pg_catalog.array_to_string(grantees, ', '));
    END IF;
END
$writer$;
COMMENT ON FUNCTION health_pass.audit_status() IS
    'this database''s audit writer: its pid, records waiting, records and commits since the server started; when it cannot write, what it waits for, since when and the pids that block it';
REVOKE EXECUTE ON FUNCTION health_pass.audit_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION health_pass.audit_status() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION health_pass.audit_flush() FROM PUBLIC;

-- protect(): a subject column whose type prints by a session setting that
-- subject_text() does not fix (money by lc_monetary, reg* by search_path) is
-- refused
CREATE OR REPLACE FUNCTION health_pass.protect(tbl regclass, subject_column name) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parent regclass;
    subject_type regtype;
    child regclass;
    root regclass;
BEGIN
    PERFORM health_pass._require_admin();
    IF NOT health_pass._preloaded() THEN
        RAISE EXCEPTION 'health_pass must be in shared_preload_libraries to protect a table'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add health_pass to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
    -- a subject is recorded as its type prints it under fixed settings; these
    -- types print by settings that are not fixed (lc_monetary, search_path)
    -- (the type itself, or one inside it: a domain's base, an array's
    -- element, a range's subtype, a composite's fields)
    WITH RECURSIVE inside(t) AS (
        SELECT a.atttypid FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = tbl AND a.attname = subject_column AND NOT a.attisdropped
        UNION
        SELECT u.t FROM inside i
        JOIN pg_catalog.pg_type ty ON ty.oid = i.t
        CROSS JOIN LATERAL (
            SELECT ty.typbasetype WHERE ty.typtype = 'd'
            UNION ALL SELECT ty.typelem WHERE ty.typelem <> 0 AND ty.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
            UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = ty.oid
            UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = ty.oid
            UNION ALL SELECT ca.atttypid FROM pg_catalog.pg_attribute ca
                WHERE ty.typtype = 'c' AND ca.attrelid = ty.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped
        ) u(t))
    SELECT i.t::pg_catalog.regtype INTO subject_type FROM inside i
    WHERE i.t IN ('pg_catalog.money'::regtype, 'pg_catalog.regclass'::regtype, 'pg_catalog.regproc'::regtype,
                  'pg_catalog.regprocedure'::regtype, 'pg_catalog.regoper'::regtype,
                  'pg_catalog.regoperator'::regtype, 'pg_catalog.regtype'::regtype,
                  'pg_catalog.regrole'::regtype, 'pg_catalog.regnamespace'::regtype,
                  'pg_catalog.regcollation'::regtype, 'pg_catalog.regconfig'::regtype,
                  'pg_catalog.regdictionary'::regtype)
    LIMIT 1;
    IF subject_type IS NOT NULL THEN
        RAISE EXCEPTION 'a subject column of type % (or holding one) prints differently in different sessions', subject_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Protect the table by a key column (text, integer, uuid, ...) that names whose data a row is.';
    END IF;
    -- every ancestor of a protected table is protected: a parent's
    -- statistics cover its children's rows
    SELECT i.inhparent::regclass INTO parent FROM pg_catalog.pg_inherits i
    WHERE i.inhrelid = tbl
      AND NOT EXISTS (SELECT 1 FROM health_pass.protected_table p WHERE p.relation = i.inhparent)
    LIMIT 1;
    IF parent IS NOT NULL THEN
        RAISE EXCEPTION 'table % is a partition or child of unprotected table %', tbl, parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Protect the root of the tree: that protects every partition and child.';
    END IF;
    PERFORM health_pass._protect_one(tbl, subject_column,
        (SELECT p.protected_through FROM health_pass.protected_table p WHERE p.relation = tbl));
    -- descendants follow the rules of the root of the protected tree
    SELECT coalesce(p.protected_through, p.relation) INTO root
    FROM health_pass.protected_table p WHERE p.relation = tbl;
    FOR child IN
        WITH RECURSIVE d(rel) AS (
            SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = tbl
            UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.rel)
        SELECT d.rel::regclass FROM d
    LOOP
        PERFORM health_pass._protect_one(child, subject_column, root);
    END LOOP;
END $$;
COMMENT ON FUNCTION health_pass.protect(regclass, name) IS
    'route every non-superuser read of tbl and of all its partitions and children (now and later) through the access rules and the audit log; subject_column names whose data a row is; row security is forced so that statistics views hide the table';

-- audit_log reads audit_block alone (ONLY): a child table's rows would read
-- as the log's (children and partitions of the log are refused to
-- non-superusers since 0.7.0, ddl.c)
CREATE OR REPLACE VIEW health_pass.audit_log AS
    SELECT r.id, r.logged_at, r.session_user_name, r.current_user_name, r.client_addr,
           r.application_name, r.backend_pid, r.statement_id, r.relation, r.subject,
           r.purpose, r.outcome, r.reason, r.prev_hash, r.hash
    FROM ONLY health_pass.audit_block b
    CROSS JOIN LATERAL health_pass._audit_records(b.records) r;
