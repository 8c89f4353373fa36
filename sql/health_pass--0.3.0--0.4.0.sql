/* health_pass 0.3.0 -> 0.4.0: subject values stay out of pg_statistic */

\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.4.0'" to load this file. \quit

-- ANALYZE keeps a sample of every column's values (most common values,
-- histogram bounds) and pg_stats shows it to any role with SELECT on the
-- column, past the rules and the audit log.  A protected table's subject
-- column, and the same column of the tables it inherits from (their
-- statistics cover its rows), get statistics target 0 and lose what ANALYZE
-- had stored.
CREATE FUNCTION health_pass._subject_statistics(tbl regclass, attnum smallint, hide boolean)
    RETURNS void LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'hp_subject_statistics';
REVOKE ALL ON FUNCTION health_pass._subject_statistics(regclass, smallint, boolean) FROM PUBLIC;
COMMENT ON FUNCTION health_pass._subject_statistics(regclass, smallint, boolean) IS
    'hide (statistics target 0, stored statistics deleted) or restore (default target) the statistics of one column; used by protect() and unprotect()';

CREATE FUNCTION health_pass._hide_subject_statistics(tbl regclass, att smallint) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._require_admin();
    PERFORM health_pass._subject_statistics(up.rel, a.attnum, true)
    FROM (WITH RECURSIVE parents(rel) AS (
              SELECT tbl::oid
              UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN parents p ON i.inhrelid = p.rel)
          SELECT rel FROM parents) up
    JOIN pg_catalog.pg_attribute a ON a.attrelid = up.rel
    WHERE a.attname = (SELECT s.attname FROM pg_catalog.pg_attribute s WHERE s.attrelid = tbl AND s.attnum = att)
      AND a.attnum > 0 AND NOT a.attisdropped;
END $$;
REVOKE ALL ON FUNCTION health_pass._hide_subject_statistics(regclass, smallint) FROM PUBLIC;
COMMENT ON FUNCTION health_pass._hide_subject_statistics(regclass, smallint) IS
    'hide the statistics of column att of tbl and of the same column of every table tbl inherits from';

CREATE OR REPLACE FUNCTION health_pass.protect(tbl regclass, subject_column name) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    att smallint;
    old smallint;
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
    SELECT p.subject_attnum INTO old FROM health_pass.protected_table p WHERE p.relation = tbl;
    INSERT INTO health_pass.protected_table AS p (relation, subject_attnum) VALUES (tbl, att)
    ON CONFLICT (relation) DO UPDATE
        SET subject_attnum = EXCLUDED.subject_attnum, protected_at = now(), protected_by = current_user;
    IF old IS NOT NULL AND old <> att THEN
        PERFORM health_pass._subject_statistics(tbl, old, false);
    END IF;
    PERFORM health_pass._hide_subject_statistics(tbl, att);
END $$;
COMMENT ON FUNCTION health_pass.protect(regclass, name) IS
    'route every non-superuser read of tbl through the access rules and the audit log; subject_column names whose data a row is, and its values are kept out of pg_statistic';

CREATE OR REPLACE FUNCTION health_pass.unprotect(tbl regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    att smallint;
BEGIN
    PERFORM health_pass._require_admin();
    DELETE FROM health_pass.protected_table p WHERE p.relation = tbl RETURNING p.subject_attnum INTO att;
    IF NOT FOUND THEN
        RAISE NOTICE 'table % was not protected', tbl;
    ELSE
        PERFORM health_pass._subject_statistics(tbl, att, false);
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.unprotect(regclass) IS
    'stop protecting tbl; its access rules are deleted, its audit records kept, its subject column gets the default statistics target back';

-- tables protected before this version
SELECT health_pass._hide_subject_statistics(p.relation, p.subject_attnum)
FROM health_pass.protected_table p;
