-- health_pass 0.1.0 -> 0.2.0: row-level access policy and audit for registry tables
\echo Use "CREATE EXTENSION health_pass" or "ALTER EXTENSION health_pass UPDATE" to load this file. \quit

-- Protected tables and access rules -------------------------------------------

CREATE TABLE health_pass.protected_table (
    relation regclass PRIMARY KEY,
    subject_attnum smallint NOT NULL CHECK (subject_attnum > 0),
    protected_at timestamptz NOT NULL DEFAULT now(),
    protected_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE health_pass.protected_table IS
    'tables whose reads go through health_pass; subject_attnum is the column naming whose data a row is';

CREATE TABLE health_pass.access_rule (
    grantee regrole NOT NULL,
    relation regclass NOT NULL REFERENCES health_pass.protected_table ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose <> '' AND octet_length(purpose) < 64),
    max_subjects integer CHECK (max_subjects > 0),
    per interval NOT NULL DEFAULT '1 hour' CHECK (per > interval '0'),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by name NOT NULL DEFAULT current_user,
    PRIMARY KEY (grantee, relation, purpose)
);
COMMENT ON TABLE health_pass.access_rule IS
    'who (grantee and the roles that have its privileges) may read which protected table, for which purpose, and how many distinct subjects per period';

CREATE VIEW health_pass.protected_tables AS
    SELECT p.relation, a.attname AS subject_column, p.protected_at, p.protected_by
    FROM health_pass.protected_table p
    LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid = p.relation AND a.attnum = p.subject_attnum AND NOT a.attisdropped;
COMMENT ON VIEW health_pass.protected_tables IS 'protected tables with their subject column by name';

CREATE FUNCTION health_pass._policy_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hp_policy_changed' LANGUAGE C;
COMMENT ON FUNCTION health_pass._policy_changed() IS
    'trigger: tell every backend to reload the access policy and re-plan the table';
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE ON health_pass.protected_table
    FOR EACH ROW EXECUTE FUNCTION health_pass._policy_changed();
CREATE TRIGGER policy_truncated AFTER TRUNCATE ON health_pass.protected_table
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON health_pass.access_rule
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._policy_changed();

CREATE FUNCTION health_pass._preloaded() RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_is_preloaded' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION health_pass._preloaded() IS
    'true when health_pass is in shared_preload_libraries (hooks and shared memory active)';

CREATE FUNCTION health_pass._require_admin() RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
                   WHERE e.extname = 'health_pass'
                     AND pg_catalog.pg_has_role(current_user, e.extowner, 'USAGE')) THEN
        RAISE EXCEPTION 'only a superuser or the owner of extension health_pass may change access rules'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;
COMMENT ON FUNCTION health_pass._require_admin() IS
    'raise unless the caller is a superuser or has the privileges of the extension owner';

CREATE FUNCTION health_pass.protect(tbl regclass, subject_column name) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    att smallint;
    kind "char";
BEGIN
    PERFORM health_pass._require_admin();
    IF NOT health_pass._preloaded() THEN
        RAISE EXCEPTION 'health_pass must be in shared_preload_libraries to protect a table'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add health_pass to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind IS DISTINCT FROM 'r' THEN
        RAISE EXCEPTION '% is not an ordinary table', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Protect each partition of a partitioned table.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = tbl) THEN
        RAISE EXCEPTION 'table % has inheritance children', tbl
            USING ERRCODE = 'wrong_object_type', HINT = 'Protect each child table.';
    END IF;
    SELECT a.attnum INTO att FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = subject_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF att IS NULL THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', subject_column, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    INSERT INTO health_pass.protected_table AS p (relation, subject_attnum) VALUES (tbl, att)
    ON CONFLICT (relation) DO UPDATE
        SET subject_attnum = EXCLUDED.subject_attnum, protected_at = now(), protected_by = current_user;
END $$;
COMMENT ON FUNCTION health_pass.protect(regclass, name) IS
    'route every non-superuser read of tbl through the access rules and the audit log; subject_column names whose data a row is';

CREATE FUNCTION health_pass.unprotect(tbl regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._require_admin();
    DELETE FROM health_pass.protected_table p WHERE p.relation = tbl;
    IF NOT FOUND THEN
        RAISE NOTICE 'table % was not protected', tbl;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.unprotect(regclass) IS
    'stop protecting tbl; its access rules are deleted, its audit records kept';

CREATE FUNCTION health_pass.allow(grantee name, tbl regclass, purpose text,
                                  max_subjects integer DEFAULT NULL,
                                  per interval DEFAULT '1 hour') RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._require_admin();
    IF NOT EXISTS (SELECT 1 FROM health_pass.protected_table p WHERE p.relation = tbl) THEN
        RAISE EXCEPTION 'table % is not protected', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call health_pass.protect() first.';
    END IF;
    INSERT INTO health_pass.access_rule AS r (grantee, relation, purpose, max_subjects, per)
    VALUES (allow.grantee::regrole, allow.tbl, allow.purpose, allow.max_subjects, allow.per)
    ON CONFLICT ON CONSTRAINT access_rule_pkey DO UPDATE
        SET max_subjects = EXCLUDED.max_subjects, per = EXCLUDED.per,
            created_at = now(), created_by = current_user;
END $$;
COMMENT ON FUNCTION health_pass.allow(name, regclass, text, integer, interval) IS
    'let grantee (and roles with its privileges) read tbl for purpose, at most max_subjects distinct subjects per period (NULL: no quota)';

CREATE FUNCTION health_pass.disallow(grantee name, tbl regclass, purpose text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._require_admin();
    DELETE FROM health_pass.access_rule r
    WHERE r.grantee = disallow.grantee::regrole AND r.relation = disallow.tbl
      AND r.purpose = disallow.purpose;
    IF NOT FOUND THEN
        RAISE NOTICE 'no rule for role % on % with purpose %', grantee, tbl, purpose;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.disallow(name, regclass, text) IS 'remove the rule (grantee, tbl, purpose)';

CREATE FUNCTION health_pass.break_glass(reason text) RETURNS void
    AS 'MODULE_PATHNAME', 'hp_break_glass' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION health_pass.break_glass(text) IS
    'read protected tables outside your rules until the end of this transaction, every read audited as break_glass with reason; needs EXECUTE, granted by the DBA';
REVOKE EXECUTE ON FUNCTION health_pass.break_glass(text) FROM PUBLIC;

-- Forget protected tables that are dropped (runs as the extension owner)
CREATE FUNCTION health_pass._forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM health_pass.protected_table p
    USING pg_catalog.pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.objsubid = 0 AND d.objid = p.relation::pg_catalog.oid;
END $$;
COMMENT ON FUNCTION health_pass._forget_dropped() IS
    'event trigger: a dropped table stops being protected, so its OID cannot protect a new table by accident';
REVOKE EXECUTE ON FUNCTION health_pass._forget_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER health_pass_forget_dropped ON sql_drop
    EXECUTE FUNCTION health_pass._forget_dropped();

-- The audit log ---------------------------------------------------------------

CREATE TABLE health_pass.audit_log (
    id bigint PRIMARY KEY,
    logged_at timestamptz NOT NULL,
    session_user_name name NOT NULL,
    current_user_name name NOT NULL,
    client_addr inet,
    application_name text,
    backend_pid integer NOT NULL,
    statement_id bigint NOT NULL,
    relation regclass NOT NULL,
    subject text,
    purpose text,
    outcome text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'quota_exceeded', 'break_glass')),
    reason text,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE INDEX audit_log_subject_idx ON health_pass.audit_log (relation, subject, id);
COMMENT ON TABLE health_pass.audit_log IS
    'one record per (statement, subject) read of a protected table, and one per denied statement; hash chains each record to the one before';

CREATE FUNCTION health_pass._audit_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hp_audit_guard' LANGUAGE C;
COMMENT ON FUNCTION health_pass._audit_guard() IS
    'trigger: audit_log changes are refused to every role but superusers';
CREATE TRIGGER audit_log_append_only BEFORE INSERT OR UPDATE OR DELETE ON health_pass.audit_log
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON health_pass.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_guard();

CREATE FUNCTION health_pass.audit_verify(OUT ok boolean, OUT checked bigint, OUT first_bad bigint)
    AS 'MODULE_PATHNAME', 'hp_audit_verify' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_verify() IS
    'walk the audit_log hash chain; first_bad is the id of the first record altered, reordered or deleted';

CREATE FUNCTION health_pass.audit_status(OUT writer_pid integer, OUT queued bigint,
                                         OUT written bigint, OUT batches bigint)
    AS 'MODULE_PATHNAME', 'hp_audit_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_status() IS
    'this database''s audit writer: its pid, records waiting, records and commits since the server started';

CREATE FUNCTION health_pass.who_read(tbl regclass, subject text)
    RETURNS SETOF health_pass.audit_log
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.* FROM health_pass.audit_log a
    WHERE a.relation = tbl AND a.subject = who_read.subject
    ORDER BY a.id DESC
$$;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject of one table, newest first';

-- Privileges: rules and audit are for the DBA and the auditors they grant -----

REVOKE ALL ON health_pass.protected_table, health_pass.access_rule,
              health_pass.protected_tables, health_pass.audit_log FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('health_pass.protected_table', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.access_rule', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.audit_log', '');

CREATE FUNCTION health_pass.audit_flush() RETURNS bigint
    AS 'MODULE_PATHNAME', 'hp_audit_flush' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_flush() IS
    'wait until every audit record queued in this database so far is committed (at most health_pass.audit_timeout)';
