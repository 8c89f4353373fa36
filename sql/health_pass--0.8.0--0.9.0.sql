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
    'sign payload (a DCC, schema_errors() empty, with its ci) with signing key "key": CWT iss = the DSC country, iat = issued_at, exp = issued_at + valid_for; audited as issued';
