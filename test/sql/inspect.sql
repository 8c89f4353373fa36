-- inspect(): never raises, names the first stage that failed
\i test/fixtures/load.sql
SELECT name, health_pass.inspect(txt) ->> 'stage' AS stage, health_pass.inspect(txt) ->> 'error' AS error
  FROM fx_hostile ORDER BY name;
SELECT i - 'payload' AS summary, i -> 'payload' = health_pass.payload(txt::health_pass.pass) AS same_payload
  FROM fx_pass, health_pass.inspect(txt) AS i WHERE name = 'ok_vacc';
-- what could be read before the failure is reported
SELECT i ->> 'stage' AS stage, i ? 'kid' AS has_kid, i ->> 'alg' AS alg
  FROM fx_hostile, health_pass.inspect(txt) AS i WHERE name = 'no_hcert';
SELECT health_pass.inspect(''), health_pass.inspect('HC1:');
