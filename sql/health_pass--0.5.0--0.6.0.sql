-- health_pass 0.5.0 -> 0.6.0: the read gate holds on every path (issue 11)
\echo Use "ALTER EXTENSION health_pass UPDATE" to load this file. \quit

COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser';
