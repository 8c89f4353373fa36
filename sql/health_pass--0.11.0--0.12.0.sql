-- health_pass 0.11.0 -> 0.12.0 (issue 14 review): revocation entries imported
-- or revoked again get a later expiry; an export past the year 9999 stays
-- importable; revoked_by of an import names the calling role; a duplicate
-- signing key name is refused at the key stage.  The same objects as in
-- sql/health_pass.sql (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.12.0'" to load this file. \quit

COMMENT ON COLUMN health_pass.revocation.revoked_at IS 'when the entry was added, or last given a later expiry by revoke() or an import';
COMMENT ON COLUMN health_pass.revocation.revoked_by IS 'the role that called revoke() or revocation_import() (SET ROLE counts)';
COMMENT ON FUNCTION health_pass.revoke(health_pass.pass, text) IS
    'revoke a pass: add its hashes (source local) and, when the transaction commits, record it in the audit chain (outcome revoked, the UVCI as subject, the reason); returns the hashes added, or whose expiry it extended';

CREATE FUNCTION health_pass._revocation_caller() RETURNS name
    AS 'MODULE_PATHNAME', 'hp_revocation_caller' LANGUAGE C STABLE;
COMMENT ON FUNCTION health_pass._revocation_caller() IS
    'internal: the role that called revocation_import() (SET ROLE counts), which revoked_by and the audit record name';
REVOKE ALL ON FUNCTION health_pass._revocation_caller() FROM PUBLIC;

CREATE OR REPLACE FUNCTION health_pass.revocation_import(batch jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_country text;
    v_type text;
    v_kid bytea;
    v_expires timestamptz;
    v_entries jsonb;
    bad bigint;
    n integer;
    ext integer;
BEGIN
    IF batch IS NULL OR jsonb_typeof(batch) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'revocation batch: not a JSON object' USING ERRCODE = 'YHR01';
    END IF;
    IF jsonb_typeof(batch -> 'country') IS DISTINCT FROM 'string'
       OR (batch ->> 'country') !~ '^[A-Z]{2}$' THEN
        RAISE EXCEPTION 'revocation batch: "country" must be an ISO 3166 alpha-2 code' USING ERRCODE = 'YHR01';
    END IF;
    v_country := batch ->> 'country';
    IF jsonb_typeof(batch -> 'hashType') IS DISTINCT FROM 'string'
       OR (batch ->> 'hashType') NOT IN ('UCI', 'COUNTRYCODEUCI', 'SIGNATURE') THEN
        RAISE EXCEPTION 'revocation batch: "hashType" must be UCI, COUNTRYCODEUCI or SIGNATURE' USING ERRCODE = 'YHR01';
    END IF;
    v_type := batch ->> 'hashType';
    IF batch ? 'kid' AND jsonb_typeof(batch -> 'kid') IS DISTINCT FROM 'null' THEN
        IF jsonb_typeof(batch -> 'kid') IS DISTINCT FROM 'string'
           OR (batch ->> 'kid') !~ '^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$'
           OR (batch ->> 'kid') = '' THEN
            RAISE EXCEPTION 'revocation batch: "kid" must be base64' USING ERRCODE = 'YHR01';
        END IF;
        v_kid := decode(batch ->> 'kid', 'base64');
        IF octet_length(v_kid) > 64 THEN
            RAISE EXCEPTION 'revocation batch: "kid" must be at most 64 bytes' USING ERRCODE = 'YHR01';
        END IF;
    END IF;
    IF batch ? 'expires' AND jsonb_typeof(batch -> 'expires') IS DISTINCT FROM 'null' THEN
        IF jsonb_typeof(batch -> 'expires') IS DISTINCT FROM 'string'
           OR (batch ->> 'expires') !~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$' THEN
            RAISE EXCEPTION 'revocation batch: "expires" must be an ISO 8601 date-time with a time zone' USING ERRCODE = 'YHR01';
        END IF;
        BEGIN
            v_expires := (batch ->> 'expires')::timestamptz;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'revocation batch: "expires" is not a valid date-time: %', batch ->> 'expires'
                USING ERRCODE = 'YHR01';
        END;
    END IF;
    v_entries := batch -> 'entries';
    IF jsonb_typeof(v_entries) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'revocation batch: "entries" must be an array of 1 to 1000 entries' USING ERRCODE = 'YHR01';
    END IF;
    IF jsonb_array_length(v_entries) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'revocation batch: "entries" must be an array of 1 to 1000 entries' USING ERRCODE = 'YHR01';
    END IF;
    -- every entry first: a batch with one bad entry adds nothing
    SELECT min(ord) - 1 INTO bad
      FROM jsonb_array_elements(v_entries) WITH ORDINALITY AS x(e, ord)
     WHERE jsonb_typeof(e) IS DISTINCT FROM 'object'
        OR jsonb_typeof(e -> 'hash') IS DISTINCT FROM 'string'
        OR (e ->> 'hash') !~ '^[A-Za-z0-9+/]{21}[AQgw]==$';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'revocation batch: entries[%]: "hash" must be the base64 of 16 bytes', bad
            USING ERRCODE = 'YHR01';
    END IF;
    INSERT INTO health_pass.revocation (hash, hash_type, country, kid, expires, source, revoked_by)
    SELECT decode(e ->> 'hash', 'base64'), v_type, v_country, v_kid, v_expires, 'import', health_pass._revocation_caller()
      FROM jsonb_array_elements(v_entries) AS x(e)
     -- in the hashes' order: two imports of overlapping batches wait for
     -- each other's rows in one order, so they never deadlock
     ORDER BY 1
    ON CONFLICT (hash, hash_type) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- an entry already there keeps its row; a later expiry (or none) extends
    -- it, and revoked_at moves so that an export since then carries it again
    -- (a second statement: ON CONFLICT DO UPDATE would lock and write every
    -- row already there, and refuses a batch naming a hash twice)
    -- (its rows locked first in the hashes' order, as the INSERT's)
    UPDATE health_pass.revocation r SET expires = v_expires, revoked_at = now()
      FROM (SELECT l.hash AS h FROM health_pass.revocation l
             WHERE l.hash_type = v_type AND l.expires IS NOT NULL
               AND (v_expires IS NULL OR l.expires < v_expires)
               AND l.hash IN (SELECT decode(e ->> 'hash', 'base64') FROM jsonb_array_elements(v_entries) AS x(e))
             ORDER BY l.hash FOR UPDATE) b
     WHERE r.hash = b.h AND r.hash_type = v_type AND r.expires IS NOT NULL
       AND (v_expires IS NULL OR r.expires < v_expires);
    GET DIAGNOSTICS ext = ROW_COUNT;
    n := n + ext;
    -- recorded in the audit chain when the transaction commits, as revoke() is:
    -- the batch by its country, hash type and a digest of its sorted hashes
    PERFORM health_pass._revocation_imported(
        format('batch %s %s %s', v_country, v_type,
               left(encode(sha256(convert_to((SELECT string_agg(e ->> 'hash', ',' ORDER BY e ->> 'hash' COLLATE "C")
                                               FROM jsonb_array_elements(v_entries) AS x(e)), 'UTF8')), 'hex'), 32)),
        format('imported %s of %s entries, new or extended (kid %s, expires %s)', n, jsonb_array_length(v_entries),
               coalesce(translate(encode(v_kid, 'base64'), E'\n', ''), 'none'), coalesce(v_expires::text, 'never')));
    RETURN n;
END $$;
COMMENT ON FUNCTION health_pass.revocation_import(jsonb) IS
    'import an EU gateway revocation batch {country, expires, kid, hashType, entries: [{hash}]} (1..1000 entries, base64 hashes of 16 bytes); all or nothing, idempotent (an entry already there only gets a later expiry); returns the entries added or extended';

CREATE OR REPLACE FUNCTION health_pass.revocation_export(country text, since timestamptz DEFAULT '-infinity')
    RETURNS SETOF jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'country', $1,
               'expires', CASE WHEN r.expires IS NOT NULL THEN
                   to_char(r.expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                   || CASE WHEN date_trunc('second', r.expires) <> r.expires
                           THEN to_char(r.expires AT TIME ZONE 'UTC', '.US') ELSE '' END
                   || 'Z' END,
               'kid', translate(encode(r.kid, 'base64'), E'\n', ''),
               'hashType', r.hash_type,
               'entries', jsonb_agg(jsonb_build_object('hash', encode(r.hash, 'base64')) ORDER BY r.hash)))
      -- (an expiry past the year 9999, which ISO 8601's four-digit years and
      -- import cannot carry, is written as the last second of 9999)
      FROM (SELECT v.hash, v.hash_type, v.kid,
                   least(v.expires, timestamptz '9999-12-31 23:59:59+00') AS expires,
                   (row_number() OVER (PARTITION BY v.hash_type, v.kid,
                                            least(v.expires, timestamptz '9999-12-31 23:59:59+00')
                                      ORDER BY v.hash) - 1) / 1000 AS chunk
              FROM health_pass.revocation v
             WHERE v.country = $1 AND v.revoked_at >= coalesce($2, '-infinity')
               AND (v.expires IS NULL OR v.expires >= now())) r
     GROUP BY r.hash_type, r.kid, r.expires, r.chunk
     ORDER BY r.hash_type, r.kid, r.expires, r.chunk
$$;

CREATE OR REPLACE FUNCTION health_pass.signing_key_add(name text, certificate bytea, key_ref text) RETURNS bytea
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea;
    con text;
BEGIN
    PERFORM health_pass._signing_key_prove(signing_key_add.name, signing_key_add.certificate,
                                           signing_key_add.key_ref);
    BEGIN
        INSERT INTO health_pass.signing_key (name, certificate, key_ref)
            VALUES (signing_key_add.name, signing_key_add.certificate, signing_key_add.key_ref)
            RETURNING signing_key.kid INTO k;
    EXCEPTION WHEN unique_violation THEN
        GET STACKED DIAGNOSTICS con = CONSTRAINT_NAME;
        IF con = 'signing_key_name_key' THEN
            RAISE EXCEPTION 'key: a signing key named "%" already exists', signing_key_add.name
                USING ERRCODE = 'unique_violation';
        END IF;
        RAISE EXCEPTION 'key: %', SQLERRM USING ERRCODE = 'unique_violation';
    END;
    RETURN k;
END $$;

-- Existence probes through writes (docs/design/write_probes.md): the
-- write-probe trigger on every protected table, now and as protect() and the
-- event trigger for new partitions put it
-- A write whose key matches an existing row tells the writer that the row
-- exists: an internal BEFORE ROW trigger on each protected table looks for
-- such rows first and gates them as reads (docs/design/write_probes.md)
CREATE FUNCTION health_pass._write_probe() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'hp_write_probe';
COMMENT ON FUNCTION health_pass._write_probe() IS
    'internal trigger of a protected table: the rows a written row''s unique or exclusion key matches are read through the gate (audited, counted, refused when denied) before PostgreSQL''s own check tells the writer they exist';
CREATE FUNCTION health_pass._write_probe_trigger(tbl regclass, present boolean) RETURNS void
    LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'hp_write_probe_trigger';
COMMENT ON FUNCTION health_pass._write_probe_trigger(regclass, boolean) IS
    'put the internal write-probe trigger on an ordinary table, or take it off; used by protect(), unprotect() and the event trigger that protects new partitions';
-- pg_dump keeps protected_table's rows but not internal triggers: a row added
-- (by protect(), or by a restore's COPY) puts the trigger on its table
CREATE FUNCTION health_pass._protected_table_added() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._write_probe_trigger(NEW.relation, true);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION health_pass._protected_table_added() IS
    'trigger of protected_table: a table added to it (protect(), or a restored dump) gets its write-probe trigger';
CREATE TRIGGER write_probe_trigger AFTER INSERT ON health_pass.protected_table
    FOR EACH ROW EXECUTE FUNCTION health_pass._protected_table_added();

CREATE OR REPLACE FUNCTION health_pass._protect_one(tbl regclass, subject_column name, through regclass)
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
    PERFORM health_pass._write_probe_trigger(tbl, true);
END $$;

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
        PERFORM health_pass._write_probe_trigger(r.relation, false);
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RAISE NOTICE 'table % was not protected', tbl;
    END IF;
END $$;
REVOKE ALL ON FUNCTION health_pass._write_probe() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._write_probe_trigger(regclass, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._protected_table_added() FROM PUBLIC;
SELECT health_pass._write_probe_trigger(p.relation, true) FROM health_pass.protected_table p;

-- revocation_purge() refuses a time later than now: it deleted revocations in
-- force (a red-team pass)
CREATE OR REPLACE FUNCTION health_pass.revocation_purge(before timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    -- only entries that no longer count: a later time would delete
    -- revocations in force (and their passes would check ok again)
    IF before > now() THEN
        RAISE EXCEPTION 'revocation purge: % is later than now: entries that have not expired still count and are not purged', before
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Purge entries that expired before now (the default), or an earlier time.';
    END IF;
    DELETE FROM health_pass.revocation WHERE expires < coalesce(before, now());
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION health_pass.revocation_purge(timestamptz) IS
    'delete the entries that expired before a time (default now, never later); returns how many';
