-- Reading a pass: payload, kid, alg, issuer, dates, kind, uvci
\i test/fixtures/load.sql
SET timezone = 'UTC';
SELECT name, health_pass.kind(p), health_pass.alg(p), health_pass.issuer(p),
       health_pass.issued_at(p), health_pass.expires_at(p), length(health_pass.kid(p)) AS kid_len,
       health_pass.uvci(p)
  FROM (SELECT name, txt::health_pass.pass AS p FROM fx_pass) s
 WHERE name IN ('ok_vacc', 'ok_test', 'ok_recovery', 'ok_ps256', 'alg_es384',
                'alg_unprotected_only', 'floats_and_tags', 'no_exp', 'kid_unprotected')
 ORDER BY name;
SELECT jsonb_pretty(health_pass.payload(txt::health_pass.pass)) FROM fx_pass WHERE name = 'ok_test';
-- floats stay numbers equal to their integer value; tag 1004 / tag 0 dates stay strings
SELECT health_pass.payload(p) -> 'v' -> 0 -> 'dn' AS dn,
       (health_pass.payload(p) -> 'v' -> 0 ->> 'dn')::numeric = 2 AS dn_is_2,
       health_pass.payload(p) -> 'v' -> 0 -> 'dt' AS dt
  FROM (SELECT txt::health_pass.pass AS p FROM fx_pass WHERE name = 'floats_and_tags') s;
SELECT health_pass.payload(txt::health_pass.pass) -> 't' -> 0 -> 'sc' AS sc
  FROM fx_pass WHERE name = 'tag0_date';
-- the kid is the protected one when both headers carry one
SELECT health_pass.kid(txt::health_pass.pass) FROM fx_pass WHERE name = 'kid_wrong_protected';
-- schema_errors
SELECT name, health_pass.schema_errors(txt::health_pass.pass)
  FROM fx_pass WHERE name IN ('ok_vacc', 'ok_test', 'ok_recovery', 'schema_two_kinds', 'schema_bad')
 ORDER BY name;
