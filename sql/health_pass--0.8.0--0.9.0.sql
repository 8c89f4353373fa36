-- health_pass 0.8.0 -> 0.9.0 (issue 14): issuing and revoking passes, the
-- registry's side.  The same objects as sections 6 and 7 of
-- sql/health_pass.sql (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.9.0'" to load this file. \quit

COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/audit/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser, 5 issued, 6 revoked';

-- 6. Revocation ==============================================================

-- 7. Signing keys and issuing passes =========================================

-- Issuing passes -------------------------------------------------------------

-- schema_errors() of a jsonb payload, which schema_errors(pass) now calls
CREATE FUNCTION health_pass.schema_errors(payload jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d jsonb := payload;
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
    'sign payload (a DCC, schema_errors() empty, with its ci) with signing key "key": CWT iss = the DSC country, iat = issued_at, exp = issued_at + valid_for; audited as issued';
