-- Issuing passes without a signing key: uvci(), schema_errors(jsonb), and
-- what issue() refuses before it opens a key (test/t/080_issue.pl signs)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
RESET client_min_messages;
\i test/fixtures/load.sql
SET timezone = 'UTC';

-- uvci(): the published examples (Swedish eHM, eu-dcc-schema FAQ) check out
SELECT health_pass.uvci('SE', 'EHM', 'V12916227TFJJ') = 'URN:UVCI:01:SE:EHM/V12916227TFJJ#Q' AS se1,
       health_pass.uvci('SE', 'EHM/C878', '123456789ABC') = 'URN:UVCI:01:SE:EHM/C878/123456789ABC#B' AS se2,
       health_pass.uvci('SE', 'EHM', 'V12916227TFJJ', false) AS no_checksum;
-- new ones: the form, 26 random characters, all distinct, each checksum valid
CREATE TEMP TABLE u AS SELECT health_pass.uvci('FR', 'DGS/V1') AS u FROM generate_series(1, 2000);
SELECT count(*) AS n, count(DISTINCT u) AS distinct_n,
       bool_and(u ~ '^URN:UVCI:01:FR:DGS/V1/[0-9A-HJKMNP-TV-Z]{26}#[A-Z0-9/:]$') AS form_ok,
       bool_and(health_pass.uvci('FR', 'DGS/V1', split_part(split_part(u, '/', 3), '#', 1)) = u) AS checksum_ok
  FROM u;
-- the check character catches every single substitution of the opaque part
-- (26 positions x 31 other characters = 806)
SELECT count(*) AS substitutions_caught
  FROM generate_series(1, 26) i, regexp_split_to_table('0123456789ABCDEFGHJKMNPQRSTVWXYZ', '') c,
       LATERAL (SELECT 'URN:UVCI:01:FR:DGS/0123456789ABCDEFGHJKMNPQRS' AS base) b,
       LATERAL (SELECT overlay(b.base PLACING c FROM 19 + i FOR 1) AS m) x
 WHERE x.m <> b.base
   AND right(health_pass.uvci('FR', 'DGS', substr(x.m, 20)), 1) <> right(health_pass.uvci('FR', 'DGS', substr(b.base, 20)), 1);
-- refused arguments
SELECT health_pass.uvci('fr', 'DGS');
SELECT health_pass.uvci('FRA', 'DGS');
SELECT health_pass.uvci('FR', 'dgs');
SELECT health_pass.uvci('FR', '/DGS');
SELECT health_pass.uvci('FR', 'D#S');
SELECT health_pass.uvci('FR', '');
SELECT health_pass.uvci(NULL, 'DGS');
SELECT health_pass.uvci('FR', 'DGS', 'A/B');
SELECT health_pass.uvci('FR', repeat('A', 60));

-- schema_errors(jsonb) is schema_errors(pass) of the same payload
SELECT name, health_pass.schema_errors(health_pass.payload(txt::health_pass.pass))
       = health_pass.schema_errors(txt::health_pass.pass) AS same
  FROM fx_pass WHERE name IN ('ok_vacc', 'ok_test', 'ok_recovery', 'schema_two_kinds', 'schema_bad')
 ORDER BY name;
SELECT health_pass.schema_errors('[]'::jsonb), health_pass.schema_errors('"v"'::jsonb),
       health_pass.schema_errors('["v", "t"]'::jsonb), health_pass.schema_errors('null'::jsonb);

-- ... and gives what the PL/pgSQL of 0.8.0 gave, on payloads mutated at random,
-- with 0.12.0's reading of the schema's formats: its patterns are ECMA-262
-- (\d is [0-9]), a date must exist (1964-02-30 passed before), a time of day
-- is 00:00 to 23:59 with seconds up to 60, an offset at most 23:59
\set ECHO none
CREATE FUNCTION pg_temp.cal_ok(s text, parts int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    y int := substr(s, 1, 4)::int;
    m int := substr(s, 6, 2)::int;
    leap boolean := (y % 4 = 0 AND y % 100 <> 0) OR y % 400 = 0;
BEGIN
    IF m NOT BETWEEN 1 AND 12 THEN
        RETURN false;
    END IF;
    RETURN parts < 3 OR substr(s, 9, 2)::int BETWEEN 1 AND
        (ARRAY[31, CASE WHEN leap THEN 29 ELSE 28 END, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[m];
END $$;
CREATE FUNCTION pg_temp.dt_ok(s text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    g text[] := regexp_match(s, '^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2})(:([0-9]{2})(\.[0-9]+)?)?(Z|[+-]([0-9]{2}):?([0-9]{2}))$');
BEGIN
    RETURN g IS NOT NULL AND pg_temp.cal_ok(g[1], 3) AND g[2]::int <= 23 AND g[3]::int <= 59
       AND coalesce(g[5]::int, 0) <= 60 AND coalesce(g[8]::int, 0) <= 23 AND coalesce(g[9]::int, 0) <= 59;
END $$;
CREATE FUNCTION pg_temp.schema_errors_ref(d0 jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d jsonb := d0;
    errs text[] := '{}';
    kinds text[];
    k text;
    e jsonb;
    f text;
    req text[];
    date_re constant text := '^[0-9]{4}-[0-9]{2}-[0-9]{2}$';
BEGIN
    IF jsonb_typeof(d -> 'ver') IS DISTINCT FROM 'string' THEN
        errs := errs || 'ver: required string'::text;
    ELSIF d ->> 'ver' !~ '^[0-9]+\.[0-9]+\.[0-9]+$' THEN
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
    ELSIF d ->> 'dob' !~ '^((19|20)[0-9][0-9](-[0-9][0-9]){0,2})?$'
          OR (length(d ->> 'dob') > 4 AND NOT pg_temp.cal_ok(d ->> 'dob', (length(d ->> 'dob') - 1) / 3)) THEN
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
            ELSIF f IN ('dt', 'fr', 'df', 'du') AND (e ->> f !~ date_re OR NOT pg_temp.cal_ok(e ->> f, 3)) THEN
                errs := errs || format('%s[0].%s: not a date', k, f);
            ELSIF f = 'sc' AND NOT pg_temp.dt_ok(e ->> f) THEN
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
\set ECHO all
SELECT setseed(0.14);
CREATE TEMP TABLE pool (v jsonb);
INSERT INTO pool VALUES ('null'), ('true'), ('1'), ('2'), ('9'), ('10'), ('0'), ('-1'), ('1.0'), ('2.5'),
  ('1e0'), ('"1"'), ('""'), ('"2021-06-01"'), ('"2021-6-1"'), ('"2021-06-01T10:00:00Z"'),
  ('"2021-06-01T10:00Z"'), ('"2021-06-01T10:00:00.123+02:00"'), ('"2021-06-01T10:00:00+0200"'),
  ('"2021-06-01T10:00:00"'), ('"2021-06-01 10:00:00Z"'), ('"1.3.0"'), ('"1.3"'), ('"01.3.0x"'),
  ('"1970"'), ('"1970-01"'), ('"2100-01-01"'), ('"1899"'), ('"FR"'), ('"fr"'), ('"FRA"'),
  ('"DUPONT<JEAN"'), ('"Dupont"'), ('"DUPONT JEAN"'), ('"ÉLODIE"'), ('"٢٠٢١-٠٦-٠١"'),
  ('"２０２１-06-01"'), ('"1.٣.0"'), ('"2021-06-01\n"'), (to_jsonb(repeat('X', 80))), (to_jsonb(repeat('X', 81))),
  (to_jsonb(repeat('É', 81))), (to_jsonb(repeat('É', 80))), ('[]'), ('[{}]'), ('{}'), ('[1, 2]'),
  ('{"a": 1}'), ('[{"ci": "x"}]'),
  ('"2021-02-29"'), ('"2020-02-29"'), ('"1900-02-29"'), ('"2000-02-29"'), ('"2021-13-01"'), ('"2021-00-10"'),
  ('"2021-06-31"'), ('"2021-06-00"'), ('"1964-02"'), ('"1964-00"'), ('"1964-02-30"'),
  ('"2021-06-01T24:00:00Z"'), ('"2021-06-01T23:60:00Z"'), ('"2021-06-30T23:59:60Z"'), ('"2021-06-01T10:00:61Z"'),
  ('"2021-02-30T10:00:00Z"'), ('"2021-06-01T10:00:00+24:00"'), ('"2021-06-01T10:00:00-0560"'), ('"2021-06-01T10:00+23:59"');
CREATE TEMP TABLE base AS SELECT health_pass.payload(txt::health_pass.pass) AS d FROM fx_pass
 WHERE name IN ('ok_vacc', 'ok_test', 'ok_recovery', 'schema_two_kinds', 'schema_bad', 'floats_and_tags');
-- every (object path, value) of the base payloads, and paths of keys they may lack
CREATE TEMP TABLE paths AS
  SELECT DISTINCT p FROM (
    SELECT ARRAY[k] AS p FROM base, jsonb_object_keys(d) k
    UNION SELECT ARRAY['nam', k] FROM base, jsonb_object_keys(d -> 'nam') k WHERE jsonb_typeof(d -> 'nam') = 'object'
    UNION SELECT ARRAY[kd, '0', k] FROM base, unnest(ARRAY['v', 't', 'r']) kd,
                 jsonb_object_keys(CASE WHEN jsonb_typeof(d -> kd -> 0) = 'object' THEN d -> kd -> 0 ELSE '{}' END) k
    UNION SELECT ARRAY[x] FROM unnest(ARRAY['v', 't', 'r', 'ver', 'nam', 'dob', 'zz']) x
    UNION SELECT ARRAY['nam', x] FROM unnest(ARRAY['fn', 'fnt', 'gn', 'gnt']) x
    UNION SELECT ARRAY['v', '0', x] FROM unnest(ARRAY['dn', 'sd', 'dt', 'co', 'ci', 'nm', 'tc', 'sc', 'fr', 'df', 'du', 'is', 'zz']) x
    UNION SELECT ARRAY['t', '0', x] FROM unnest(ARRAY['sc', 'nm', 'tc', 'dn']) x) s;
CREATE FUNCTION pg_temp.mutate(d jsonb, p text[], v jsonb, del boolean) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    RETURN coalesce(CASE WHEN del THEN d #- p ELSE jsonb_set(d, p, v, true) END, d);
EXCEPTION WHEN others THEN
    RETURN d;   -- a path through an array or a scalar: leave it
END $$;
CREATE TEMP TABLE cases AS
  WITH RECURSIVE m(d, n, r) AS (
    SELECT d, 0, r FROM base, generate_series(1, 250) r
    UNION ALL
    SELECT pg_temp.mutate(d, p, v, random() < 0.15), n + 1, r
      FROM m, LATERAL (SELECT p FROM paths ORDER BY random() + n * 0 LIMIT 1) pp,
           LATERAL (SELECT v FROM pool ORDER BY random() + n * 0 LIMIT 1) pv
     WHERE n < 3)
  SELECT d FROM m;
SELECT (SELECT count(DISTINCT d) FROM cases) > 1000 AS many_cases,
       (SELECT count(*) FROM cases
         WHERE health_pass.schema_errors(d) IS DISTINCT FROM pg_temp.schema_errors_ref(d)) AS differ,
       (SELECT count(DISTINCT e) FROM cases, unnest(pg_temp.schema_errors_ref(d)) e) > 25 AS varied_messages;
-- the formats, one by one (a red-team pass had 1964-02-30 and
-- 2021-13-45T99:99:99Z signed)
SELECT x.path, x.val, health_pass.schema_errors(jsonb_set(health_pass.payload(f.txt::health_pass.pass), x.path, to_jsonb(x.val))) AS errors
  FROM (VALUES ('ok_vacc', '{dob}'::text[], '1964-02-30'), ('ok_vacc', '{dob}', '1900-02-29'),
               ('ok_vacc', '{dob}', '2000-02-29'), ('ok_vacc', '{dob}', '1964-13'), ('ok_vacc', '{dob}', '١٩٦٤'),
               ('ok_vacc', '{v,0,dt}', '2021-02-31'), ('ok_vacc', '{v,0,dt}', '2024-02-29'),
               ('ok_test', '{t,0,sc}', '2021-13-45T99:99:99Z'), ('ok_test', '{t,0,sc}', '2021-06-30T23:59:60Z'),
               ('ok_test', '{t,0,sc}', '2021-06-01T10:00:00+24:00'), ('ok_test', '{t,0,sc}', '2021-06-01T10:00:00.5-02:30')) x(name, path, val)
  JOIN fx_pass f USING (name) ORDER BY 1, 2;

-- issue() refuses null arguments before it opens a key (SQLSTATE 22004)
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.try($$SELECT health_pass.issue(NULL, 'k')$$),
       pg_temp.try($$SELECT health_pass.issue('{}', NULL)$$),
       pg_temp.try($$SELECT health_pass.issue('{}', 'k', NULL)$$),
       pg_temp.try($$SELECT health_pass.issue('{}', 'k', '1 year', NULL)$$),
       pg_temp.try($$SELECT health_pass.uvci('fr', 'DGS')$$);
