-- Hostile inputs: each refused with a class 22 error naming the stage
\i test/fixtures/load.sql
CREATE FUNCTION pg_temp.try_pass(t text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM t::health_pass.pass;
    RETURN 'accepted';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
SELECT name, pg_temp.try_pass(txt) AS result FROM fx_hostile ORDER BY name;
-- every refusal is class 22
SELECT count(*) AS not_class_22 FROM fx_hostile WHERE left(pg_temp.try_pass(txt), 2) <> '22';
-- binary input (COPY BINARY, send/recv) is validated as strictly as text
CREATE FUNCTION pg_temp.to_oct(n int) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN n < 8 THEN n::text ELSE pg_temp.to_oct(n / 8) || (n % 8)::text END $$;
CREATE FUNCTION pg_temp.try_recv(field bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    f bytea := '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea
               || '\x0001'::bytea || int4send(length(field)) || field || '\xffff'::bytea;
    oct text := (SELECT string_agg('\' || lpad(pg_temp.to_oct(get_byte(f, i)), 3, '0'), '')
                   FROM generate_series(0, length(f) - 1) AS i);
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS rb (p health_pass.pass);
    EXECUTE format('COPY rb FROM PROGRAM %L WITH (FORMAT binary)', 'printf ''' || oct || '''');
    RETURN 'accepted';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
SELECT pg_temp.try_recv(health_pass.pass_send(txt::health_pass.pass)) AS valid_pass
  FROM fx_pass WHERE name = 'ok_vacc';
SELECT pg_temp.try_recv('\x01844da2'::bytea) AS truncated;
SELECT pg_temp.try_recv('\x02'::bytea || substr(health_pass.pass_send(txt::health_pass.pass), 2)) AS bad_format
  FROM fx_pass WHERE name = 'ok_vacc';
SELECT pg_temp.try_recv(health_pass.pass_send(txt::health_pass.pass) || '\x00'::bytea) AS trailing
  FROM fx_pass WHERE name = 'ok_vacc';
-- a claim before the first second a timestamptz holds (exp = -10^12, before
-- 4714 BC): 0.11.0 accepted it, and revoke() stored an expiry out of range
-- that broke pg_dump of health_pass.revocation (a red-team pass)
SELECT pg_temp.try_pass('HC1:NCF5/KE8OUQGPS3QGE.+HUUN4/4 OPJ3GMGSJTK:M3/+4LJCDCULO3/1J6D7/R4P$4C9H6VBFT3BP89G7*ND+CS3DQN3W 28.26LLQ15L0FFE9OXU3ZF66KQU3U$ SRGS*DWS16.R6GBS75R.4R$NPLER/J4PBD8M8ZOL VRB*5GE9$P58PLGVIXE55A2/$4811OTPZ1IGG8-%3SQV9YI$U1FHRW37:QU2YD/8U$U1NDA8$1ZZD5GKGXE4E1K.TZ5QI1IY6SVXOW%OE%GQ*TH+34 MK9I%H0FXG2VC/-2RB6 $6Z78EG57/6T$SU/IG LZS6.PMYDE3QP2OP3EAZ5IF JX.Q9FM5Q9 %E1+RD-P%XGZ8H6VCP+5J4Q$MFGFWT16D5T/2') AS exp_before_4714_bc;
-- the backend is alive
SELECT 1 AS alive;
