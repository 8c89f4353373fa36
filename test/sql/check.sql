-- Verdicts: every reason, the @@ operator, clock_skew, verify()
\i test/fixtures/load.sql
TRUNCATE health_pass.trust_list;
SELECT count(health_pass.trust_add(der)) FROM fx_cert WHERE name <> 'twin';
-- a second DSC under the kid of 'ec': verification tries both
INSERT INTO health_pass.trust_list (kid, certificate)
SELECT substr(sha256((SELECT der FROM fx_cert WHERE name = 'ec')), 1, 8), der FROM fx_cert WHERE name = 'twin';
SELECT name, (v).valid, (v).reason, (v).reasons, (v).country
  FROM (SELECT name, health_pass.check(txt::health_pass.pass, '2022-01-01') AS v FROM fx_pass) s
 ORDER BY name;
-- the operator agrees with check()
SELECT count(*) FILTER (WHERE (txt::health_pass.pass @@ '2022-01-01'::timestamptz)
                        IS DISTINCT FROM (health_pass.check(txt::health_pass.pass, '2022-01-01')).valid)
       AS disagreements,
       count(*) FILTER (WHERE txt::health_pass.pass @@ '2022-01-01'::timestamptz) AS valid
  FROM fx_pass;
-- default at = now(): ok_vacc expires in 2030
SELECT (health_pass.check(txt::health_pass.pass)).valid FROM fx_pass WHERE name = 'ok_vacc';
-- exp is 2021-07-01 00:00 UTC; one hour later with and without skew
SELECT txt::health_pass.pass @@ '2021-07-01 01:00+00' AS no_skew FROM fx_pass WHERE name = 'expired';
SET health_pass.clock_skew = '2h';
SELECT txt::health_pass.pass @@ '2021-07-01 01:00+00' AS with_skew FROM fx_pass WHERE name = 'expired';
RESET health_pass.clock_skew;
SET health_pass.clock_skew = -1;
-- verify(): against one DSC alone
SELECT f.name, c.name AS cert, health_pass.verify(f.txt::health_pass.pass, c.der)
  FROM fx_pass f, fx_cert c
 WHERE f.name IN ('ok_vacc', 'ok_ps256', 'bad_signature', 'alg_mismatch') AND c.name IN ('ec', 'rsa')
 ORDER BY 1, 2;
SELECT health_pass.verify(txt::health_pass.pass, '\x00') FROM fx_pass WHERE name = 'ok_vacc';
-- WHERE pass @@ now() over a table
CREATE TABLE checked AS SELECT name, txt::health_pass.pass AS p FROM fx_pass;
SELECT name FROM checked WHERE p @@ now() ORDER BY name;
DROP TABLE checked;
