-- health_pass 0.1.0: the pass type, reading functions, trust list, verdicts
\echo Use "CREATE EXTENSION health_pass" to load this file. \quit

-- The type ------------------------------------------------------------------

CREATE TYPE health_pass.pass;

CREATE FUNCTION health_pass.pass_in(cstring) RETURNS health_pass.pass
    AS 'MODULE_PATHNAME', 'hp_pass_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_out(health_pass.pass) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hp_pass_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_recv(internal) RETURNS health_pass.pass
    AS 'MODULE_PATHNAME', 'hp_pass_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_send(health_pass.pass) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hp_pass_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE health_pass.pass (
    INPUT = health_pass.pass_in,
    OUTPUT = health_pass.pass_out,
    RECEIVE = health_pass.pass_recv,
    SEND = health_pass.pass_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = main
);
COMMENT ON TYPE health_pass.pass IS
    'a signed health certificate (EU DCC HC1:), stored as the COSE bytes received';
COMMENT ON FUNCTION health_pass.pass_in(cstring) IS 'HC1: text to pass (base45, zlib, COSE, CWT, hcert)';
COMMENT ON FUNCTION health_pass.pass_out(health_pass.pass) IS 'pass to HC1: text';
COMMENT ON FUNCTION health_pass.pass_recv(internal) IS 'binary input: format byte and COSE bytes';
COMMENT ON FUNCTION health_pass.pass_send(health_pass.pass) IS 'binary output: format byte and COSE bytes';

-- Comparison, btree and hash ------------------------------------------------

CREATE FUNCTION health_pass.pass_eq(health_pass.pass, health_pass.pass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_pass_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_ne(health_pass.pass, health_pass.pass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_pass_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_lt(health_pass.pass, health_pass.pass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_pass_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_le(health_pass.pass, health_pass.pass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_pass_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_gt(health_pass.pass, health_pass.pass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_pass_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_ge(health_pass.pass, health_pass.pass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_pass_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_cmp(health_pass.pass, health_pass.pass) RETURNS integer
    AS 'MODULE_PATHNAME', 'hp_pass_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_hash(health_pass.pass) RETURNS integer
    AS 'MODULE_PATHNAME', 'hp_pass_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION health_pass.pass_hash_extended(health_pass.pass, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hp_pass_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.pass_eq(health_pass.pass, health_pass.pass) IS 'same stored bytes';
COMMENT ON FUNCTION health_pass.pass_ne(health_pass.pass, health_pass.pass) IS 'different stored bytes';
COMMENT ON FUNCTION health_pass.pass_lt(health_pass.pass, health_pass.pass) IS 'byte order, less than';
COMMENT ON FUNCTION health_pass.pass_le(health_pass.pass, health_pass.pass) IS 'byte order, less or equal';
COMMENT ON FUNCTION health_pass.pass_gt(health_pass.pass, health_pass.pass) IS 'byte order, greater than';
COMMENT ON FUNCTION health_pass.pass_ge(health_pass.pass, health_pass.pass) IS 'byte order, greater or equal';
COMMENT ON FUNCTION health_pass.pass_cmp(health_pass.pass, health_pass.pass) IS 'btree support: byte order';
COMMENT ON FUNCTION health_pass.pass_hash(health_pass.pass) IS 'hash support';
COMMENT ON FUNCTION health_pass.pass_hash_extended(health_pass.pass, bigint) IS 'hash support, seeded';

CREATE OPERATOR health_pass.= (
    LEFTARG = health_pass.pass, RIGHTARG = health_pass.pass, PROCEDURE = health_pass.pass_eq,
    COMMUTATOR = OPERATOR(health_pass.=), NEGATOR = OPERATOR(health_pass.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR health_pass.<> (
    LEFTARG = health_pass.pass, RIGHTARG = health_pass.pass, PROCEDURE = health_pass.pass_ne,
    COMMUTATOR = OPERATOR(health_pass.<>), NEGATOR = OPERATOR(health_pass.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR health_pass.< (
    LEFTARG = health_pass.pass, RIGHTARG = health_pass.pass, PROCEDURE = health_pass.pass_lt,
    COMMUTATOR = OPERATOR(health_pass.>), NEGATOR = OPERATOR(health_pass.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR health_pass.<= (
    LEFTARG = health_pass.pass, RIGHTARG = health_pass.pass, PROCEDURE = health_pass.pass_le,
    COMMUTATOR = OPERATOR(health_pass.>=), NEGATOR = OPERATOR(health_pass.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR health_pass.> (
    LEFTARG = health_pass.pass, RIGHTARG = health_pass.pass, PROCEDURE = health_pass.pass_gt,
    COMMUTATOR = OPERATOR(health_pass.<), NEGATOR = OPERATOR(health_pass.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR health_pass.>= (
    LEFTARG = health_pass.pass, RIGHTARG = health_pass.pass, PROCEDURE = health_pass.pass_ge,
    COMMUTATOR = OPERATOR(health_pass.<=), NEGATOR = OPERATOR(health_pass.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS health_pass.pass_ops DEFAULT FOR TYPE health_pass.pass USING btree AS
    OPERATOR 1 health_pass.<, OPERATOR 2 health_pass.<=, OPERATOR 3 health_pass.=,
    OPERATOR 4 health_pass.>=, OPERATOR 5 health_pass.>,
    FUNCTION 1 health_pass.pass_cmp(health_pass.pass, health_pass.pass);
CREATE OPERATOR CLASS health_pass.pass_hash_ops DEFAULT FOR TYPE health_pass.pass USING hash AS
    OPERATOR 1 health_pass.=,
    FUNCTION 1 health_pass.pass_hash(health_pass.pass),
    FUNCTION 2 health_pass.pass_hash_extended(health_pass.pass, bigint);

-- Reading a pass -------------------------------------------------------------

CREATE FUNCTION health_pass.payload(health_pass.pass) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'hp_payload' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.payload(health_pass.pass) IS
    'the certificate payload (hcert -260/1) as jsonb; dates stay the strings they were';
CREATE FUNCTION health_pass.kid(health_pass.pass) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hp_kid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.kid(health_pass.pass) IS
    'key identifier: protected header, else unprotected header; NULL when absent';
CREATE FUNCTION health_pass.alg(health_pass.pass) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_alg' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.alg(health_pass.pass) IS
    'signature algorithm from the protected header: ES256, PS256, or the COSE number';
CREATE FUNCTION health_pass.issuer(health_pass.pass) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_issuer' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.issuer(health_pass.pass) IS 'CWT claim 1 (iss)';
CREATE FUNCTION health_pass.issued_at(health_pass.pass) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'hp_issued_at' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.issued_at(health_pass.pass) IS 'CWT claim 6 (iat)';
CREATE FUNCTION health_pass.expires_at(health_pass.pass) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'hp_expires_at' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.expires_at(health_pass.pass) IS 'CWT claim 4 (exp)';
CREATE FUNCTION health_pass.kind(health_pass.pass) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_kind' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.kind(health_pass.pass) IS 'vaccination, test or recovery';
CREATE FUNCTION health_pass.uvci(health_pass.pass) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_uvci' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.uvci(health_pass.pass) IS 'unique certificate identifier (ci)';
CREATE FUNCTION health_pass.inspect(text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'hp_inspect' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.inspect(text) IS
    'decode as far as possible; never raises; stage and error say why a pass is rejected';

-- The trust list -------------------------------------------------------------

CREATE FUNCTION health_pass.certificate_info(certificate bytea,
    OUT subject text, OUT country text, OUT not_before timestamptz,
    OUT not_after timestamptz, OUT key_usage text[], OUT key_type text, OUT key_bits integer)
    AS 'MODULE_PATHNAME', 'hp_certificate_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.certificate_info(bytea) IS
    'what a DER certificate says: subject, country, validity, DCC key usage (NULL: any kind), key';

CREATE TABLE health_pass.trust_list (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kid          bytea NOT NULL,
    country      text,
    certificate  bytea NOT NULL,
    fingerprint  bytea GENERATED ALWAYS AS (sha256(certificate)) STORED UNIQUE,
    subject      text,
    valid_from   timestamptz,
    valid_until  timestamptz,
    key_usage    text[] CHECK (key_usage <@ ARRAY['test', 'vaccination', 'recovery']),
    added_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trust_list_kid_idx ON health_pass.trust_list (kid);
COMMENT ON TABLE health_pass.trust_list IS
    'document signer certificates (DSC) trusted to sign passes; edit with plain SQL';
COMMENT ON COLUMN health_pass.trust_list.kid IS 'key identifier passes name (usually first 8 bytes of SHA-256 of the DER)';
COMMENT ON COLUMN health_pass.trust_list.certificate IS 'the DSC, DER';
COMMENT ON COLUMN health_pass.trust_list.valid_from IS 'a pass issued (iat) before this is key_not_valid';
COMMENT ON COLUMN health_pass.trust_list.valid_until IS 'a pass issued (iat) after this is key_not_valid';
COMMENT ON COLUMN health_pass.trust_list.key_usage IS 'kinds this DSC may sign; NULL: any';

-- Fill the columns a plain INSERT leaves NULL from the certificate itself
CREATE FUNCTION health_pass.trust_list_fill() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    info record;
BEGIN
    info := health_pass.certificate_info(NEW.certificate);
    IF TG_OP = 'UPDATE' THEN
        -- a new certificate: columns the UPDATE did not set follow it
        IF NEW.country IS NOT DISTINCT FROM OLD.country THEN NEW.country := NULL; END IF;
        IF NEW.subject IS NOT DISTINCT FROM OLD.subject THEN NEW.subject := NULL; END IF;
        IF NEW.valid_from IS NOT DISTINCT FROM OLD.valid_from THEN NEW.valid_from := NULL; END IF;
        IF NEW.valid_until IS NOT DISTINCT FROM OLD.valid_until THEN NEW.valid_until := NULL; END IF;
        IF NEW.key_usage IS NOT DISTINCT FROM OLD.key_usage THEN NEW.key_usage := NULL; END IF;
    END IF;
    NEW.country := coalesce(NEW.country, info.country);
    NEW.subject := coalesce(NEW.subject, info.subject);
    NEW.valid_from := coalesce(NEW.valid_from, info.not_before);
    NEW.valid_until := coalesce(NEW.valid_until, info.not_after);
    NEW.key_usage := coalesce(NEW.key_usage, info.key_usage, ARRAY['test', 'vaccination', 'recovery']);
    RETURN NEW;
END $$;
COMMENT ON FUNCTION health_pass.trust_list_fill() IS
    'trigger: validates the DER and fills country, subject, validity and key usage left NULL (or unchanged when the certificate changes)';
CREATE TRIGGER trust_list_fill BEFORE INSERT OR UPDATE OF certificate ON health_pass.trust_list
    FOR EACH ROW EXECUTE FUNCTION health_pass.trust_list_fill();

CREATE FUNCTION health_pass.trust_add(certificate bytea, kid bytea DEFAULT NULL) RETURNS bytea
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea := coalesce(kid, substr(sha256(certificate), 1, 8));
BEGIN
    INSERT INTO health_pass.trust_list (kid, certificate) VALUES (k, certificate)
        ON CONFLICT (fingerprint) DO NOTHING;
    RETURN k;
END $$;
COMMENT ON FUNCTION health_pass.trust_add(bytea, bytea) IS
    'add a DER DSC (kid defaults to the first 8 bytes of its SHA-256); returns the kid';

CREATE FUNCTION health_pass.trust_import(list jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    entries jsonb := CASE WHEN jsonb_typeof(list) = 'object' THEN list -> 'certificates' ELSE list END;
    n integer;
BEGIN
    IF jsonb_typeof(entries) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'trust list must be a JSON array or an object with a "certificates" array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH ins AS (
        INSERT INTO health_pass.trust_list (kid, country, certificate)
        SELECT DISTINCT ON (sha256(decode(e ->> 'rawData', 'base64')))
               coalesce(decode(e ->> 'kid', 'base64'),
                        substr(sha256(decode(e ->> 'rawData', 'base64')), 1, 8)),
               e ->> 'country', decode(e ->> 'rawData', 'base64')
          FROM jsonb_array_elements(entries) AS e
         WHERE coalesce(e ->> 'certificateType', 'DSC') = 'DSC' AND e ? 'rawData'
        ON CONFLICT (fingerprint) DO NOTHING
        RETURNING 1)
    SELECT count(*) INTO n FROM ins;
    RETURN n;
END $$;
COMMENT ON FUNCTION health_pass.trust_import(jsonb) IS
    'import DSC entries of an EU gateway trust list (array, or {"certificates": [...]}); returns how many were added';

-- Verification ---------------------------------------------------------------

CREATE TYPE health_pass.verdict AS (
    valid    boolean,
    reason   text,
    reasons  text[],
    kid      bytea,
    country  text
);
COMMENT ON TYPE health_pass.verdict IS
    'result of check(): valid, the first failure (or ok), every failure, the kid and the DSC country';

CREATE FUNCTION health_pass.check(p health_pass.pass, at timestamptz DEFAULT now())
    RETURNS health_pass.verdict
    AS 'MODULE_PATHNAME', 'hp_check' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.check(health_pass.pass, timestamptz) IS
    'verify against the trust list: signature, DSC validity and key usage, iat/exp at the given time';

CREATE FUNCTION health_pass.valid_at(p health_pass.pass, at timestamptz) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_valid_at' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.valid_at(health_pass.pass, timestamptz) IS
    '(check(p, at)).valid, without building the verdict';

CREATE OPERATOR health_pass.@@ (
    LEFTARG = health_pass.pass, RIGHTARG = timestamptz, PROCEDURE = health_pass.valid_at);
COMMENT ON OPERATOR health_pass.@@ (health_pass.pass, timestamptz) IS 'pass is valid at that time';

CREATE FUNCTION health_pass.verify(p health_pass.pass, certificate bytea) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_verify' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.verify(health_pass.pass, bytea) IS
    'the signature checked against that DER certificate alone';

-- Payload schema -------------------------------------------------------------

CREATE FUNCTION health_pass.schema_errors(p health_pass.pass) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d jsonb := health_pass.payload(p);
    errs text[] := '{}';
    kinds text[];
    k text;
    e jsonb;
    f text;
    req text[];
    date_re constant text := '^\d{4}-\d{2}-\d{2}$';
    dt_re constant text := '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$';
BEGIN
    IF jsonb_typeof(d -> 'ver') IS DISTINCT FROM 'string' THEN
        errs := errs || 'ver: required string'::text;
    ELSIF d ->> 'ver' !~ '^\d+\.\d+\.\d+$' THEN
        errs := errs || 'ver: not a semantic version'::text;
    END IF;
    IF jsonb_typeof(d -> 'nam') IS DISTINCT FROM 'object' THEN
        errs := errs || 'nam: required object'::text;
    ELSE
        IF jsonb_typeof(d -> 'nam' -> 'fnt') IS DISTINCT FROM 'string' THEN
            errs := errs || 'nam.fnt: required string'::text;
        END IF;
        FOREACH f IN ARRAY ARRAY['fn', 'fnt', 'gn', 'gnt'] LOOP
            IF d -> 'nam' ? f AND jsonb_typeof(d -> 'nam' -> f) <> 'string' THEN
                errs := errs || format('nam.%s: not a string', f);
            ELSIF length(d -> 'nam' ->> f) > 80 THEN
                errs := errs || format('nam.%s: longer than 80', f);
            ELSIF f IN ('fnt', 'gnt') AND d -> 'nam' ->> f !~ '^[A-Z<]*$' THEN
                errs := errs || format('nam.%s: not in ICAO 9303 form', f);
            END IF;
        END LOOP;
    END IF;
    IF jsonb_typeof(d -> 'dob') IS DISTINCT FROM 'string' THEN
        errs := errs || 'dob: required string'::text;
    ELSIF d ->> 'dob' !~ '^((19|20)\d\d(-\d\d){0,2})?$' THEN
        errs := errs || 'dob: not a date (YYYY, YYYY-MM or YYYY-MM-DD)'::text;
    END IF;
    kinds := ARRAY(SELECT x FROM unnest(ARRAY['v', 't', 'r']) AS x WHERE d ? x);
    IF cardinality(kinds) <> 1 THEN
        errs := errs || format('exactly one of v, t, r required, found %s', cardinality(kinds));
    END IF;
    FOREACH k IN ARRAY kinds LOOP
        IF jsonb_typeof(d -> k) IS DISTINCT FROM 'array' OR jsonb_array_length(d -> k) <> 1 THEN
            errs := errs || format('%s: must be an array of exactly one entry', k);
            CONTINUE;
        END IF;
        e := d -> k -> 0;
        IF jsonb_typeof(e) IS DISTINCT FROM 'object' THEN
            errs := errs || format('%s[0]: not an object', k);
            CONTINUE;
        END IF;
        req := CASE k WHEN 'v' THEN ARRAY['tg', 'vp', 'mp', 'ma', 'dn', 'sd', 'dt', 'co', 'is', 'ci']
                      WHEN 't' THEN ARRAY['tg', 'tt', 'sc', 'tr', 'co', 'is', 'ci']
                      ELSE ARRAY['tg', 'fr', 'co', 'is', 'df', 'du', 'ci'] END;
        FOREACH f IN ARRAY req LOOP
            IF NOT e ? f THEN
                errs := errs || format('%s[0].%s: required', k, f);
            END IF;
        END LOOP;
        FOR f IN SELECT key FROM jsonb_each(e) LOOP
            IF f IN ('dn', 'sd') THEN
                IF jsonb_typeof(e -> f) <> 'number' OR (e ->> f)::numeric <> trunc((e ->> f)::numeric)
                   OR (e ->> f)::numeric NOT BETWEEN 1 AND 9 THEN
                    errs := errs || format('%s[0].%s: not an integer from 1 to 9', k, f);
                END IF;
            ELSIF jsonb_typeof(e -> f) <> 'string' THEN
                errs := errs || format('%s[0].%s: not a string', k, f);
            ELSIF f IN ('dt', 'fr', 'df', 'du') AND e ->> f !~ date_re THEN
                errs := errs || format('%s[0].%s: not a date', k, f);
            ELSIF f = 'sc' AND e ->> f !~ dt_re THEN
                errs := errs || format('%s[0].%s: not a date-time', k, f);
            ELSIF f = 'co' AND e ->> f !~ '^[A-Z]{2}$' THEN
                errs := errs || format('%s[0].%s: not a country code', k, f);
            ELSIF f IN ('is', 'ci', 'nm', 'tc') AND length(e ->> f) > 80 THEN
                errs := errs || format('%s[0].%s: longer than 80', k, f);
            END IF;
        END LOOP;
    END LOOP;
    RETURN errs;
END $$;
COMMENT ON FUNCTION health_pass.schema_errors(health_pass.pass) IS
    'the payload checked against the DCC JSON schema 1.3 rules; empty when valid';

-- Privileges: everyone may read passes and the trust list; only the owner edits it
REVOKE ALL ON health_pass.trust_list FROM PUBLIC;
GRANT SELECT ON health_pass.trust_list TO PUBLIC;
GRANT USAGE ON SCHEMA health_pass TO PUBLIC;
