-- health_pass 0.8.0 -> 0.9.0 (issue 14): issuing and revoking passes, the
-- registry's side.  The same objects as sections 6 and 7 of
-- sql/health_pass.sql (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.9.0'" to load this file. \quit

COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/audit/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser, 5 issued, 6 revoked';

-- 6. Revocation ==============================================================

-- Revoked passes, by the EU gateway's hashes (docs/design/revocation.md):
-- check() reads this table under the statement's snapshot, through its
-- primary key, and says "revoked" when one of the pass's three hashes is here
-- and has not expired.  revoke() adds a pass's hashes (audited);
-- revocation_import() adds a gateway batch; plain SQL works too (the owner).
CREATE TABLE health_pass.revocation (
    hash        bytea NOT NULL CHECK (octet_length(hash) = 16),
    hash_type   text NOT NULL CHECK (hash_type IN ('UCI', 'COUNTRYCODEUCI', 'SIGNATURE')),
    country     text CHECK (country ~ '^[A-Z]{2}$'),
    kid         bytea,
    expires     timestamptz,
    reason      text,
    source      text NOT NULL DEFAULT 'manual' CHECK (source IN ('local', 'import', 'manual')),
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    revoked_by  name NOT NULL DEFAULT current_user,
    PRIMARY KEY (hash, hash_type)
);
-- check() probes this hash index once per hash of a pass (the primary key
-- keeps entries unique for the idempotent import; export reads by country)
CREATE INDEX revocation_hash_idx ON health_pass.revocation USING hash (hash);
CREATE INDEX revocation_country_idx ON health_pass.revocation (country, revoked_at);
COMMENT ON TABLE health_pass.revocation IS
    'revoked passes by EU gateway hash (SHA-256 truncated to 16 bytes); check() reports revoked while an entry has not expired';
COMMENT ON COLUMN health_pass.revocation.hash IS 'first 16 bytes of SHA-256 of: the UVCI (UCI); iss followed by the UVCI (COUNTRYCODEUCI); the COSE signature, r only for ES256 (SIGNATURE)';
COMMENT ON COLUMN health_pass.revocation.hash_type IS 'UCI, COUNTRYCODEUCI or SIGNATURE';
COMMENT ON COLUMN health_pass.revocation.country IS 'issuing country (ISO 3166 alpha-2): the batch''s country, or the pass''s iss';
COMMENT ON COLUMN health_pass.revocation.kid IS 'kid of the DSC that signed the pass (the batch''s kid)';
COMMENT ON COLUMN health_pass.revocation.expires IS 'the entry stops counting after this (the pass''s exp, the batch''s expires); NULL: never';
COMMENT ON COLUMN health_pass.revocation.reason IS 'why, as given to revoke(); NULL for imported entries';
COMMENT ON COLUMN health_pass.revocation.source IS 'local (revoke()), import (revocation_import()) or manual (plain SQL)';
COMMENT ON COLUMN health_pass.revocation.revoked_at IS 'when the entry was added';
COMMENT ON COLUMN health_pass.revocation.revoked_by IS 'the role that called revoke(), or the session user of the import';

CREATE FUNCTION health_pass.revocation_hashes(p health_pass.pass,
    OUT uci bytea, OUT countrycodeuci bytea, OUT signature bytea)
    AS 'MODULE_PATHNAME', 'hp_revocation_hashes_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.revocation_hashes(health_pass.pass) IS
    'the EU gateway revocation hashes of a pass (16 bytes each): UCI and COUNTRYCODEUCI (NULL without a ci, or without iss), SIGNATURE';

CREATE FUNCTION health_pass.revoke(p health_pass.pass, reason text) RETURNS integer
    AS 'MODULE_PATHNAME', 'hp_revoke' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass.revoke(health_pass.pass, text) IS
    'revoke a pass: add its hashes (source local) and, when the transaction commits, record it in the audit chain (outcome revoked, the UVCI as subject, the reason); returns the hashes added';

CREATE FUNCTION health_pass.revocation_import(batch jsonb) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_country text;
    v_type text;
    v_kid bytea;
    v_expires timestamptz;
    v_entries jsonb;
    bad bigint;
    n integer;
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
    SELECT decode(e ->> 'hash', 'base64'), v_type, v_country, v_kid, v_expires, 'import', session_user
      FROM jsonb_array_elements(v_entries) AS x(e)
    ON CONFLICT (hash, hash_type) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION health_pass.revocation_import(jsonb) IS
    'import an EU gateway revocation batch {country, expires, kid, hashType, entries: [{hash}]} (1..1000 entries, base64 hashes of 16 bytes); all or nothing, idempotent; returns the entries added';

CREATE FUNCTION health_pass.revocation_export(country text, since timestamptz DEFAULT '-infinity')
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
      FROM (SELECT v.hash, v.hash_type, v.kid, v.expires,
                   (row_number() OVER (PARTITION BY v.hash_type, v.kid, v.expires ORDER BY v.hash) - 1) / 1000 AS chunk
              FROM health_pass.revocation v
             WHERE v.country = $1 AND v.revoked_at >= coalesce($2, '-infinity')
               AND (v.expires IS NULL OR v.expires >= now())) r
     GROUP BY r.hash_type, r.kid, r.expires, r.chunk
     ORDER BY r.hash_type, r.kid, r.expires, r.chunk
$$;
COMMENT ON FUNCTION health_pass.revocation_export(text, timestamptz) IS
    'the unexpired entries of one country added since a time, as EU gateway revocation batches of at most 1000 entries (one per hash type, kid and expiry)';

CREATE FUNCTION health_pass.revocation_purge(before timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM health_pass.revocation WHERE expires < coalesce(before, now());
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION health_pass.revocation_purge(timestamptz) IS
    'delete the entries that expired before a time (default now); returns how many';

-- A DSC marked revoked (e.g. its key leaked): every pass it signed is
-- key_revoked, whatever its iat.
ALTER TABLE health_pass.trust_list ADD COLUMN revoked_at timestamptz;
ALTER TABLE health_pass.trust_list ADD COLUMN revocation_reason text;
COMMENT ON COLUMN health_pass.trust_list.revoked_at IS 'set: the DSC is revoked and every pass it signed is key_revoked, whatever its iat';
COMMENT ON COLUMN health_pass.trust_list.revocation_reason IS 'why the DSC was revoked';

COMMENT ON FUNCTION health_pass.check(health_pass.pass, timestamptz) IS
    'verify against the trust list and the revocations: signature, DSC revoked, pass revoked, DSC validity and key usage, iat/exp at the given time';

-- Revoking, importing, exporting and purging are for superusers and the
-- roles the DBA grants them; the table is not PUBLIC (reasons may be
-- personal); the hashes of a pass are anyone's to compute.
REVOKE ALL ON health_pass.revocation FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.revoke(health_pass.pass, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.revocation_import(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.revocation_export(text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.revocation_purge(timestamptz) FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_pass.revocation', '');

-- 7. Signing keys and issuing passes =========================================
