-- health_pass 0.8.0 -> 0.9.0 (issue 14): issuing and revoking passes, the
-- registry's side.  The same objects as sections 6 and 7 of
-- sql/health_pass.sql (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.9.0'" to load this file. \quit

COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/audit/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser, 5 issued, 6 revoked';

-- 6. Revocation ==============================================================

-- 7. Signing keys and issuing passes =========================================
