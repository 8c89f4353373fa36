/* health_pass 0.6.0 -> 0.7.0: quotas and the audit writer stand up to crashes, floods and odd data */

\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.7.0'" to load this file. \quit

-- The server must run the 0.7.0 library (restart after installing it).

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
