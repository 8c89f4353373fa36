-- pgTAP: the SQL surface, privileges and verdict semantics
\set ECHO none
\set QUIET on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS health_pass;
\i test/fixtures/fixtures.sql
SET search_path = public, health_pass;
BEGIN;
SELECT plan(35);

SELECT has_type('health_pass', 'pass', 'type health_pass.pass exists');
SELECT has_type('health_pass', 'verdict', 'type health_pass.verdict exists');
SELECT has_table('health_pass', 'trust_list', 'trust_list is an ordinary table');
SELECT has_column('health_pass', 'trust_list', c, 'trust_list has ' || c)
  FROM unnest(ARRAY['kid', 'country', 'certificate', 'valid_from', 'valid_until', 'key_usage']) AS c;
SELECT functions_are('health_pass', ARRAY[
    'pass_in', 'pass_out', 'pass_recv', 'pass_send', 'pass_eq', 'pass_ne', 'pass_lt', 'pass_le',
    'pass_gt', 'pass_ge', 'pass_cmp', 'pass_hash', 'pass_hash_extended', 'payload', 'kid', 'alg',
    'issuer', 'issued_at', 'expires_at', 'kind', 'uvci', 'inspect', 'certificate_info',
    'trust_list_fill', 'trust_add', 'trust_import', 'check', 'valid_at', 'verify', 'schema_errors', 'issue', 'issue_batch',
    'protect', 'unprotect', 'allow', 'disallow', 'break_glass', 'audit_verify', 'audit_status',
    'audit_flush', 'who_read', 'subject_text', '_policy_changed', '_preloaded', '_require_admin', '_forget_dropped',
    '_audit_guard', '_subject_statistics', '_hide_subject_statistics', '_audit_rows', '_audit_ship', '_audit_quota_admit',
    'audit_checkpoint', 'audit_archive', '_audit_keys', 'audit_index_status', 'audit_reindex',
    '_audit_key_patch', '_audit_block_indexed',
    '_audit_may_hold', '_audit_edit', '_row_security', '_protect_blockers', '_protect_one',
    '_protect_new_children', '_write_probe', '_write_probe_trigger', '_protected_table_added',
    '_signing_key_alg', '_signing_key_ref', '_signing_key_prove', 'signing_key_fill',
    'signing_key_add', 'grant_signing', 'revoke_signing', 'signer_check', '_sign',
    'revocation_hashes', 'revoke', 'revocation_import',
    'revocation_export', 'revocation_purge', '_revocation_imported', '_revocation_caller'],
    'exactly the documented functions');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'health_pass' AND obj_description(p.oid, 'pg_proc') IS NULL)::int, 0,
          'every SQL function has a comment');
SELECT is((SELECT array_agg(p.proname || ':' || coalesce(p.proconfig::text LIKE '%search_path=pg_catalog%', false)
                      ORDER BY p.proname)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'health_pass' AND p.prosecdef),
          ARRAY['_forget_dropped:true', '_protect_new_children:true', 'audit_index_status:true',
                'revocation_export:true', 'revocation_import:true', 'revocation_purge:true'],
          'SECURITY DEFINER functions: the event triggers, the subject index''s status and revocation import, export, purge, with search_path pinned');
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'health_pass' AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
              AND NOT coalesce(p.proconfig::text LIKE '%search_path%', false))::int, 0,
          'every PL/pgSQL function pins search_path');
SELECT ok(EXISTS (SELECT FROM pg_operator WHERE oprname = '=' AND oprleft = 'health_pass.pass'::regtype
                  AND oprright = 'health_pass.pass'::regtype AND oprcanhash AND oprcanmerge), '= exists, hashes and merges');
SELECT ok(EXISTS (SELECT FROM pg_operator WHERE oprname = '@@' AND oprleft = 'health_pass.pass'::regtype
                  AND oprright = 'timestamptz'::regtype), '@@ (pass, timestamptz) exists');
SELECT has_opclass('health_pass', 'pass_ops', 'btree opclass');
SELECT has_opclass('health_pass', 'pass_hash_ops', 'hash opclass');

-- the trust list for the checks below
TRUNCATE health_pass.trust_list;
SELECT is((SELECT count(health_pass.trust_add(der)) FROM fx_cert WHERE name <> 'twin')::int, 6, 'six DSCs added');

SELECT ok((SELECT txt::health_pass.pass @@ now() FROM fx_pass WHERE name = 'ok_vacc'), 'valid pass @@ now()');
SELECT ok(NOT (SELECT txt::health_pass.pass @@ now() FROM fx_pass WHERE name = 'expired'), 'expired pass is not @@ now()');
SELECT is((SELECT (health_pass.check(txt::health_pass.pass)).reason FROM fx_pass WHERE name = r), r, 'reason ' || r)
  FROM unnest(ARRAY['unknown_key', 'bad_signature', 'key_usage', 'key_not_valid', 'expired']) AS r;
SELECT is((SELECT (health_pass.check(txt::health_pass.pass)).reason FROM fx_pass WHERE name = 'not_yet'),
          'not_yet_valid', 'reason not_yet_valid');
SELECT is((SELECT (health_pass.check(txt::health_pass.pass)).reason FROM fx_pass WHERE name = 'alg_es384'),
          'unsupported_algorithm', 'reason unsupported_algorithm');
SELECT is((SELECT (health_pass.check(txt::health_pass.pass)).reason FROM fx_pass WHERE name = 'no_exp'),
          'missing_claims', 'reason missing_claims');
SELECT is((SELECT (health_pass.check(txt::health_pass.pass)).reasons FROM fx_pass WHERE name = 'key_not_valid'),
          ARRAY['key_not_valid'], 'reasons lists every failure');
SELECT is((SELECT (health_pass.check(txt::health_pass.pass, '2031-01-01')).reasons FROM fx_pass WHERE name = 'key_usage'),
          ARRAY['key_usage', 'expired'], 'several failures are all reported, in order');
SELECT throws_ok($$SELECT 'HC1:###'::health_pass.pass$$, '22P02', NULL, 'bad base45 is 22P02');
SELECT throws_like($$SELECT 'XX1:'::health_pass.pass$$, '%prefix%', 'the prefix stage is named');
SELECT is(health_pass.inspect('HC1:AAA') ->> 'stage', 'zlib', 'inspect names the stage');
SELECT lives_ok($$SELECT health_pass.inspect(txt) FROM fx_hostile$$, 'inspect never raises on hostile input');
-- the alg must come from the protected header; every zero/DER/short signature is invalid
SELECT ok(NOT bool_or(txt::health_pass.pass @@ '2022-01-01'::timestamptz),
          'no malformed signature or algorithm is ever valid')
  FROM fx_pass WHERE name IN ('alg_unprotected_only', 'alg_mismatch', 'zero_signature', 'der_signature',
                              'short_signature', 'signature_r_is_n', 'pss_salt_20', 'p384_key', 'rsa1024_key');
SELECT * FROM finish();
ROLLBACK;
