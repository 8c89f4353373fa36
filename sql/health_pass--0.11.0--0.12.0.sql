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
