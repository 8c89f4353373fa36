-- Signing keys at the SQL level, without key files or tokens (signatures:
-- test/t/070_signing_pem.pl, test/t/071_signing_pkcs11.pl)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
\i test/fixtures/load.sql
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- 1. the trigger sets kid (as trust_add), alg, country, validity and key
--    usage from the certificate; a plain INSERT does not touch the key
INSERT INTO health_pass.signing_key (name, certificate, key_ref)
    SELECT name, der, 'file:' || name || '.pem' FROM fx_cert WHERE name IN ('ec', 'ecv', 'rsa');
SELECT name, kid = substr(sha256(certificate), 1, 8) AS kid_as_trust_add, alg, country,
       valid_from, valid_until, key_usage
  FROM health_pass.signing_key ORDER BY name;
-- an UPDATE cannot make them disagree with the certificate
UPDATE health_pass.signing_key SET country = 'ZZ', alg = 'PS256', kid = '\x00', key_usage = '{test}'
 WHERE name = 'ec';
SELECT name, alg, country, kid = substr(sha256(certificate), 1, 8) AS kid_ok, key_usage
  FROM health_pass.signing_key WHERE name = 'ec';
-- keys other than EC P-256 and RSA >= 2048, and what is not a certificate
SELECT f.name, pg_temp.err(format(
    'INSERT INTO health_pass.signing_key (name, certificate, key_ref) VALUES (%L, %L, %L)',
    'x', f.der, 'file:x.pem')) FROM fx_cert f WHERE f.name IN ('p384', 'rsa1024') ORDER BY 1;
SELECT pg_temp.err($$INSERT INTO health_pass.signing_key (name, certificate, key_ref)
                     VALUES ('x', '\x3082', 'file:x.pem')$$);
-- 2. key_ref forms: never a PIN or a module in the URI (and never repeated
--    in the message), a file name inside key_directory
SELECT r AS key_ref, pg_temp.err(format('SELECT health_pass._signing_key_ref(%L)', r)) AS result
  FROM unnest(ARRAY[
    'file:a.pem', 'file:sub/a.pem', 'file:../a.pem', 'file:/etc/passwd', 'file:a/./b.pem',
    'file:a//b.pem', 'file:', 'ldap:x', 'FILE:a.pem',
    'pkcs11:token=t;object=o', 'pkcs11:token=t;id=%01%02', 'pkcs11:object=o;type=private',
    'pkcs11:manufacturer=SoftHSM%20project;serial=1;model=m;slot-id=3;object=o',
    'pkcs11:object=o;type=secret-key', 'pkcs11:token=t', 'pkcs11:',
    'pkcs11:object=o?pin-value=4242', 'pkcs11:object=o;pin-value=4242',
    'pkcs11:object=o?pin-source=file:/etc/pin', 'pkcs11:object=o?module-path=/lib/x.so',
    'pkcs11:object=o;module-name=x', 'pkcs11:object=o?foo=bar', 'pkcs11:object=o;object=p',
    'pkcs11:id=%zz', 'pkcs11:id=%0', 'pkcs11:object=o;slot-id=abc', 'pkcs11:object=o;serial',
    'pkcs11:object=o;;token=t', 'pkcs11:object=o;colour=red', 'pkcs11:object=a%00b']) r;
-- 3. adding needs the key: no key_directory, no module here
SELECT pg_temp.err(format('SELECT health_pass.signing_key_add(%L, %L, %L)', 'y', der, 'file:y.pem'))
  FROM fx_cert WHERE name = 'ec';
SELECT pg_temp.err(format('SELECT health_pass.signing_key_add(%L, %L, %L)', 'y', der,
                          'pkcs11:token=t;object=o'))
  FROM fx_cert WHERE name = 'ec';
SELECT count(*) AS keys FROM health_pass.signing_key;
-- 4. grants: checked before the key is reached, on every call
CREATE ROLE hp_signer;
CREATE ROLE hp_clerk IN ROLE hp_signer;
GRANT USAGE ON SCHEMA health_pass TO hp_signer, hp_clerk;
SELECT format('SELECT health_pass.signing_key_add(%L, %L, %L)', 'z', der, 'file:z.pem') AS add_rsa
  FROM fx_cert WHERE name = 'rsa' \gset
SET ROLE hp_clerk;
SELECT name, alg, country FROM health_pass.signing_key ORDER BY name;    -- signers see the keys
SELECT pg_temp.err('SELECT key_ref FROM health_pass.signing_key');       -- not key_ref
SELECT pg_temp.err('SELECT * FROM health_pass.signing_grant');
SELECT pg_temp.err($$SELECT health_pass.signer_check('ec')$$);
SELECT pg_temp.err($$SELECT health_pass.signer_check('nosuch')$$);
SELECT pg_temp.err($$SELECT health_pass.grant_signing('hp_clerk', 'ec')$$);
SELECT pg_temp.err($$SELECT health_pass._sign('ec', 'x')$$);
SELECT pg_temp.err(:'add_rsa');
SELECT count(*) AS settings_seen FROM pg_settings
 WHERE name IN ('health_pass.key_directory', 'health_pass.pkcs11_module', 'health_pass.pkcs11_pin_file');
SELECT pg_temp.err('SHOW health_pass.pkcs11_pin_file');
RESET ROLE;
SELECT health_pass.grant_signing('hp_signer', 'ec');
SELECT health_pass.grant_signing('hp_signer', 'ec');                       -- again: no error
SELECT pg_temp.err($$SELECT health_pass.grant_signing('hp_signer', 'nosuch')$$);
SELECT g.role, g.role_name, s.name FROM health_pass.signing_grant g
  JOIN health_pass.signing_key s ON s.id = g.key_id;
SET ROLE hp_clerk;
-- granted through hp_signer: past the grant, refused at the key (no directory)
SELECT pg_temp.err($$SELECT health_pass.signer_check('ec')$$);
SELECT pg_temp.err($$SELECT health_pass.signer_check('rsa')$$);             -- another key
RESET ROLE;
BEGIN;
SELECT health_pass.revoke_signing('hp_signer', 'ec');
ROLLBACK;                                                                    -- changes nothing
SET ROLE hp_clerk;
SELECT pg_temp.err($$SELECT health_pass.signer_check('ec')$$);
RESET ROLE;
SELECT health_pass.revoke_signing('hp_signer', 'ec');
SELECT health_pass.revoke_signing('hp_signer', 'ec');                      -- nothing left
SET ROLE hp_clerk;
SELECT pg_temp.err($$SELECT health_pass.signer_check('ec')$$);
RESET ROLE;
-- a key dropped takes its grants
SELECT health_pass.grant_signing('hp_signer', 'rsa');
DELETE FROM health_pass.signing_key WHERE name = 'rsa';
-- a key name echoed in a message is clipped to 64 bytes on a character
-- boundary and marked "..." (a 10 kB name must not come back whole)
SELECT pg_temp.err(format('SELECT health_pass.signer_check(%L)', repeat('k', 10000)));
SELECT pg_temp.err(format('SELECT health_pass.signer_check(%L)', repeat('é', 5000)));
SELECT pg_temp.err(format('SELECT health_pass.signer_check(%L)', repeat('k', 64)));  -- 64: whole
INSERT INTO health_pass.signing_key (name, certificate, key_ref)
    SELECT repeat('long', 2500), der, 'file:nosuch.pem' FROM fx_cert WHERE name = 'ec';
SELECT pg_temp.err(format('SELECT health_pass._sign(%L, %L)', repeat('long', 2500), 'x'));
DELETE FROM health_pass.signing_key WHERE name = repeat('long', 2500);
SELECT count(*) AS grants_left FROM health_pass.signing_grant;
DELETE FROM health_pass.signing_key;
REVOKE USAGE ON SCHEMA health_pass FROM hp_signer, hp_clerk;
DROP ROLE hp_clerk;
DROP ROLE hp_signer;
