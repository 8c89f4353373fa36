-- The trust list: trust_add, trust_import, plain SQL, snapshots
\i test/fixtures/load.sql
SET timezone = 'UTC';
TRUNCATE health_pass.trust_list;
-- kid defaults to the first 8 bytes of SHA-256 of the DER
SELECT health_pass.trust_add(der) = substr(sha256(der), 1, 8) AS default_kid FROM fx_cert WHERE name = 'ec';
SELECT health_pass.trust_add(der, '\x0102'::bytea) AS explicit_kid FROM fx_cert WHERE name = 'rsa';
SELECT health_pass.trust_add(der) = substr(sha256(der), 1, 8) AS again_no_duplicate FROM fx_cert WHERE name = 'ec';
SELECT country, valid_from, valid_until, key_usage, subject FROM health_pass.trust_list ORDER BY id;
-- certificate_info
SELECT country, not_before, not_after, key_usage, key_type, key_bits
  FROM fx_cert, health_pass.certificate_info(der) ORDER BY name;
-- a plain INSERT fills what it leaves NULL; a bad certificate is refused
INSERT INTO health_pass.trust_list (kid, certificate)
    SELECT '\xaa'::bytea, der FROM fx_cert WHERE name = 'ecv';
SELECT country, key_usage FROM health_pass.trust_list WHERE kid = '\xaa';
INSERT INTO health_pass.trust_list (kid, certificate) VALUES ('\xbb', '\x3082');
-- trust_import: gateway JSON, array or {"certificates": [...]}; only DSC entries
TRUNCATE health_pass.trust_list;
SELECT health_pass.trust_import(jsonb_build_array(
    jsonb_build_object('kid', encode(substr(sha256(der), 1, 8), 'base64'), 'country', 'XX',
                       'certificateType', 'DSC', 'rawData', encode(der, 'base64')),
    jsonb_build_object('kid', 'AAAAAAAAAAA=', 'country', 'XX',
                       'certificateType', 'CSCA', 'rawData', encode(der, 'base64'))))
  FROM fx_cert WHERE name = 'ec';
SELECT health_pass.trust_import(jsonb_build_object('certificates', jsonb_agg(jsonb_build_object(
    'kid', encode(substr(sha256(der), 1, 8), 'base64'), 'country', upper(left(name, 2)),
    'certificateType', 'DSC', 'rawData', encode(der, 'base64')))))
  FROM fx_cert;
SELECT count(*) FROM health_pass.trust_list;
SELECT health_pass.trust_import('{"nothing": 1}');
-- a check sees exactly what its snapshot sees
SELECT (health_pass.check(txt::health_pass.pass)).reason FROM fx_pass WHERE name = 'ok_vacc';
BEGIN;
DELETE FROM health_pass.trust_list;
SELECT (health_pass.check(txt::health_pass.pass)).reason AS inside_tx FROM fx_pass WHERE name = 'ok_vacc';
ROLLBACK;
SELECT (health_pass.check(txt::health_pass.pass)).reason AS after_rollback FROM fx_pass WHERE name = 'ok_vacc';
-- the key cache does not keep a removed key alive
DELETE FROM health_pass.trust_list WHERE certificate = (SELECT der FROM fx_cert WHERE name = 'ec');
SELECT (health_pass.check(txt::health_pass.pass)).reason AS after_delete FROM fx_pass WHERE name = 'ok_vacc';
-- a DBA narrows a DSC with plain SQL
SELECT health_pass.trust_add(der) IS NOT NULL FROM fx_cert WHERE name = 'ec';
UPDATE health_pass.trust_list SET key_usage = '{test}' WHERE certificate = (SELECT der FROM fx_cert WHERE name = 'ec');
SELECT (health_pass.check(txt::health_pass.pass)).reasons FROM fx_pass WHERE name = 'ok_vacc';
UPDATE health_pass.trust_list SET valid_until = '2021-05-01' WHERE certificate = (SELECT der FROM fx_cert WHERE name = 'ec');
SELECT (health_pass.check(txt::health_pass.pass)).reasons FROM fx_pass WHERE name = 'ok_vacc';
-- replacing the certificate refreshes the columns the UPDATE does not set
DELETE FROM health_pass.trust_list WHERE certificate = (SELECT der FROM fx_cert WHERE name = 'old');
UPDATE health_pass.trust_list SET certificate = (SELECT der FROM fx_cert WHERE name = 'old')
 WHERE certificate = (SELECT der FROM fx_cert WHERE name = 'ec');
SELECT country, valid_from, valid_until, key_usage FROM health_pass.trust_list
 WHERE certificate = (SELECT der FROM fx_cert WHERE name = 'old');
-- ordinary roles may read the trust list but not change it
CREATE ROLE hp_reader;
SET ROLE hp_reader;
SELECT count(*) > 0 AS can_read FROM health_pass.trust_list;
DELETE FROM health_pass.trust_list;
RESET ROLE;
DROP ROLE hp_reader;
