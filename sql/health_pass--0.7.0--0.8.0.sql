-- health_pass 0.7.0 -> 0.8.0 (issue 13: the source layout).
-- The SQL objects are those of 0.7.0; the library moved into subsystem
-- folders and its own SQLSTATEs left the standard-reserved class HP
-- (HPA01 -> YHA01, HPQ01 -> YHQ01: CHANGELOG.md).  Only a comment names a
-- file that moved.
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.8.0'" to load this file. \quit

COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/audit/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser';
