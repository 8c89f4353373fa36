/* health_pass 0.6.0 -> 0.7.0: quotas and the audit writer stand up to crashes, floods and odd data */

\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.7.0'" to load this file. \quit

-- The server must run the 0.7.0 library (restart after installing it).

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
