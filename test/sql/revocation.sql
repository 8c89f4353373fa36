-- Revocation (issue 14 §3): the gateway's hashes, revoke() and its audit
-- record, a revoked DSC, batches in and out, expiry and purge, privileges
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
\i test/fixtures/load.sql
SET timezone = 'UTC';
TRUNCATE health_pass.trust_list;
SELECT count(health_pass.trust_add(der)) FROM fx_cert WHERE name <> 'twin';
TRUNCATE health_pass.revocation;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- audit records after a mark (revoke() records are durable once it commits)
CREATE FUNCTION pg_temp.audit_mark() RETURNS bigint LANGUAGE sql AS
    $$ SELECT coalesce(max(id), 0) FROM health_pass.audit_log $$;
CREATE FUNCTION pg_temp.revocations_since(mark bigint)
    RETURNS TABLE (session_user_name name, current_user_name name, relation regclass,
                   subject text, outcome text, reason text)
    LANGUAGE sql AS $$
    SELECT session_user_name, current_user_name, relation, subject, outcome, reason
      FROM health_pass.audit_log WHERE id > mark AND outcome = 'revoked' ORDER BY id $$;

-- §1 the hashes: SHA-256 truncated to 16 bytes of the ci, of iss || ci, and of
-- the signature (r only for ES256; sample vectors: test/t/060_revocation.pl)
SELECT name,
       h.uci = substr(sha256(convert_to(health_pass.uvci(p), 'UTF8')), 1, 16) AS uci_ok,
       h.countrycodeuci = substr(sha256(convert_to(health_pass.issuer(p) || health_pass.uvci(p), 'UTF8')), 1, 16) AS ccuci_ok,
       octet_length(h.signature) AS sig_len
  FROM (SELECT name, txt::health_pass.pass AS p FROM fx_pass) s,
       health_pass.revocation_hashes(p) h
 WHERE name IN ('ok_vacc', 'ok_test', 'ok_recovery', 'ok_ps256', 'expired')
 ORDER BY name;
-- ES256: only r counts: flipping the last bit of s (bad_signature) keeps the
-- SIGNATURE hash; another signature (expired) has another
SELECT a.name, b.name, (health_pass.revocation_hashes(a.txt::health_pass.pass)).signature
                     = (health_pass.revocation_hashes(b.txt::health_pass.pass)).signature AS same_signature_hash
  FROM fx_pass a, fx_pass b
 WHERE a.name = 'ok_vacc' AND b.name IN ('bad_signature', 'expired') ORDER BY 2;
-- (passes without ci or iss, and PS256 against hashlib: test/t/060_revocation.pl)

-- §2 revoke(): the pass and every pass with its UVCI are revoked; @@ false
SELECT health_pass.uvci(txt::health_pass.pass) FROM fx_pass WHERE name = 'ok_ps256';
SELECT pg_temp.audit_mark() AS m \gset
SELECT health_pass.revoke(txt::health_pass.pass, 'leaked on social media') AS added
  FROM fx_pass WHERE name = 'ok_ps256';
SELECT hash_type, country, encode(kid, 'hex') = (SELECT encode(health_pass.kid(txt::health_pass.pass), 'hex') FROM fx_pass WHERE name = 'ok_ps256') AS kid_ok,
       expires, reason, source, revoked_by = current_user AS by_me
  FROM health_pass.revocation ORDER BY hash_type;
SELECT name, (v).valid, (v).reason, (v).reasons
  FROM (SELECT name, health_pass.check(txt::health_pass.pass, '2022-01-01') AS v FROM fx_pass) s
 WHERE name IN ('ok_ps256', 'ok_vacc', 'expired', 'ok_test', 'unknown_key') ORDER BY name;
SELECT txt::health_pass.pass @@ '2022-01-01'::timestamptz AS valid FROM fx_pass WHERE name = 'ok_ps256';
-- recorded once committed: outcome revoked, the UVCI, the reason, who
SELECT * FROM pg_temp.revocations_since(:m);
-- revoking again adds nothing (and is recorded again)
SELECT health_pass.revoke(txt::health_pass.pass, 'again') AS added FROM fx_pass WHERE name = 'ok_ps256';
SELECT count(*) FROM pg_temp.revocations_since(:m);
TRUNCATE health_pass.revocation;

-- only the SIGNATURE hash: that pass alone (same ci elsewhere stays valid)
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'XX', 'hashType', 'SIGNATURE', 'expires', '2030-01-01T00:00:00Z',
    'entries', jsonb_build_array(jsonb_build_object('hash',
        encode((health_pass.revocation_hashes(txt::health_pass.pass)).signature, 'base64')))))
  FROM fx_pass WHERE name = 'ok_recovery';
SELECT name, (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason
  FROM fx_pass WHERE name IN ('ok_recovery', 'ok_vacc', 'ok_test') ORDER BY name;

-- a rolled-back revoke changes nothing and leaves no record; so does a
-- rolled-back savepoint; a committed one applies to the next statement
SELECT pg_temp.audit_mark() AS m \gset
BEGIN;
SELECT health_pass.revoke(txt::health_pass.pass, 'mistake') AS added FROM fx_pass WHERE name = 'ok_test';
SELECT (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason AS inside FROM fx_pass WHERE name = 'ok_test';
ROLLBACK;
SELECT (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason AS after_rollback FROM fx_pass WHERE name = 'ok_test';
BEGIN;
SAVEPOINT a;
SELECT health_pass.revoke(txt::health_pass.pass, 'mistake in a savepoint') AS added FROM fx_pass WHERE name = 'ok_test';
ROLLBACK TO SAVEPOINT a;
SAVEPOINT b;
SELECT health_pass.revoke(txt::health_pass.pass, 'kept through a released savepoint') AS added FROM fx_pass WHERE name = 'ok_ps256';
RELEASE SAVEPOINT b;
COMMIT;
SELECT name, (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason
  FROM fx_pass WHERE name IN ('ok_test', 'ok_ps256') ORDER BY name;
SELECT * FROM pg_temp.revocations_since(:m);
-- a revoke in a transaction that then fails: no record either
SELECT pg_temp.audit_mark() AS m \gset
BEGIN;
SELECT health_pass.revoke(txt::health_pass.pass, 'fails later') AS added FROM fx_pass WHERE name = 'ok_vacc';
SELECT 1 / 0;
COMMIT;
SELECT count(*) AS records, (SELECT count(*) FROM health_pass.revocation WHERE reason = 'fails later') AS rows
  FROM pg_temp.revocations_since(:m);
-- two-phase commit is refused before anything is recorded
BEGIN;
SELECT health_pass.revoke(txt::health_pass.pass, 'prepared') AS added FROM fx_pass WHERE name = 'ok_vacc';
PREPARE TRANSACTION 'regress_revoke';
SELECT count(*) AS records FROM pg_temp.revocations_since(:m);
-- a reason is required; NULL arguments give NULL
SELECT pg_temp.err($$SELECT health_pass.revoke(txt::health_pass.pass, '  ') FROM fx_pass WHERE name = 'ok_vacc'$$);
SELECT pg_temp.err($$SELECT health_pass.revoke(txt::health_pass.pass, repeat('x', 300)) FROM fx_pass WHERE name = 'ok_vacc'$$);
SELECT health_pass.revoke(NULL, 'x') IS NULL AS strict;
-- a reason of Unicode white space only (U+3000, U+00A0, U+2003 and tabs)
-- is as blank as an ASCII one; white space around a word is a reason
SELECT pg_temp.err(format('SELECT health_pass.revoke(txt::health_pass.pass, %L) FROM fx_pass WHERE name = %L', r, 'ok_vacc'))
  FROM (VALUES (U&'\3000'), (U&'\00A0\00A0'), (U&' \2003\0009\3000 '), (U&'\0085\2028\202F')) v(r);
BEGIN;
SELECT health_pass.revoke(txt::health_pass.pass, U&'\3000leaked\00A0') AS added FROM fx_pass WHERE name = 'ok_vacc';
ROLLBACK;
TRUNCATE health_pass.revocation;

-- §3 privileges: not PUBLIC; granted EXECUTE is enough (no table privilege);
-- the record names the caller's role
CREATE ROLE regress_registrar LOGIN;
CREATE ROLE regress_rev_nobody LOGIN;
GRANT EXECUTE ON FUNCTION health_pass.revoke(health_pass.pass, text) TO regress_registrar;
GRANT SELECT ON fx_pass TO regress_registrar, regress_rev_nobody;
SET ROLE regress_rev_nobody;
SELECT pg_temp.err($$SELECT health_pass.revoke(txt::health_pass.pass, 'x') FROM fx_pass WHERE name = 'ok_vacc'$$);
SELECT pg_temp.err($$SELECT health_pass.revocation_import('{}')$$);
SELECT pg_temp.err($$SELECT health_pass.revocation_export('XX', NULL)$$);
SELECT pg_temp.err($$SELECT health_pass.revocation_purge()$$);
SELECT pg_temp.err($$SELECT count(*) FROM health_pass.revocation$$);
SELECT pg_temp.err($$INSERT INTO health_pass.revocation (hash, hash_type) VALUES ('\x00000000000000000000000000000000', 'UCI')$$);
-- anyone may compute hashes and check passes (check() reads the table itself)
SELECT octet_length((health_pass.revocation_hashes(txt::health_pass.pass)).uci) FROM fx_pass WHERE name = 'ok_vacc';
RESET ROLE;
SELECT pg_temp.audit_mark() AS m \gset
SET ROLE regress_registrar;
SELECT health_pass.revoke(txt::health_pass.pass, 'registrar revokes') AS added FROM fx_pass WHERE name = 'ok_ps256';
SELECT pg_temp.err($$SELECT count(*) FROM health_pass.revocation$$);
SET ROLE regress_rev_nobody;
SELECT (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason FROM fx_pass WHERE name = 'ok_ps256';
RESET ROLE;
SELECT revoked_by, source, count(*) FROM health_pass.revocation GROUP BY 1, 2;
SELECT * FROM pg_temp.revocations_since(:m);
-- the functions that act as the owner pin search_path
SELECT p.proname, p.prosecdef, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'health_pass'::regnamespace
   AND p.proname IN ('revoke', 'revocation_import', 'revocation_export', 'revocation_purge', 'revocation_hashes')
 ORDER BY 1;
TRUNCATE health_pass.revocation;

-- §4 a revoked DSC: every pass it signed is key_revoked, whatever its iat
UPDATE health_pass.trust_list SET revoked_at = '2023-05-01', revocation_reason = 'key leaked'
 WHERE certificate = (SELECT der FROM fx_cert WHERE name = 'ec');
SELECT name, (v).reason, (v).reasons
  FROM (SELECT name, health_pass.check(txt::health_pass.pass, '2022-01-01') AS v FROM fx_pass) s
 WHERE name IN ('ok_vacc', 'expired', 'ok_ps256', 'usage_ok') ORDER BY name;
-- checked at a time before the leak, and for an iat long before: still refused
SELECT (health_pass.check(txt::health_pass.pass, '2021-06-02')).reason FROM fx_pass WHERE name = 'ok_vacc';
UPDATE health_pass.trust_list SET revoked_at = NULL, revocation_reason = NULL;
SELECT (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason FROM fx_pass WHERE name = 'ok_vacc';

-- §5 import: the gateway's batch; idempotent; all or nothing
CREATE TEMP TABLE rnd AS
SELECT i, substr(sha256(('regress' || i)::bytea), 1, 16) AS h FROM generate_series(1, 2500) i;
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'DE', 'kid', 'AQIDBAUGBwg=', 'hashType', 'UCI', 'expires', '2031-01-01T00:00:00Z',
    'entries', (SELECT jsonb_agg(jsonb_build_object('hash', encode(h, 'base64'))) FROM rnd WHERE i <= 1000))) AS added;
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'DE', 'kid', 'AQIDBAUGBwg=', 'hashType', 'UCI', 'expires', '2031-01-01T00:00:00Z',
    'entries', (SELECT jsonb_agg(jsonb_build_object('hash', encode(h, 'base64'))) FROM rnd WHERE i <= 1000))) AS again;
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'DE', 'kid', 'AQIDBAUGBwg=', 'hashType', 'UCI', 'expires', '2031-01-01T00:00:00Z',
    'entries', (SELECT jsonb_agg(jsonb_build_object('hash', encode(h, 'base64'))) FROM rnd WHERE i BETWEEN 901 AND 1900))) AS overlapping;
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'DE', 'hashType', 'SIGNATURE', 'expires', '2031-06-30T12:00:00.5+02:00',
    'entries', (SELECT jsonb_agg(jsonb_build_object('hash', encode(h, 'base64'))) FROM rnd WHERE i > 1900))) AS no_kid;
SELECT hash_type, country, encode(kid, 'hex') AS kid, expires, source, reason, count(*)
  FROM health_pass.revocation GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1;
-- malformed: refused whole with YHR01, naming the stage and the entry
SELECT count(*) AS before FROM health_pass.revocation;
SELECT pg_temp.err(format('SELECT health_pass.revocation_import(%L)', b)) FROM (VALUES
    ('[]'::jsonb),
    ('{"country": "de", "hashType": "UCI", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}'),
    ('{"country": "DE", "hashType": "uci", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}'),
    ('{"country": "DE", "hashType": "UCI", "kid": 5, "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}'),
    ('{"country": "DE", "hashType": "UCI", "kid": "not base64!", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}'),
    ('{"country": "DE", "hashType": "UCI", "expires": "tomorrow", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}'),
    ('{"country": "DE", "hashType": "UCI", "expires": "2022-13-45T00:00:00Z", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}'),
    ('{"country": "DE", "hashType": "UCI", "entries": []}'),
    ('{"country": "DE", "hashType": "UCI", "entries": {"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}}'),
    ('{"country": "DE", "hashType": "UCI", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}, {"hash": "AAAA"}]}'),
    ('{"country": "DE", "hashType": "UCI", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}, {"hash": "AAAAAAAAAAAAAAAAAAAAAB=="}]}'),
    ('{"country": "DE", "hashType": "UCI", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}, {"hash": "AAAAAAAAAAAAAAAAAAAAAAAA"}, {"hash": 1}]}'),
    ('{"country": "DE", "hashType": "UCI", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}, "AAAAAAAAAAAAAAAAAAAAAA=="]}'),
    ('{"country": "DE", "hashType": "UCI", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}')) v(b);
SELECT pg_temp.err(format('SELECT health_pass.revocation_import(%L)', jsonb_build_object(
    'country', 'DE', 'hashType', 'UCI',
    'entries', (SELECT jsonb_agg(jsonb_build_object('hash', encode(substr(sha256(int4send(i)), 1, 16), 'base64')))
                  FROM generate_series(1, 1001) i))));
SELECT pg_temp.err($$SELECT health_pass.revocation_import(NULL)$$);
-- a 10 MB batch and a deeply nested one: refused with YHR01 or PostgreSQL's
-- own limits, never a crash (10 MB of ignored keys beside 1000 entries is
-- a valid batch: imported, then rolled back)
BEGIN;
SELECT pg_temp.err(format('SELECT health_pass.revocation_import(%L)', jsonb_build_object(
    'country', 'DE', 'hashType', 'UCI',
    'entries', (SELECT jsonb_agg(jsonb_build_object('hash', 'AAAAAAAAAAAAAAAAAAAAAA==', 'pad', repeat('x', 10000)))
                  FROM generate_series(1, 1000)))));
ROLLBACK;
SELECT pg_temp.err(format('SELECT health_pass.revocation_import(%L)', jsonb_build_object(
    'country', 'DE', 'hashType', 'UCI',
    'entries', (SELECT jsonb_agg(jsonb_build_object('hash', 'AAAAAAAAAAAAAAAAAAAAAA=='))
                  FROM generate_series(1, 200000)))));
SELECT pg_temp.err(format('SELECT health_pass.revocation_import(%L)', jsonb_build_object(
    'country', 'DE', 'hashType', 'UCI', 'kid', repeat('A', 10000000))));
SELECT left(pg_temp.err(format('SELECT health_pass.revocation_import(%L::jsonb)',
    '{"country": "DE", "hashType": "UCI", "entries": ' || repeat('[', 100000) || repeat(']', 100000) || '}')), 60) AS deep_text;
SELECT pg_temp.err(format('SELECT health_pass.revocation_import(%L)',
    '{"country": "DE", "hashType": "UCI", "entries": [{"hash": ' || repeat('[', 5000) || repeat(']', 5000) || '}]}'));
SELECT count(*) AS after FROM health_pass.revocation;

-- §6 export: batches of at most 1000, per hash type, kid and expiry, that
-- import accepts: the same entries after a round trip
SELECT b ->> 'country' AS country, b ->> 'hashType' AS type, b ->> 'kid' AS kid, b ->> 'expires' AS expires,
       jsonb_array_length(b -> 'entries') AS entries
  FROM health_pass.revocation_export('DE', '-infinity') b;
SELECT count(*) FROM health_pass.revocation_export('DE', now() + interval '1 day');
SELECT count(*) FROM health_pass.revocation_export('FR', NULL);
CREATE TEMP TABLE before_rt AS SELECT hash, hash_type, country, kid, expires FROM health_pass.revocation;
CREATE TEMP TABLE exported AS SELECT b FROM health_pass.revocation_export('DE', NULL) b;
TRUNCATE health_pass.revocation;
SELECT sum(health_pass.revocation_import(b)) AS reimported FROM exported;
SELECT count(*) AS differences FROM (
    (SELECT * FROM before_rt EXCEPT ALL SELECT hash, hash_type, country, kid, expires FROM health_pass.revocation)
    UNION ALL
    (SELECT hash, hash_type, country, kid, expires FROM health_pass.revocation EXCEPT ALL SELECT * FROM before_rt)) d;

-- a pass whose kid is longer than a batch may carry (200 bytes; an EU kid
-- has 8; the pass expires in 2100, unsigned by any key here): revoke() keeps no kid, so its export imports again (0.11.0 kept
-- it, and the batch was refused: "kid" must be at most 64 bytes)
TRUNCATE health_pass.revocation;
SELECT health_pass.revoke('HC1:NCFOXN-E27-D*RK1Q9SJH*BCU 2MWF1ROP$SZZOK2VLY5QFG3F5ZUE3QGNO4*J8/Y4F%CD 810H54PR%0IGF5JNBPIUUU4WFJRHQJAXRQ3E2/UIGSUHPM3O89N86UG8KGJO83UQPIA*QHXSM/UI2YUPIAQQG%+N5SI:TU+MMPZ5.T9.T19UEO$HJUPY0BD-I/2DBAJDAJCNB-43 X4VV2 73-E3GG3V2035TPHN6D7LLK*2HG%89UV-0LZ 2MKN4NN3F85QNCY0O%0VZ001H9B92FFUE9.959B9LW4T*8Y70-I0%YBMXPU.S0 KFCHP+PHI4W*PP+P8OI.I9Y*VSV0I+QWZJ4ZHR-SGG10EQ928GEQW2DVJ55M8Z6NGVL 328:3218A3E94J201E3AM1OG/N9A9EMNH*6YKNZZS7:KLH1G-M50DSGUV:PR.M:FWQTO.Q9S:F/E514KMWKU:DQN3F/UPXGQ/OVP62XRR*O-%OS3A/+6+B1:X15IP', 'long kid') AS revoked_long_kid;
SELECT count(*) AS entries, count(kid) AS with_kid FROM health_pass.revocation;
CREATE TEMP TABLE exported_fr AS SELECT b FROM health_pass.revocation_export('FR', NULL) b;
TRUNCATE health_pass.revocation;
SELECT sum(health_pass.revocation_import(b)) AS reimported_long_kid FROM exported_fr;

-- §7 expiry: an expired entry stops counting and is purged
TRUNCATE health_pass.revocation;
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'XX', 'hashType', 'UCI', 'expires', '2024-01-01T00:00:00Z',
    'entries', jsonb_build_array(jsonb_build_object('hash',
        encode((health_pass.revocation_hashes(txt::health_pass.pass)).uci, 'base64')))))
  FROM fx_pass WHERE name = 'ok_vacc';
SELECT (health_pass.check(txt::health_pass.pass, '2023-12-31')).reason AS before_expiry,
       (health_pass.check(txt::health_pass.pass, '2024-01-02')).reason AS after_expiry,
       (health_pass.check(txt::health_pass.pass)).reason AS now
  FROM fx_pass WHERE name = 'ok_vacc';
SELECT count(*) FROM health_pass.revocation_export('XX', NULL);
-- a purge later than now would delete entries in force: refused (0.11.0
-- deleted them, and their passes checked ok again)
SELECT pg_temp.err($$SELECT health_pass.revocation_purge('infinity')$$) AS purge_future;
SELECT health_pass.revocation_purge('2023-01-01') AS purged_early, health_pass.revocation_purge() AS purged;
SELECT count(*) FROM health_pass.revocation;
-- an entry imported again with a later expiry is extended (it counts again,
-- and an export since then carries it); an earlier expiry changes nothing,
-- none (NULL) makes it never expire, and then nothing shortens it
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'XX', 'hashType', 'UCI', 'expires', e,
    'entries', jsonb_build_array(jsonb_build_object('hash',
        encode((health_pass.revocation_hashes(txt::health_pass.pass)).uci, 'base64')))))
  AS changed, e AS batch_expires
  FROM fx_pass, (VALUES (1, '2024-01-01T00:00:00Z'), (2, '2025-01-01T00:00:00Z'), (3, '2024-06-01T00:00:00Z'),
                        (4, '2025-01-01T00:00:00Z')) v(o, e)
 WHERE name = 'ok_vacc' ORDER BY o;
SELECT expires, revoked_at > now() - interval '1 hour' AS recent,
       (SELECT (health_pass.check(txt::health_pass.pass, '2024-06-02')).reason FROM fx_pass WHERE name = 'ok_vacc') AS mid_2024
  FROM health_pass.revocation;
SELECT health_pass.revocation_import(jsonb_build_object(
    'country', 'XX', 'hashType', 'UCI', 'entries', jsonb_build_array(jsonb_build_object('hash',
        encode((health_pass.revocation_hashes(txt::health_pass.pass)).uci, 'base64'))))) AS to_never,
       health_pass.revocation_import(jsonb_build_object(
    'country', 'XX', 'hashType', 'UCI', 'expires', '2026-01-01T00:00:00Z', 'entries', jsonb_build_array(jsonb_build_object('hash',
        encode((health_pass.revocation_hashes(txt::health_pass.pass)).uci, 'base64'))))) AS not_shortened
  FROM fx_pass WHERE name = 'ok_vacc';
SELECT expires FROM health_pass.revocation;
-- revoke() follows the same rule: a pass with the same UVCI and a later exp
-- extends the UCI entry (here: the entry shortened by hand first)
UPDATE health_pass.revocation SET expires = '2000-01-01';
SELECT health_pass.revoke(txt::health_pass.pass, 'same UVCI, later exp') AS changed FROM fx_pass WHERE name = 'ok_vacc';
SELECT hash_type, expires = (SELECT health_pass.expires_at(txt::health_pass.pass) FROM fx_pass WHERE name = 'ok_vacc') AS pass_exp
  FROM health_pass.revocation ORDER BY 1;
TRUNCATE health_pass.revocation;
-- an expiry past the year 9999 is exported as 9999-12-31T23:59:59Z, which
-- import accepts (a four-digit year); entries of two such expiries share a batch
INSERT INTO health_pass.revocation (hash, hash_type, country, expires)
SELECT substr(sha256(int4send(i)), 1, 16), 'UCI', 'XY',
       CASE WHEN i % 2 = 0 THEN timestamptz '20000-01-01 00:00:00+00' ELSE timestamptz '12000-05-05 00:00:00+00' END
  FROM generate_series(1, 1500) i;
SELECT b ->> 'expires' AS expires, jsonb_array_length(b -> 'entries') AS entries
  FROM health_pass.revocation_export('XY', NULL) b;
CREATE TEMP TABLE far AS SELECT b FROM health_pass.revocation_export('XY', NULL) b;
TRUNCATE health_pass.revocation;
SELECT sum(health_pass.revocation_import(b)) AS reimported FROM far;
SELECT expires, count(*) FROM health_pass.revocation GROUP BY 1;
TRUNCATE health_pass.revocation;
-- a batch naming a hash twice imports it once (and changes nothing the
-- second time); extending takes no lock on rows it does not change
SELECT health_pass.revocation_import('{"country": "DE", "hashType": "UCI", "expires": "2040-01-01T00:00:00Z",
    "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}, {"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}') AS twice,
       health_pass.revocation_import('{"country": "DE", "hashType": "UCI", "expires": "2041-01-01T00:00:00Z",
    "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}, {"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}') AS twice_extended;
SELECT count(*), max(expires) FROM health_pass.revocation;
TRUNCATE health_pass.revocation;
-- revoke() acts as the extension owner: the caller's search_path finds none
-- of its functions or operators (an attacker's now(), < or = ran as the
-- owner, a superuser, in a review build whose extension path named them)
CREATE SCHEMA regress_evil AUTHORIZATION regress_registrar;
SET ROLE regress_registrar;
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'evil now() ran as %', current_user; END $$;
CREATE FUNCTION regress_evil.lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'evil < ran as %', current_user; END $$;
CREATE OPERATOR regress_evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_evil.lt);
CREATE FUNCTION regress_evil.eq(bytea, bytea) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'evil = ran as %', current_user; END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = regress_evil.eq);
RESET ROLE;
INSERT INTO health_pass.revocation (hash, hash_type, expires)
SELECT (health_pass.revocation_hashes(txt::health_pass.pass)).uci, 'UCI', '2000-01-01' FROM fx_pass WHERE name = 'ok_vacc';
SET ROLE regress_registrar;
SET search_path = regress_evil, public, pg_catalog;
SELECT health_pass.revoke(txt::health_pass.pass, 'search_path attack') AS changed FROM fx_pass WHERE name = 'ok_vacc';
RESET search_path;
RESET ROLE;
SELECT hash_type, expires > '2000-01-01' AS extended FROM health_pass.revocation ORDER BY 1;
DROP SCHEMA regress_evil CASCADE;
TRUNCATE health_pass.revocation;
-- revoked_by of an import is the calling role (SET ROLE counts), as in its
-- audit record, not the session user
GRANT EXECUTE ON FUNCTION health_pass.revocation_import(jsonb) TO regress_registrar;
SET ROLE regress_registrar;
SELECT health_pass.revocation_import('{"country": "DE", "hashType": "UCI", "entries": [{"hash": "AAAAAAAAAAAAAAAAAAAAAA=="}]}');
RESET ROLE;
SELECT revoked_by, session_user <> revoked_by AS not_session_user FROM health_pass.revocation;
REVOKE EXECUTE ON FUNCTION health_pass.revocation_import(jsonb) FROM regress_registrar;
TRUNCATE health_pass.revocation;

-- §8 the table is an ordinary one: the constraints hold
SELECT pg_temp.err($$INSERT INTO health_pass.revocation (hash, hash_type) VALUES ('\x00', 'UCI')$$);
SELECT pg_temp.err($$INSERT INTO health_pass.revocation (hash, hash_type) VALUES ('\x00000000000000000000000000000000', 'MD5')$$);
SELECT pg_temp.err($$INSERT INTO health_pass.revocation (hash, hash_type, country) VALUES ('\x00000000000000000000000000000000', 'UCI', 'Germany')$$);
INSERT INTO health_pass.revocation (hash, hash_type) SELECT (health_pass.revocation_hashes(txt::health_pass.pass)).signature, 'SIGNATURE' FROM fx_pass WHERE name = 'ok_test';
SELECT (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason, r.source, r.revoked_by = current_user AS by_me
  FROM fx_pass, health_pass.revocation r WHERE name = 'ok_test';
-- a row of another type with the same bytes does not count
UPDATE health_pass.revocation SET hash_type = 'UCI';
SELECT (health_pass.check(txt::health_pass.pass, '2022-01-01')).reason FROM fx_pass WHERE name = 'ok_test';
TRUNCATE health_pass.revocation;

REVOKE ALL ON fx_pass FROM regress_registrar, regress_rev_nobody;
REVOKE ALL ON FUNCTION health_pass.revoke(health_pass.pass, text) FROM regress_registrar;
DROP ROLE regress_registrar, regress_rev_nobody;
