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

CREATE FUNCTION health_pass._revocation_imported(subject text, reason text) RETURNS void
    AS 'MODULE_PATHNAME', 'hp_revocation_imported' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass._revocation_imported(text, text) IS
    'internal: revocation_import() records its batch in the audit chain at commit';
REVOKE ALL ON FUNCTION health_pass._revocation_imported(text, text) FROM PUBLIC;

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
    SELECT decode(e ->> 'hash', 'base64'), v_type, v_country, v_kid, v_expires, 'import', session_user
      FROM jsonb_array_elements(v_entries) AS x(e)
    ON CONFLICT (hash, hash_type) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- recorded in the audit chain when the transaction commits, as revoke() is:
    -- the batch by its country, hash type and a digest of its sorted hashes
    PERFORM health_pass._revocation_imported(
        format('batch %s %s %s', v_country, v_type,
               left(encode(sha256(convert_to((SELECT string_agg(e ->> 'hash', ',' ORDER BY e ->> 'hash' COLLATE "C")
                                               FROM jsonb_array_elements(v_entries) AS x(e)), 'UTF8')), 'hex'), 32)),
        format('imported %s of %s entries (kid %s, expires %s)', n, jsonb_array_length(v_entries),
               coalesce(translate(encode(v_kid, 'base64'), E'\n', ''), 'none'), coalesce(v_expires::text, 'never')));
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
-- The trust list is the DBA's data like the revocations (revoked DSCs among
-- it): pg_dump keeps its rows and its identity sequence (up to 0.8.0 it kept
-- neither, so a restored database trusted nobody)
SELECT pg_catalog.pg_extension_config_dump('health_pass.trust_list', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.trust_list_id_seq', '');

-- 7. Signing keys and issuing passes =========================================

-- Signing keys ---------------------------------------------------------------

-- A registry's document signer keys (docs/design/signing.md).  A row holds the
-- DSC and a reference to the private key, never the key: key_ref is
-- 'file:NAME' (a PEM file under the superuser-only setting
-- health_pass.key_directory) or a pkcs11: URI (RFC 7512) without PIN or module
-- (the settings health_pass.pkcs11_module and health_pass.pkcs11_pin_file give
-- those).  The trigger fills kid (as trust_add() derives it), alg and the
-- certificate's facts; signing_key_add() also proves the private key is the
-- certificate's.  A backend proves it again the first time it uses the key.
CREATE FUNCTION health_pass._signing_key_alg(certificate bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_signing_key_alg' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION health_pass._signing_key_alg(bytea) IS
    'ES256 for an EC P-256 DSC, PS256 for RSA of 2048 bits or more; raises for any other key';
CREATE FUNCTION health_pass._signing_key_ref(key_ref text) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_signing_key_ref' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION health_pass._signing_key_ref(text) IS
    'key_ref unchanged when its form is allowed (file:NAME inside key_directory, a pkcs11: URI without PIN or module); raises otherwise';
CREATE FUNCTION health_pass._signing_key_prove(name text, certificate bytea, key_ref text) RETURNS void
    AS 'MODULE_PATHNAME', 'hp_signing_key_prove' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass._signing_key_prove(text, bytea, text) IS
    'superusers: the private key is reachable and signs a random challenge that verifies with the certificate';

CREATE TABLE health_pass.signing_key (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text COLLATE "C" NOT NULL CONSTRAINT signing_key_name_key UNIQUE,
    kid          bytea NOT NULL,
    alg          text NOT NULL CHECK (alg IN ('ES256', 'PS256')),
    certificate  bytea NOT NULL,
    key_ref      text NOT NULL,
    country      text,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    key_usage    text[] NOT NULL CHECK (key_usage <@ ARRAY['test', 'vaccination', 'recovery']),
    added_at     timestamptz NOT NULL DEFAULT now(),
    added_by     name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE health_pass.signing_key IS
    'document signer keys this registry signs passes with: the DSC and where its private key is (never the key); add with signing_key_add()';
COMMENT ON COLUMN health_pass.signing_key.name IS 'the name issue() and grant_signing() take';
COMMENT ON COLUMN health_pass.signing_key.kid IS 'first 8 bytes of SHA-256 of the DER, as trust_add() derives it';
COMMENT ON COLUMN health_pass.signing_key.alg IS 'ES256 (EC P-256) or PS256 (RSA), from the certificate''s key';
COMMENT ON COLUMN health_pass.signing_key.certificate IS 'the DSC, DER';
COMMENT ON COLUMN health_pass.signing_key.key_ref IS
    'file:NAME under health_pass.key_directory, or a pkcs11: URI (RFC 7512) without pin-value, pin-source, module-name or module-path';
COMMENT ON COLUMN health_pass.signing_key.country IS 'the DSC subject''s C: the iss of passes it signs';
COMMENT ON COLUMN health_pass.signing_key.key_usage IS 'kinds this DSC may sign (its DCC extended key usage; all when it names none)';

CREATE FUNCTION health_pass.signing_key_fill() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    info record;
BEGIN
    NEW.key_ref := health_pass._signing_key_ref(NEW.key_ref);
    NEW.alg := health_pass._signing_key_alg(NEW.certificate);
    info := health_pass.certificate_info(NEW.certificate);
    NEW.kid := substr(sha256(NEW.certificate), 1, 8);
    NEW.country := info.country;
    NEW.valid_from := info.not_before;
    NEW.valid_until := info.not_after;
    NEW.key_usage := coalesce(info.key_usage, ARRAY['test', 'vaccination', 'recovery']);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION health_pass.signing_key_fill() IS
    'trigger: checks key_ref''s form and the DSC''s key, and sets kid, alg, country, validity and key usage from the certificate';
CREATE TRIGGER signing_key_fill BEFORE INSERT OR UPDATE ON health_pass.signing_key
    FOR EACH ROW EXECUTE FUNCTION health_pass.signing_key_fill();

CREATE FUNCTION health_pass.signing_key_add(name text, certificate bytea, key_ref text) RETURNS bytea
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea;
BEGIN
    PERFORM health_pass._signing_key_prove(signing_key_add.name, signing_key_add.certificate,
                                           signing_key_add.key_ref);
    INSERT INTO health_pass.signing_key (name, certificate, key_ref)
        VALUES (signing_key_add.name, signing_key_add.certificate, signing_key_add.key_ref)
        RETURNING signing_key.kid INTO k;
    RETURN k;
END $$;
COMMENT ON FUNCTION health_pass.signing_key_add(text, bytea, text) IS
    'superusers: register a DSC (DER) and its private key (file:NAME or a pkcs11: URI), proven to match; returns the kid';

-- Who may sign with which key: a superuser grants a role a key; a role signs
-- with it when it has the privileges of a granted role (itself, or a role it
-- is a member of with INHERIT) that still has the name it was granted under.
-- Superusers sign with any key.  Checked on every signing call.
CREATE TABLE health_pass.signing_grant (
    key_id      bigint NOT NULL REFERENCES health_pass.signing_key (id) ON DELETE CASCADE,
    role        regrole NOT NULL,
    role_name   name NOT NULL,
    granted_by  name NOT NULL DEFAULT current_user,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT signing_grant_pkey PRIMARY KEY (key_id, role)
);
COMMENT ON TABLE health_pass.signing_grant IS
    'roles that may sign with a key (grant_signing(), revoke_signing()); checked on every signing call';
COMMENT ON COLUMN health_pass.signing_grant.role_name IS
    'the role''s name when granted: a renamed or dropped role''s grant no longer applies';

CREATE FUNCTION health_pass.grant_signing(role regrole, key text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bigint;
BEGIN
    IF current_setting('is_superuser') <> 'on' THEN
        RAISE EXCEPTION 'key: only a superuser may grant signing' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT s.id INTO k FROM health_pass.signing_key s WHERE s.name = grant_signing.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key: signing key "%" does not exist', grant_signing.key
            USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO health_pass.signing_grant AS g (key_id, role, role_name)
        SELECT k, r.oid, r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = grant_signing.role
        ON CONFLICT ON CONSTRAINT signing_grant_pkey
        DO UPDATE SET role_name = excluded.role_name, granted_by = excluded.granted_by,
                      granted_at = excluded.granted_at;
END $$;
COMMENT ON FUNCTION health_pass.grant_signing(regrole, text) IS
    'superusers: let a role (and the roles that inherit its privileges) sign with a key';

CREATE FUNCTION health_pass.revoke_signing(role regrole, key text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_setting('is_superuser') <> 'on' THEN
        RAISE EXCEPTION 'key: only a superuser may revoke signing' USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM health_pass.signing_grant g
     USING health_pass.signing_key s
     WHERE g.key_id = s.id AND s.name = revoke_signing.key AND g.role = revoke_signing.role;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION health_pass.revoke_signing(regrole, text) IS
    'superusers: withdraw a role''s grant on a key (effective from the next signing call); true when there was one';

CREATE FUNCTION health_pass.signer_check(key text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hp_signer_check' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass.signer_check(text) IS
    'open a key as issue() would (the caller''s grant, the private key reachable and the certificate''s) and return its kid; signs nothing';

CREATE FUNCTION health_pass._sign(key text, data bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hp_signing_key_sign' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass._sign(text, bytea) IS
    'superusers, tests and benchmarks: the COSE signature (ES256 r||s, PS256) of SHA-256(data) with a key';

-- Signers see which keys exist, never key_ref; grants and the internal
-- functions are for superusers.
REVOKE ALL ON health_pass.signing_key, health_pass.signing_grant FROM PUBLIC;
GRANT SELECT (id, name, kid, alg, certificate, country, valid_from, valid_until, key_usage)
    ON health_pass.signing_key TO PUBLIC;
REVOKE ALL ON FUNCTION health_pass._signing_key_prove(text, bytea, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass.signing_key_add(text, bytea, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass.grant_signing(regrole, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass.revoke_signing(regrole, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._sign(text, bytea) FROM PUBLIC;
-- pg_dump keeps the keys (references, never key material) and the grants
SELECT pg_catalog.pg_extension_config_dump('health_pass.signing_key', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.signing_grant', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.signing_key_id_seq', '');
-- Issuing passes -------------------------------------------------------------

-- schema_errors() of a jsonb payload, which schema_errors(pass) now calls
CREATE FUNCTION health_pass.schema_errors(payload jsonb) RETURNS text[]
    AS 'MODULE_PATHNAME', 'hp_schema_errors_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.schema_errors(jsonb) IS
    'a payload (as issue() takes it) checked against the DCC JSON schema 1.3 rules; empty when valid';
CREATE OR REPLACE FUNCTION health_pass.schema_errors(p health_pass.pass) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN health_pass.schema_errors(health_pass.payload(p));
END $$;


-- uvci(): a new identifier, URN:UVCI:01:<country>:<issuer>/<opaque>#<check>
-- (eHealth Network guidelines, Annex 2, option 3; check: Luhn mod 38);
-- opaque NULL: 128 random bits (docs/design/issuing.md)
CREATE FUNCTION health_pass.uvci(country text, issuer text, opaque text DEFAULT NULL,
                                 checksum boolean DEFAULT true) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_uvci_new' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.uvci(text, text, text, boolean) IS
    'a new UVCI URN:UVCI:01:<country>:<issuer>/<opaque>#<Luhn mod 38 check>; opaque NULL: 128 random bits';

-- issue(): sign a pass with a signing key the caller is granted; the
-- issuance is recorded in the audit chain (outcome issued, subject the
-- UVCI) and the pass reaches no client before that record is durable
CREATE FUNCTION health_pass.issue(payload jsonb, key text,
                                  valid_for interval DEFAULT '1 year',
                                  issued_at timestamptz DEFAULT now())
    RETURNS health_pass.pass
    AS 'MODULE_PATHNAME', 'hp_issue' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION health_pass.issue(jsonb, text, interval, timestamptz) IS
    'sign payload (a DCC, schema_errors() empty, its ci a UVCI of the key''s country) with signing key "key": CWT iss = the DSC country, iat = issued_at, exp = issued_at + valid_for; returned once its issued record is durable';

CREATE FUNCTION health_pass.issue_batch(payloads jsonb[], key text,
                                        valid_for interval DEFAULT '1 year',
                                        issued_at timestamptz DEFAULT now())
    RETURNS SETOF health_pass.pass
    AS 'MODULE_PATHNAME', 'hp_issue_batch' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION health_pass.issue_batch(jsonb[], text, interval, timestamptz) IS
    'issue() of every payload, in order, with one wait: the passes are returned once all their issued records are durable';
