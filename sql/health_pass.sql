-- health_pass: the complete definition of the current version.
--
-- This file is the source of the install script: `make` copies it to
-- sql/health_pass--<default_version>.sql (default_version from
-- health_pass.control), and CREATE EXTENSION health_pass runs that one script.
-- Databases made by an earlier version reach the same state through the
-- upgrade scripts sql/health_pass--OLD--NEW.sql (ALTER EXTENSION health_pass
-- UPDATE); those never change once released.  A release that changes an
-- object changes it here and in a new upgrade script, and
-- test/t/010_install_matches_update.pl checks that a fresh install and an
-- update from 0.5.0 give the same catalog.
--
-- Sections:
--   1. the pass type: I/O, comparison, operators, btree and hash classes
--   2. reading a pass
--   3. the trust list and verification
--   4. the access policy: protected tables, rules, protect() and allow()
--   5. the audit log: blocks, the audit_log view, verify, status, who_read()
--   6. revocation: revoked hashes, revoke(), the gateway's batches
--   7. signing keys and issuing passes
--   8. event triggers (created last: they would fire on this script's DDL)
--   9. privileges and the tables pg_dump keeps
--
-- Every object is schema-qualified; functions in a procedural language pin
-- search_path.  The server must run the matching library (health_pass.so),
-- loaded with shared_preload_libraries for the access policy.

\echo Use "CREATE EXTENSION health_pass" to load this file. \quit

-- 1. The pass type ===========================================================

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

-- 2. Reading a pass =========================================================

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


CREATE FUNCTION health_pass.schema_errors(payload jsonb) RETURNS text[]
    AS 'MODULE_PATHNAME', 'hp_schema_errors_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.schema_errors(jsonb) IS
    'a payload (as issue() takes it) checked against the DCC JSON schema 1.3 rules; empty when valid';

CREATE FUNCTION health_pass.schema_errors(p health_pass.pass) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN health_pass.schema_errors(health_pass.payload(p));
END $$;
COMMENT ON FUNCTION health_pass.schema_errors(health_pass.pass) IS
    'the payload checked against the DCC JSON schema 1.3 rules; empty when valid';

-- 3. The trust list and verification =======================================

CREATE FUNCTION health_pass.certificate_info(certificate bytea,
    OUT subject text, OUT country text, OUT not_before timestamptz,
    OUT not_after timestamptz, OUT key_usage text[], OUT key_type text, OUT key_bits integer)
    AS 'MODULE_PATHNAME', 'hp_certificate_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.certificate_info(bytea) IS
    'what a DER certificate says: subject, country, validity, DCC key usage (NULL: any kind), key';

-- The trust list -------------------------------------------------------------

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
    added_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    revocation_reason text
);
CREATE INDEX trust_list_kid_idx ON health_pass.trust_list (kid);
COMMENT ON TABLE health_pass.trust_list IS
    'document signer certificates (DSC) trusted to sign passes; edit with plain SQL';
COMMENT ON COLUMN health_pass.trust_list.kid IS 'key identifier passes name (usually first 8 bytes of SHA-256 of the DER)';
COMMENT ON COLUMN health_pass.trust_list.certificate IS 'the DSC, DER';
COMMENT ON COLUMN health_pass.trust_list.valid_from IS 'a pass issued (iat) before this is key_not_valid';
COMMENT ON COLUMN health_pass.trust_list.valid_until IS 'a pass issued (iat) after this is key_not_valid';
COMMENT ON COLUMN health_pass.trust_list.key_usage IS 'kinds this DSC may sign; NULL: any';
COMMENT ON COLUMN health_pass.trust_list.revoked_at IS 'set: the DSC is revoked and every pass it signed is key_revoked, whatever its iat';
COMMENT ON COLUMN health_pass.trust_list.revocation_reason IS 'why the DSC was revoked';

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
    'verify against the trust list and the revocations: signature, DSC revoked, pass revoked, DSC validity and key usage, iat/exp at the given time';

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

-- 4. The access policy =======================================================

-- Protected tables and access rules ------------------------------------------

-- rls_*_before: what protect() found, restored by unprotect();
-- protected_through: the table a partition or inheritance child is protected
-- through (its rules apply to it too)
CREATE TABLE health_pass.protected_table (
    relation regclass PRIMARY KEY,
    subject_attnum smallint NOT NULL CHECK (subject_attnum > 0),
    protected_at timestamptz NOT NULL DEFAULT now(),
    protected_by name NOT NULL DEFAULT current_user,
    rls_enabled_before boolean NOT NULL DEFAULT false,
    rls_forced_before boolean NOT NULL DEFAULT false,
    protected_through regclass
);
COMMENT ON TABLE health_pass.protected_table IS
    'tables whose reads go through health_pass; subject_attnum is the column naming whose data a row is';
COMMENT ON COLUMN health_pass.protected_table.rls_enabled_before IS
    'row security was enabled before protect(); false: health_pass supplies a permissive policy true';
COMMENT ON COLUMN health_pass.protected_table.rls_forced_before IS
    'row security was forced before protect(); unprotect() restores both flags';
COMMENT ON COLUMN health_pass.protected_table.protected_through IS
    'the protected table this partition or inheritance child was protected through (its rules apply), NULL when protected itself';

CREATE TABLE health_pass.access_rule (
    grantee regrole NOT NULL,
    relation regclass NOT NULL REFERENCES health_pass.protected_table ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose <> '' AND octet_length(purpose) < 64),
    max_subjects integer CHECK (max_subjects > 0),
    per interval NOT NULL DEFAULT '1 hour' CHECK (per > interval '0'),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by name NOT NULL DEFAULT current_user,
    PRIMARY KEY (grantee, relation, purpose)
);
COMMENT ON TABLE health_pass.access_rule IS
    'who (grantee and the roles that have its privileges) may read which protected table, for which purpose, and how many distinct subjects per period';

CREATE VIEW health_pass.protected_tables AS
    SELECT p.relation, a.attname AS subject_column, p.protected_at, p.protected_by,
           p.protected_through
    FROM health_pass.protected_table p
    LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid = p.relation AND a.attnum = p.subject_attnum AND NOT a.attisdropped;
COMMENT ON VIEW health_pass.protected_tables IS 'protected tables with their subject column by name';

CREATE FUNCTION health_pass._policy_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hp_policy_changed' LANGUAGE C;
COMMENT ON FUNCTION health_pass._policy_changed() IS
    'trigger: tell every backend to reload the access policy and re-plan the table';
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE ON health_pass.protected_table
    FOR EACH ROW EXECUTE FUNCTION health_pass._policy_changed();
CREATE TRIGGER policy_truncated AFTER TRUNCATE ON health_pass.protected_table
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._policy_changed();
CREATE TRIGGER policy_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON health_pass.access_rule
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._policy_changed();

CREATE FUNCTION health_pass._preloaded() RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_is_preloaded' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION health_pass._preloaded() IS
    'true when health_pass is in shared_preload_libraries (hooks and shared memory active)';

CREATE FUNCTION health_pass._require_admin() RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
                   WHERE e.extname = 'health_pass'
                     AND pg_catalog.pg_has_role(current_user, e.extowner, 'USAGE')) THEN
        RAISE EXCEPTION 'only a superuser or the owner of extension health_pass may change access rules'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END $$;
COMMENT ON FUNCTION health_pass._require_admin() IS
    'raise unless the caller is a superuser or has the privileges of the extension owner';

-- Subject statistics: ANALYZE keeps a sample of every column's values and
-- pg_stats shows it past the rules, so a protected table's subject column,
-- and the same column of the tables it inherits from, get statistics target 0
CREATE FUNCTION health_pass._subject_statistics(tbl regclass, attnum smallint, hide boolean)
    RETURNS void LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'hp_subject_statistics';
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
COMMENT ON FUNCTION health_pass._hide_subject_statistics(regclass, smallint) IS
    'hide the statistics of column att of tbl and of the same column of every table tbl inherits from';

-- Row security: forced on a protected table, so statistics views hide it
CREATE FUNCTION health_pass._row_security(tbl regclass, enable boolean, force boolean)
    RETURNS void LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'hp_row_security';
COMMENT ON FUNCTION health_pass._row_security(regclass, boolean, boolean) IS
    'set a table''s row security flags (enable, force) whoever owns it; used by protect() and unprotect()';

CREATE FUNCTION health_pass._protect_blockers(tbl regclass) RETURNS SETOF text
    LANGUAGE C STRICT STABLE AS 'MODULE_PATHNAME', 'hp_protect_blockers';
COMMENT ON FUNCTION health_pass._protect_blockers(regclass) IS
    'objects of tbl that would run user code over its rows outside the gate: triggers, rules, expression indexes, expression statistics, and partial indexes, CHECK constraints, generated columns, policies or a partition key with a non-leakproof function';

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
    PERFORM health_pass._write_probe_trigger(tbl, true);
END $$;
COMMENT ON FUNCTION health_pass._protect_one(regclass, name, regclass) IS
    'protect one table: refuse it if it has blockers, record it, hide its subject statistics, enable and force row security';

-- protect(): a subject column whose type prints by a session setting that
-- subject_text() does not fix (money by lc_monetary, reg* by search_path) is
-- refused
CREATE FUNCTION health_pass.protect(tbl regclass, subject_column name) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parent regclass;
    subject_type regtype;
    child regclass;
    root regclass;
BEGIN
    PERFORM health_pass._require_admin();
    IF NOT health_pass._preloaded() THEN
        RAISE EXCEPTION 'health_pass must be in shared_preload_libraries to protect a table'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add health_pass to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
    -- a subject is recorded as its type prints it under fixed settings; these
    -- types print by settings that are not fixed (lc_monetary, search_path)
    -- (the type itself, or one inside it: a domain's base, an array's
    -- element, a range's subtype, a composite's fields)
    WITH RECURSIVE inside(t) AS (
        SELECT a.atttypid FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = tbl AND a.attname = subject_column AND NOT a.attisdropped
        UNION
        SELECT u.t FROM inside i
        JOIN pg_catalog.pg_type ty ON ty.oid = i.t
        CROSS JOIN LATERAL (
            SELECT ty.typbasetype WHERE ty.typtype = 'd'
            UNION ALL SELECT ty.typelem WHERE ty.typelem <> 0 AND ty.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
            UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = ty.oid
            UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = ty.oid
            UNION ALL SELECT ca.atttypid FROM pg_catalog.pg_attribute ca
                WHERE ty.typtype = 'c' AND ca.attrelid = ty.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped
        ) u(t))
    SELECT i.t::pg_catalog.regtype INTO subject_type FROM inside i
    WHERE i.t IN ('pg_catalog.money'::regtype, 'pg_catalog.regclass'::regtype, 'pg_catalog.regproc'::regtype,
                  'pg_catalog.regprocedure'::regtype, 'pg_catalog.regoper'::regtype,
                  'pg_catalog.regoperator'::regtype, 'pg_catalog.regtype'::regtype,
                  'pg_catalog.regrole'::regtype, 'pg_catalog.regnamespace'::regtype,
                  'pg_catalog.regcollation'::regtype, 'pg_catalog.regconfig'::regtype,
                  'pg_catalog.regdictionary'::regtype)
    LIMIT 1;
    IF subject_type IS NOT NULL THEN
        RAISE EXCEPTION 'a subject column of type % (or holding one) prints differently in different sessions', subject_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Protect the table by a key column (text, integer, uuid, ...) that names whose data a row is.';
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

CREATE FUNCTION health_pass.unprotect(tbl regclass) RETURNS void
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
COMMENT ON FUNCTION health_pass.unprotect(regclass) IS
    'stop protecting tbl and its partitions and children; their rules are deleted, audit records kept, subject statistics target and row security flags restored';

-- A quota belongs to the rule: every role reading through it shares its
-- max_subjects.  A rule that could never fit the shared tracker is refused.
CREATE FUNCTION health_pass.allow(grantee name, tbl regclass, purpose text,
                                  max_subjects integer DEFAULT NULL,
                                  per interval DEFAULT '1 hour') RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    capacity integer := pg_catalog.current_setting('health_pass.quota_capacity', true)::integer;
    total bigint;
BEGIN
    PERFORM health_pass._require_admin();
    IF NOT EXISTS (SELECT 1 FROM health_pass.protected_table p WHERE p.relation = tbl) THEN
        RAISE EXCEPTION 'table % is not protected', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call health_pass.protect() first.';
    END IF;
    IF allow.per > interval '100 years' THEN
        RAISE EXCEPTION 'a quota period of % is longer than 100 years', allow.per
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF allow.max_subjects > capacity THEN
        RAISE EXCEPTION 'max_subjects % is more than the quota tracker holds (health_pass.quota_capacity = %)',
            allow.max_subjects, capacity
            USING ERRCODE = 'configuration_limit_exceeded',
                  HINT = 'Raise health_pass.quota_capacity (takes a server restart), or allow fewer subjects.';
    END IF;
    INSERT INTO health_pass.access_rule AS r (grantee, relation, purpose, max_subjects, per)
    VALUES (allow.grantee::regrole, allow.tbl, allow.purpose, allow.max_subjects, allow.per)
    ON CONFLICT ON CONSTRAINT access_rule_pkey DO UPDATE
        SET max_subjects = EXCLUDED.max_subjects, per = EXCLUDED.per,
            created_at = now(), created_by = current_user;
    SELECT pg_catalog.sum(r.max_subjects) INTO total FROM health_pass.access_rule r;
    IF total > capacity THEN
        RAISE WARNING 'the quotas of this database add up to % subjects, more than the quota tracker holds (%)',
            total, capacity
            USING HINT = 'When the tracker is full, a read that needs a new subject counted is refused: raise health_pass.quota_capacity.';
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.allow(name, regclass, text, integer, interval) IS
    'let grantee (and roles with its privileges) read tbl for purpose, at most max_subjects distinct subjects per period for all of them together (NULL: no quota)';

CREATE FUNCTION health_pass.disallow(grantee name, tbl regclass, purpose text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._require_admin();
    DELETE FROM health_pass.access_rule r
    WHERE r.grantee = disallow.grantee::regrole AND r.relation = disallow.tbl
      AND r.purpose = disallow.purpose;
    IF NOT FOUND THEN
        RAISE NOTICE 'no rule for role % on % with purpose %', grantee, tbl, purpose;
    END IF;
END $$;
COMMENT ON FUNCTION health_pass.disallow(name, regclass, text) IS 'remove the rule (grantee, tbl, purpose)';

CREATE FUNCTION health_pass.break_glass(reason text) RETURNS void
    AS 'MODULE_PATHNAME', 'hp_break_glass' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION health_pass.break_glass(text) IS
    'read protected tables outside your rules until the end of this transaction, every read audited as break_glass with reason; needs EXECUTE, granted by the DBA';

-- Forget protected tables that are dropped (runs as the extension owner)
CREATE FUNCTION health_pass._forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM health_pass.protected_table p
    USING pg_catalog.pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.objsubid = 0 AND d.objid = p.relation::pg_catalog.oid;
END $$;
COMMENT ON FUNCTION health_pass._forget_dropped() IS
    'event trigger: a dropped table stops being protected, so its OID cannot protect a new table by accident';

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
COMMENT ON FUNCTION health_pass._protect_new_children() IS
    'event trigger: protect every new partition or child of a protected table, finding its subject column by name';

-- 5. The audit log ===========================================================

-- The audit writer packs up to 256 consecutive records into one audit_block
-- row: session fields the records share are written once, times and ids as
-- small steps, each record keeps its own SHA-256 hash chained to the one
-- before.  audit_log is a view that unpacks the blocks.
CREATE TABLE health_pass.audit_block (
    min_id bigint PRIMARY KEY,
    max_id bigint NOT NULL,
    min_at timestamptz NOT NULL,
    max_at timestamptz NOT NULL,
    subjects bytea NOT NULL,
    records bytea NOT NULL
) WITH (toast_tuple_target = 128);
-- records is mostly hashes, which do not compress: store it out of line
-- uncompressed, so a scan of the summaries reads little
ALTER TABLE health_pass.audit_block ALTER COLUMN records SET STORAGE EXTERNAL;
ALTER TABLE health_pass.audit_block ALTER COLUMN subjects SET STORAGE MAIN;
COMMENT ON TABLE health_pass.audit_block IS
    'storage of audit_log: each row packs a run of consecutive records (ids min_id to max_id, logged between min_at and max_at), with a bloom filter of their (relation, subject) pairs';
COMMENT ON COLUMN health_pass.audit_block.subjects IS
    'bloom filter of the (relation, subject) pairs of the block''s records: who_read() unpacks only blocks it matches';
COMMENT ON COLUMN health_pass.audit_block.records IS
    'the packed records (src/audit/block.c); outcome codes 0 allowed, 1 denied, 2 quota_exceeded, 3 break_glass, 4 superuser, 5 issued, 6 revoked, 7 failover, 8 archived, 9 verified';

CREATE FUNCTION health_pass._audit_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hp_audit_guard' LANGUAGE C;
COMMENT ON FUNCTION health_pass._audit_guard() IS
    'trigger: audit_block changes are refused to every role but superusers';
CREATE TRIGGER audit_block_append_only BEFORE INSERT OR UPDATE OR DELETE ON health_pass.audit_block
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_guard();
CREATE TRIGGER audit_block_no_truncate BEFORE TRUNCATE ON health_pass.audit_block
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_guard();

CREATE FUNCTION health_pass._audit_rows(records bytea,
    OUT id bigint, OUT logged_at timestamptz, OUT session_user_name name,
    OUT current_user_name name, OUT client_addr inet, OUT application_name text,
    OUT backend_pid integer, OUT statement_id bigint, OUT relation regclass,
    OUT subject text, OUT purpose text, OUT outcome text, OUT reason text,
    OUT prev_hash bytea, OUT hash bytea, OUT node text)
    RETURNS SETOF record ROWS 256
    AS 'MODULE_PATHNAME', 'hp_audit_records' LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION health_pass._audit_rows(bytea) IS
    'the audit_log rows packed in one audit_block.records value, in the order they were written; never fails on what the block holds: a field that cannot be shown as stored is escaped or NULL with reason "unreadable record: <fields>", a block that does not decode is one row with only reason "unreadable block: <why>"';

CREATE FUNCTION health_pass._audit_may_hold(subjects bytea, tbl regclass, subject text)
    RETURNS boolean
    AS 'MODULE_PATHNAME', 'hp_audit_may_hold' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass._audit_may_hold(bytea, regclass, text) IS
    'false when a block''s bloom filter proves it holds no record of this subject of this table';

-- audit_log reads audit_block alone (ONLY): a child table's rows would read
-- as the log's (children and partitions of the log are refused to
-- non-superusers, ddl.c)
CREATE VIEW health_pass.audit_log AS
    SELECT r.id, r.logged_at, r.session_user_name, r.current_user_name, r.client_addr,
           r.application_name, r.backend_pid, r.statement_id, r.relation, r.subject,
           r.purpose, r.outcome, r.reason, r.prev_hash, r.hash, r.node
    FROM ONLY health_pass.audit_block b
    CROSS JOIN LATERAL health_pass._audit_rows(b.records) r;
COMMENT ON VIEW health_pass.audit_log IS
    'one record per (statement, subject) read of a protected table, and one per denied statement; hash chains each record to the one before (stored packed in audit_block); node names the standby that read (NULL: this server)';

CREATE FUNCTION health_pass._audit_edit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'hp_audit_edit' LANGUAGE C;
COMMENT ON FUNCTION health_pass._audit_edit() IS
    'trigger: UPDATE and DELETE on audit_log are refused to every role but superusers, whose changes go to the block that holds the record (audit_verify() finds them); records are added only by the writer';
CREATE TRIGGER audit_log_append_only INSTEAD OF INSERT OR UPDATE OR DELETE ON health_pass.audit_log
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_edit();

CREATE FUNCTION health_pass.audit_verify(OUT ok boolean, OUT checked bigint,
                                         OUT first_bad bigint, OUT why text)
    AS 'MODULE_PATHNAME', 'hp_audit_verify' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_verify() IS
    'walk the audit_log hash chain; first_bad is the id of the first record altered, reordered, deleted or unreadable (or where a block that does not decode, or whose summary is wrong, sits), why says which; never fails on what the log holds';

-- Anchors of the chain (docs/design/audit_index.md): a record id and its
-- hash the chain is checked from.  'verified': a checkpoint set by
-- audit_checkpoint() after the chain verified up to there; 'archived': the
-- last record audit_archive() dropped, which the first remaining block
-- chains to.  Each one is also a record of its own in the chain (outcome
-- verified or archived, reason "anchor <id> <hash>; ..."), written before the
-- row: audit_verify() reports an anchor the chain does not name.
CREATE TABLE health_pass.audit_anchor (
    id bigint PRIMARY KEY,
    hash bytea NOT NULL CHECK (pg_catalog.length(hash) = 32),
    kind text NOT NULL CHECK (kind IN ('verified', 'archived')),
    made_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    made_by name NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE health_pass.audit_anchor IS
    'anchors of the audit chain: (id, hash) of a record audit_verify() checks from; verified: a checkpoint (audit_checkpoint), archived: the last record dropped by audit_archive; each is named by a record of its own in the chain';
CREATE TRIGGER audit_anchor_append_only BEFORE INSERT OR UPDATE OR DELETE ON health_pass.audit_anchor
    FOR EACH ROW EXECUTE FUNCTION health_pass._audit_guard();
CREATE TRIGGER audit_anchor_no_truncate BEFORE TRUNCATE ON health_pass.audit_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_guard();

CREATE FUNCTION health_pass.audit_verify(incremental boolean,
    OUT ok boolean, OUT checked bigint, OUT first_bad bigint, OUT why text,
    OUT from_id bigint, OUT last_id bigint, OUT last_hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_verify' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass.audit_verify(boolean) IS
    'audit_verify() from the newest anchor of any kind (a checkpoint) when incremental, else from the newest archive anchor or the first record; also the first record checked and the last one with its hash';

CREATE FUNCTION health_pass.audit_checkpoint(OUT id bigint, OUT hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_checkpoint' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_checkpoint() IS
    'superuser only: verify the chain from the newest anchor and, when it is sound, anchor its last record (a verified record in the chain, and a row in audit_anchor), where audit_verify(true) starts next time';

CREATE FUNCTION health_pass.audit_archive(before timestamptz,
    OUT blocks bigint, OUT records bigint, OUT last_id bigint, OUT last_hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_archive' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass.audit_archive(timestamptz) IS
    'superuser only: drop the oldest audit blocks, up to the first holding a record logged at or after before, once they verify, and anchor the chain at the last record dropped (an archived record in the chain, and a row in audit_anchor); archive them first (COPY)';

CREATE FUNCTION health_pass.audit_status(OUT writer_pid integer, OUT queued bigint,
                                         OUT written bigint, OUT batches bigint,
                                         OUT waiting_on text, OUT waiting_since timestamptz,
                                         OUT blocked_by integer[])
    AS 'MODULE_PATHNAME', 'hp_audit_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_status() IS
    'this database''s audit writer: its pid, records waiting, records and commits since the server started; when it cannot write, what it waits for, since when and the pids that block it';

CREATE FUNCTION health_pass.audit_flush() RETURNS bigint
    AS 'MODULE_PATHNAME', 'hp_audit_flush' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass.audit_flush() IS
    'wait until every audit record queued in this database so far is committed (at most health_pass.audit_timeout)';

-- Standbys (docs/design/standby.md): a standby ships the records of its
-- reads to the primary, which writes them into its chain naming the standby
-- (_audit_ship), and asks the primary's quota counters (_audit_quota_admit).
-- The role in the standby's health_pass.primary_conninfo needs EXECUTE on
-- both; they are revoked from PUBLIC (section 9).
CREATE FUNCTION health_pass._audit_ship(node text, boot timestamptz, first_seq bigint,
                                        records bytea,
                                        OUT last_id bigint, OUT last_hash bytea)
    AS 'MODULE_PATHNAME', 'hp_audit_ship' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass._audit_ship(text, timestamptz, bigint, bytea) IS
    'on the primary: write a standby''s audit records (a packed block; ids and hashes are this server''s) into the chain, each naming node, and return once they are durable, with the chain''s head; first_seq is the first record''s number in the queue of the standby started at boot, so a batch shipped again after a failed answer is not written twice; records NULL: only the head';
CREATE FUNCTION health_pass._audit_quota_admit(grantee oid, relid oid, purpose text,
                                               subject_key bytea,
                                               OUT admitted boolean, OUT subjects integer)
    AS 'MODULE_PATHNAME', 'hp_audit_quota_admit' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION health_pass._audit_quota_admit(oid, oid, text, bytea) IS
    'on the primary: count a standby''s read of a subject (its 16-byte key; NULL: a NULL subject) against the rule (grantee, table, purpose); subjects is -1 when this server has no such rule with a quota';

-- Timelines of the chain: the writer notes each timeline of the server it
-- writes on (a promotion or a restored backup starts a new one) and the
-- record the chain continues after, and writes a "failover" record into the
-- chain when the timeline changed.
CREATE TABLE health_pass.audit_timeline (
    timeline   bigint PRIMARY KEY,
    previous   bigint,
    after_id   bigint NOT NULL,
    after_hash bytea NOT NULL,
    noted_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    note       text
);
COMMENT ON TABLE health_pass.audit_timeline IS
    'each WAL timeline the audit chain was written on: the record it continues after (after_id, after_hash), and the failover record''s text (note; NULL for the first timeline noted)';

-- Subjects: the gate tells a statement's subjects apart by their binary value
-- and records each as its type prints it under fixed settings (DateStyle ISO,
-- TimeZone UTC, extra_float_digits 1, ...), so session settings can neither
-- merge two subjects nor split one; a text longer than 127 bytes is recorded
-- as 'sha256:' and the hex SHA-256 of it.  subject_text() gives that text.
CREATE FUNCTION health_pass.subject_text(subject anyelement) RETURNS text
    AS 'MODULE_PATHNAME', 'hp_subject_text_sql' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.subject_text(anyelement) IS
    'the text the audit log keeps of a subject value (printed under fixed settings; longer than 127 bytes: ''sha256:'' and its hex digest): what who_read() matches';

-- The subject index (docs/design/audit_index.md): the 64-bit keys of a
-- block's (relation, subject) pairs, computed from its records (a damaged
-- block: the one key 0), kept as sorted runs of (key, block) pairs merged
-- level by level.  The audit writer indexes new blocks between its batches
-- and merges runs (keyindex.c); who_read() reads the runs for the blocks up
-- to the mark and the bloom filters of the blocks after it.  Derived data:
-- not dumped (the writer indexes a restored log again), rebuilt by
-- audit_reindex().
CREATE FUNCTION health_pass._audit_keys(records bytea) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'hp_audit_keys' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass._audit_keys(bytea) IS
    'the subject-index keys of one audit_block.records value: the distinct 64-bit hashes of its records'' (relation, subject) pairs, or {0} when the block does not decode';
CREATE TABLE health_pass.audit_key_mark (
    mark bigint NOT NULL
);
INSERT INTO health_pass.audit_key_mark VALUES (0);
-- one row, always (who_read() trusts no run when it finds another count)
CREATE UNIQUE INDEX audit_key_mark_one ON health_pass.audit_key_mark ((true));
COMMENT ON TABLE health_pass.audit_key_mark IS
    'the subject index covers the blocks whose min_id is at most mark; who_read() tests the bloom filters of the blocks after it';
CREATE TABLE health_pass.audit_key_run (
    run bigint PRIMARY KEY,
    level integer NOT NULL,
    first_id bigint NOT NULL,
    last_id bigint NOT NULL,
    pairs bigint NOT NULL,
    pages integer NOT NULL,
    live boolean NOT NULL
);
COMMENT ON TABLE health_pass.audit_key_run IS
    'runs of the subject index: each a list of (key, block) pairs sorted by key, in audit_key_page; level 0 from new or changed blocks, level n+1 merged from 8 of level n; a run not live is a merge under way, or at level -1 one whose pages are being deleted';
CREATE SEQUENCE health_pass.audit_key_run_seq;
CREATE TABLE health_pass.audit_key_page (
    run bigint NOT NULL,
    page integer NOT NULL,
    lo bigint NOT NULL,
    hi bigint NOT NULL,
    pairs bytea NOT NULL,
    PRIMARY KEY (run, page)
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000);
-- merges delete the pages of their inputs: vacuumed every 2,000 dead pages
-- (16 MB), so the next merges reuse the space instead of growing the file
-- a page is at most 496 pairs of 16 bytes: one row per heap page, never
-- compressed (the pairs are random) nor moved out of line
ALTER TABLE health_pass.audit_key_page ALTER COLUMN pairs SET STORAGE PLAIN;
CREATE UNIQUE INDEX audit_key_page_hi ON health_pass.audit_key_page (run, hi, page);
COMMENT ON TABLE health_pass.audit_key_page IS
    'pages of the subject index''s runs: pairs (key bigint, block bigint) in the server''s byte order, sorted; lo and hi are the first and last key';

-- Superusers' INSERT or UPDATE of audit_block (the writer's own inserts fire
-- no trigger): the changed blocks, and inserted blocks behind the mark, are
-- indexed at once from their records
CREATE FUNCTION health_pass._audit_key_patch(blocks bigint[], updated boolean) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hp_audit_key_patch' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass._audit_key_patch(bigint[], boolean) IS
    'trigger helper: index the given audit_block rows (all when updated, else those at or behind the mark) as a run of their own';
CREATE FUNCTION health_pass._audit_block_indexed() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM health_pass._audit_key_patch(ids, TG_OP = 'UPDATE')
        FROM (SELECT pg_catalog.array_agg(min_id) AS ids FROM changed_blocks) c
        WHERE ids IS NOT NULL;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION health_pass._audit_block_indexed() IS
    'trigger: a superuser''s INSERT or UPDATE of audit_block is indexed at once (_audit_key_patch)';
CREATE TRIGGER audit_block_indexed_insert AFTER INSERT ON health_pass.audit_block
    REFERENCING NEW TABLE AS changed_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_block_indexed();
CREATE TRIGGER audit_block_indexed_update AFTER UPDATE ON health_pass.audit_block
    REFERENCING NEW TABLE AS changed_blocks
    FOR EACH STATEMENT EXECUTE FUNCTION health_pass._audit_block_indexed();

-- The index's state, and a rebuild
CREATE FUNCTION health_pass.audit_index_status(OUT indexed_to bigint, OUT unindexed bigint,
    OUT runs integer, OUT levels integer, OUT pairs bigint, OUT merging boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.mark,
           coalesce((SELECT sum(b.max_id - b.min_id + 1) FROM ONLY health_pass.audit_block b
                     WHERE b.min_id > m.mark), 0)::bigint,
           (SELECT count(*) FROM health_pass.audit_key_run r WHERE r.live)::integer,
           (SELECT count(DISTINCT r.level) FROM health_pass.audit_key_run r WHERE r.live)::integer,
           (SELECT coalesce(sum(r.pairs), 0) FROM health_pass.audit_key_run r WHERE r.live)::bigint,
           EXISTS (SELECT FROM health_pass.audit_key_run r WHERE NOT r.live AND r.level >= 0)
    FROM (SELECT max(mark) AS mark FROM health_pass.audit_key_mark) m
$$;
COMMENT ON FUNCTION health_pass.audit_index_status() IS
    'the subject index: its mark (the min_id of the last block it covers), the records of the blocks after it (who_read() tests their bloom filters), its live runs, their levels and pairs, and whether a merge is under way';
CREATE FUNCTION health_pass.audit_reindex() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'only superusers may rebuild the audit log''s subject index'
            USING ERRCODE = '42501';
    END IF;
    -- the mark first: its row lock keeps the writer's steps out until
    -- COMMIT (they skip a locked mark); DELETE, not TRUNCATE, so a snapshot
    -- taken before sees the old mark with the old runs
    UPDATE health_pass.audit_key_mark SET mark = 0;
    DELETE FROM health_pass.audit_key_page;
    DELETE FROM health_pass.audit_key_run;
END
$$;
COMMENT ON FUNCTION health_pass.audit_reindex() IS
    'superusers: empty the subject index; the audit writer indexes the whole log again, and who_read() reads the blocks not yet indexed by their bloom filters meanwhile';

-- who_read() reads only the blocks the subject index names, so it needs
-- SELECT on audit_block; it matches the recorded form of the text it is given
-- and returns the one row of a block that does not decode when its bloom
-- filter matches (the investigator sees the log is damaged there)
CREATE FUNCTION health_pass.who_read(tbl regclass, subject text)
    RETURNS SETOF health_pass.audit_log
    AS 'MODULE_PATHNAME', 'hp_who_read' LANGUAGE C STABLE STRICT
    SET search_path = pg_catalog, pg_temp SET jit = off;
COMMENT ON FUNCTION health_pass.who_read(regclass, text) IS
    'every audit record of one subject (its text as health_pass.subject_text() gives it) of one table and of its partitions and children, newest first, and the "unreadable block" row of a damaged block that may hold one (needs SELECT on audit_block)';

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
COMMENT ON COLUMN health_pass.revocation.revoked_at IS 'when the entry was added, or last given a later expiry by revoke() or an import';
COMMENT ON COLUMN health_pass.revocation.revoked_by IS 'the role that called revoke() or revocation_import() (SET ROLE counts)';

CREATE FUNCTION health_pass.revocation_hashes(p health_pass.pass,
    OUT uci bytea, OUT countrycodeuci bytea, OUT signature bytea)
    AS 'MODULE_PATHNAME', 'hp_revocation_hashes_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION health_pass.revocation_hashes(health_pass.pass) IS
    'the EU gateway revocation hashes of a pass (16 bytes each): UCI and COUNTRYCODEUCI (NULL without a ci, or without iss), SIGNATURE';

CREATE FUNCTION health_pass.revoke(p health_pass.pass, reason text) RETURNS integer
    AS 'MODULE_PATHNAME', 'hp_revoke' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass.revoke(health_pass.pass, text) IS
    'revoke a pass: add its hashes (source local) and, when the transaction commits, record it in the audit chain (outcome revoked, the UVCI as subject, the reason); returns the hashes added, or whose expiry it extended';

CREATE FUNCTION health_pass._revocation_imported(subject text, reason text) RETURNS void
    AS 'MODULE_PATHNAME', 'hp_revocation_imported' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION health_pass._revocation_imported(text, text) IS
    'internal: revocation_import() records its batch in the audit chain at commit';
REVOKE ALL ON FUNCTION health_pass._revocation_imported(text, text) FROM PUBLIC;

CREATE FUNCTION health_pass._revocation_caller() RETURNS name
    AS 'MODULE_PATHNAME', 'hp_revocation_caller' LANGUAGE C STABLE;
COMMENT ON FUNCTION health_pass._revocation_caller() IS
    'internal: the role that called revocation_import() (SET ROLE counts), which revoked_by and the audit record name';
REVOKE ALL ON FUNCTION health_pass._revocation_caller() FROM PUBLIC;

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
COMMENT ON FUNCTION health_pass.revocation_export(text, timestamptz) IS
    'the unexpired entries of one country added since a time, as EU gateway revocation batches of at most 1000 entries (one per hash type, kid and expiry)';

CREATE FUNCTION health_pass.revocation_purge(before timestamptz DEFAULT now()) RETURNS integer
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

-- 8. Event triggers ==========================================================

CREATE EVENT TRIGGER health_pass_forget_dropped ON sql_drop
    EXECUTE FUNCTION health_pass._forget_dropped();
CREATE EVENT TRIGGER health_pass_protect_new_children ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE FOREIGN TABLE')
    EXECUTE FUNCTION health_pass._protect_new_children();

-- 9. Privileges and configuration tables =====================================

-- Everyone may use the type and read the trust list; only the owner edits it.
GRANT USAGE ON SCHEMA health_pass TO PUBLIC;
REVOKE ALL ON health_pass.trust_list FROM PUBLIC;
GRANT SELECT ON health_pass.trust_list TO PUBLIC;

-- Rules and audit are for the DBA and the auditors they grant (SELECT on
-- audit_log and audit_block).
REVOKE ALL ON health_pass.protected_table, health_pass.access_rule,
              health_pass.protected_tables, health_pass.audit_block,
              health_pass.audit_log FROM PUBLIC;

-- Break glass is granted by the DBA; audit_status() is for superusers and
-- pg_monitor, audit_flush() for superusers and the roles the DBA grants it.
REVOKE EXECUTE ON FUNCTION health_pass.break_glass(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.audit_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION health_pass.audit_status() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION health_pass.audit_flush() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._audit_ship(text, timestamptz, bigint, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._audit_quota_admit(oid, oid, text, bytea) FROM PUBLIC;
REVOKE ALL ON health_pass.audit_timeline FROM PUBLIC;
-- the subject index: derived from audit_block, read by who_read() in C
REVOKE ALL ON health_pass.audit_key_mark, health_pass.audit_key_run,
              health_pass.audit_key_page, health_pass.audit_key_run_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._audit_key_patch(bigint[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass.audit_reindex() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass.audit_index_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION health_pass.audit_index_status() TO pg_monitor;

-- Internal functions that act as the extension owner or on any table.
REVOKE ALL ON FUNCTION health_pass._subject_statistics(regclass, smallint, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._hide_subject_statistics(regclass, smallint) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._row_security(regclass, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._protect_one(regclass, name, regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._write_probe() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._write_probe_trigger(regclass, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._protected_table_added() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._forget_dropped() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_pass._protect_new_children() FROM PUBLIC;

-- Tables whose rows pg_dump keeps: the rules and the log (the trust list, the
-- revocations and the signing keys: sections 6 and 7).
SELECT pg_catalog.pg_extension_config_dump('health_pass.protected_table', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.access_rule', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.audit_block', '');
SELECT pg_catalog.pg_extension_config_dump('health_pass.audit_timeline', '');
-- the anchors of the chain: only superusers set them (audit_checkpoint,
-- audit_archive); audit_verify() reads them without a grant
REVOKE ALL ON health_pass.audit_anchor FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.audit_checkpoint() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION health_pass.audit_archive(timestamptz) FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('health_pass.audit_anchor', '');
