-- health_pass 0.5.0 -> 0.6.0: the read gate holds on every path (issue 11)
\echo Use "ALTER EXTENSION health_pass UPDATE" to load this file. \quit

COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser';

-- Owner DDL, statistics and partitions (issue 11, items 3 to 5; design in
-- docs/design/ddl.md) ---------------------------------------------------------

-- What protect() found, to restore at unprotect(), and the table a partition
-- or inheritance child is protected through (its rules apply to it too)
ALTER TABLE health_pass.protected_table
    ADD COLUMN rls_enabled_before boolean NOT NULL DEFAULT false,
    ADD COLUMN rls_forced_before boolean NOT NULL DEFAULT false,
    ADD COLUMN protected_through regclass;
COMMENT ON COLUMN health_pass.protected_table.rls_enabled_before IS
    'row security was enabled before protect(); false: health_pass supplies a permissive policy true';
COMMENT ON COLUMN health_pass.protected_table.rls_forced_before IS
    'row security was forced before protect(); unprotect() restores both flags';
COMMENT ON COLUMN health_pass.protected_table.protected_through IS
    'the protected table this partition or inheritance child was protected through (its rules apply), NULL when protected itself';

CREATE OR REPLACE VIEW health_pass.protected_tables AS
    SELECT p.relation, a.attname AS subject_column, p.protected_at, p.protected_by,
           p.protected_through
    FROM health_pass.protected_table p
    LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid = p.relation AND a.attnum = p.subject_attnum AND NOT a.attisdropped;

CREATE FUNCTION health_pass._row_security(tbl regclass, enable boolean, force boolean)
    RETURNS void LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'hp_row_security';
REVOKE ALL ON FUNCTION health_pass._row_security(regclass, boolean, boolean) FROM PUBLIC;
COMMENT ON FUNCTION health_pass._row_security(regclass, boolean, boolean) IS
    'set a table''s row security flags (enable, force) whoever owns it; used by protect() and unprotect()';

CREATE FUNCTION health_pass._protect_blockers(tbl regclass) RETURNS SETOF text
    LANGUAGE C STRICT STABLE AS 'MODULE_PATHNAME', 'hp_protect_blockers';
COMMENT ON FUNCTION health_pass._protect_blockers(regclass) IS
    'objects of tbl that would run user code over its rows outside the gate: triggers, rules, expression indexes, expression statistics, and partial indexes, CHECK constraints, generated columns, policies or a partition key with a non-leakproof function';

-- Protect one table (the root or one of its descendants): no checks of the
-- caller, protect() and the event trigger do them
CREATE FUNCTION health_pass._protect_one(tbl regclass, subject_column name, through regclass)
    RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    att smallint;
    old smallint;
    kind "char";
    blockers text;
    rls boolean;
    forced boolean;
BEGIN
    SELECT c.relkind, c.relrowsecurity, c.relforcerowsecurity INTO kind, rls, forced
    FROM pg_catalog.pg_class c WHERE c.oid = tbl;
    IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not an ordinary table', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = CASE WHEN through IS NOT NULL
                              THEN pg_catalog.format('It would be a partition or child of protected table %s.', through)
                              ELSE 'Protect an ordinary or a partitioned table.' END;
    END IF;
    SELECT pg_catalog.string_agg(b, ', ') INTO blockers FROM health_pass._protect_blockers(tbl) b;
    IF blockers IS NOT NULL THEN
        RAISE EXCEPTION 'table % cannot be protected: % would run over its rows outside the gate', tbl, blockers
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Drop them, or have a superuser decide (see docs/design/ddl.md).';
    END IF;
    SELECT a.attnum INTO att FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = subject_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF att IS NULL THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', subject_column, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT p.subject_attnum INTO old FROM health_pass.protected_table p WHERE p.relation = tbl;
    INSERT INTO health_pass.protected_table AS p
        (relation, subject_attnum, rls_enabled_before, rls_forced_before, protected_through)
    VALUES (tbl, att, rls, forced, through)
    ON CONFLICT (relation) DO UPDATE
        SET subject_attnum = EXCLUDED.subject_attnum, protected_at = now(),
            protected_by = current_user, protected_through = EXCLUDED.protected_through;
    IF old IS NOT NULL AND old <> att THEN
        PERFORM health_pass._subject_statistics(tbl, old, false);
    END IF;
    PERFORM health_pass._hide_subject_statistics(tbl, att);
    PERFORM health_pass._row_security(tbl, true, true);
END $$;
REVOKE ALL ON FUNCTION health_pass._protect_one(regclass, name, regclass) FROM PUBLIC;
COMMENT ON FUNCTION health_pass._protect_one(regclass, name, regclass) IS
    'protect one table: refuse it if it has blockers, record it, hide its subject statistics, enable and force row security';

CREATE OR REPLACE FUNCTION health_pass.protect(tbl regclass, subject_column name) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parent regclass;
    child regclass;
    root regclass;
BEGIN
    PERFORM health_pass._require_admin();
    IF NOT health_pass._preloaded() THEN
        RAISE EXCEPTION 'health_pass must be in shared_preload_libraries to protect a table'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add health_pass to shared_preload_libraries in postgresql.conf and restart the server.';
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

CREATE OR REPLACE FUNCTION health_pass.unprotect(tbl regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parent regclass;
    r record;
    n integer := 0;
BEGIN
    PERFORM health_pass._require_admin();
    SELECT i.inhparent::regclass INTO parent FROM pg_catalog.pg_inherits i
    JOIN health_pass.protected_table p ON p.relation = i.inhparent
    WHERE i.inhrelid = tbl LIMIT 1;
    IF parent IS NOT NULL THEN
        RAISE EXCEPTION 'table % is a partition or child of protected table %', tbl, parent
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Unprotect the root of the tree: that ends protection of every partition and child.';
    END IF;
    FOR r IN
        WITH RECURSIVE d(rel) AS (
            SELECT tbl::oid
            UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.rel)
        DELETE FROM health_pass.protected_table p USING d WHERE p.relation = d.rel
        RETURNING p.relation, p.subject_attnum, p.rls_enabled_before, p.rls_forced_before
    LOOP
        PERFORM health_pass._subject_statistics(r.relation, r.subject_attnum, false);
        PERFORM health_pass._row_security(r.relation, r.rls_enabled_before, r.rls_forced_before);
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RAISE NOTICE 'table % was not protected', tbl;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.unprotect(regclass) IS
    'stop protecting tbl and its partitions and children; their rules are deleted, audit records kept, subject statistics target and row security flags restored';

-- New partitions and children of a protected table are protected whoever
-- creates them: CREATE TABLE ... PARTITION OF / INHERITS, ATTACH PARTITION.
-- Runs as the extension owner; a child that cannot be protected (blockers,
-- not a table) makes the command fail.
CREATE FUNCTION health_pass._protect_new_children() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
    touched oid[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM health_pass.protected_table) THEN
        RETURN;
    END IF;
    -- the tables this command created or altered, and their descendants
    -- (ATTACH PARTITION reports the parent)
    WITH RECURSIVE t(rel) AS (
        SELECT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c
        WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.objsubid = 0
        UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN t ON i.inhparent = t.rel)
    SELECT pg_catalog.array_agg(t.rel) INTO touched FROM t;
    IF touched IS NULL THEN
        RETURN;
    END IF;
    LOOP
        SELECT i.inhrelid::regclass AS child, a.attname, coalesce(p.protected_through, p.relation) AS root
        INTO r
        FROM health_pass.protected_table p
        JOIN pg_catalog.pg_inherits i ON i.inhparent = p.relation
        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.relation AND a.attnum = p.subject_attnum
        WHERE i.inhrelid = ANY (touched)
          AND NOT EXISTS (SELECT 1 FROM health_pass.protected_table c WHERE c.relation = i.inhrelid)
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        PERFORM health_pass._protect_one(r.child, r.attname, r.root);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION health_pass._protect_new_children() FROM PUBLIC;
COMMENT ON FUNCTION health_pass._protect_new_children() IS
    'event trigger: protect every new partition or child of a protected table, finding its subject column by name';
CREATE EVENT TRIGGER health_pass_protect_new_children ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE FOREIGN TABLE')
    EXECUTE FUNCTION health_pass._protect_new_children();

-- tables protected before this version: remember their row security, then
-- force it (their partitions stay as protected before: protect the root)
UPDATE health_pass.protected_table p
SET rls_enabled_before = c.relrowsecurity, rls_forced_before = c.relforcerowsecurity
FROM pg_catalog.pg_class c WHERE c.oid = p.relation;
SELECT health_pass._row_security(p.relation, true, true) FROM health_pass.protected_table p;

-- who_read() of a partitioned or parent table also finds the reads of its
-- partitions and children (the gate records the table it scanned)
CREATE OR REPLACE FUNCTION health_pass.who_read(tbl regclass, subject text)
    RETURNS SETOF health_pass.audit_log
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    rels regclass[];
BEGIN
    WITH RECURSIVE tree(rel) AS (
        SELECT tbl::oid
        UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.rel)
    SELECT pg_catalog.array_agg(t.rel::regclass) INTO rels FROM tree t;
    IF pg_catalog.cardinality(rels) = 1 THEN
        RETURN QUERY
        SELECT r.* FROM health_pass.audit_block b
        CROSS JOIN LATERAL health_pass._audit_records(b.records) r
        WHERE health_pass._audit_may_hold(b.subjects, tbl, who_read.subject)
          AND r.relation = tbl AND r.subject = who_read.subject
        ORDER BY r.id DESC;
    ELSE
        RETURN QUERY
        SELECT r.* FROM health_pass.audit_block b
        CROSS JOIN LATERAL health_pass._audit_records(b.records) r
        WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(rels) t(rel)
                      WHERE health_pass._audit_may_hold(b.subjects, t.rel, who_read.subject))
          AND r.relation = ANY (rels) AND r.subject = who_read.subject
        ORDER BY r.id DESC;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject of one table and of its partitions and children, newest first (needs SELECT on audit_block)';
