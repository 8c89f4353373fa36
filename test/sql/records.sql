-- Records the log cannot show as they are (issue 12, item 5): the writer
-- writes a record with invalid fields in a safe form, and nothing a block
-- holds, even one a superuser forged, makes audit_log, who_read() or
-- audit_verify() fail; audit_verify() names the first record or block it
-- cannot read.  See docs/design/records.md.
\set VERBOSITY terse
-- a log of its own: what earlier tests queued goes to their log first
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS health_pass;
SELECT health_pass.audit_flush() >= 0 AS flushed;
DROP EXTENSION IF EXISTS health_pass CASCADE;
CREATE EXTENSION health_pass;
RESET client_min_messages;

CREATE ROLE regress_rec_reader LOGIN;
CREATE TABLE rec_people (person_id text PRIMARY KEY);
INSERT INTO rec_people VALUES ('R1'), ('R2'), ('R3');
GRANT SELECT ON rec_people TO regress_rec_reader;
GRANT USAGE ON SCHEMA health_pass TO regress_rec_reader;
GRANT EXECUTE ON FUNCTION health_pass.break_glass(text) TO regress_rec_reader;
SELECT health_pass.protect('rec_people', 'person_id');
SELECT health_pass.allow('regress_rec_reader', 'rec_people', 'care');

-- 1. a break-glass reason longer than a record holds used to be cut at 255
-- bytes, here inside a two-byte character, and the record then failed a
-- client in another encoding.  The gate now cuts it at a character boundary
-- (254 bytes); the writer would also have written a broken byte escaped and
-- flagged it (every record is checked before it is chained: the randomized
-- test/fuzz/check_records.c covers those checks).
SET ROLE regress_rec_reader;
SET health_pass.purpose = 'care';
SELECT person_id FROM rec_people WHERE person_id = 'R1';
BEGIN;
SELECT health_pass.break_glass(repeat('é', 200));
SELECT person_id FROM rec_people WHERE person_id = 'R2';
COMMIT;
RESET health_pass.purpose;
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT id, outcome, subject, reason IS NOT NULL AS has_reason
FROM health_pass.audit_log ORDER BY id;
SELECT id, left(reason, 30) AS reason_starts, right(reason, 8) AS reason_ends,
       octet_length(reason), convert_to(reason, 'LATIN1') IS NOT NULL AS latin1_client_reads_it
FROM health_pass.audit_log WHERE outcome = 'break_glass';
SELECT ok, checked, first_bad FROM health_pass.audit_verify();

-- 2. reader side: blocks a superuser forged, chained to the log's head
-- with correct hashes and summaries, each holding one kind of field the
-- view cannot show as it is.  The block layout (src/audit/block.c) and the hash
-- (README) are built here in SQL, so the forged bytes are exactly these.
CREATE FUNCTION pg_temp.uv(v numeric) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE o bytea := '\x'; b int;
BEGIN
    LOOP
        b := (v % 128)::int;
        v := div(v, 128);
        IF v > 0 THEN o := o || set_byte('\x00'::bytea, 0, b + 128);
        ELSE RETURN o || set_byte('\x00'::bytea, 0, b); END IF;
    END LOOP;
END $$;
CREATE FUNCTION pg_temp.zv(v numeric) RETURNS bytea LANGUAGE sql AS $$
    SELECT pg_temp.uv(CASE WHEN v >= 0 THEN 2 * v ELSE -2 * v - 1 END) $$;
CREATE FUNCTION pg_temp.tx(b bytea) RETURNS bytea LANGUAGE sql AS $$
    SELECT CASE WHEN b IS NULL THEN '\x00'::bytea ELSE pg_temp.uv(length(b) + 1) || b END $$;
CREATE FUNCTION pg_temp.hf(b bytea) RETURNS bytea LANGUAGE sql AS $$
    SELECT CASE WHEN b IS NULL THEN '\xffffffff'::bytea ELSE int4send(length(b)) || b END $$;
-- 64-bit unsigned arithmetic for the bloom filter's hash (block.c bloom_hash)
CREATE FUNCTION pg_temp.b64(v numeric) RETURNS bit(64) LANGUAGE sql AS $$
    SELECT (CASE WHEN v >= 2::numeric ^ 63 THEN v - 2::numeric ^ 64 ELSE v END)::int8::bit(64) $$;
CREATE FUNCTION pg_temp.n64(b bit(64)) RETURNS numeric LANGUAGE sql AS $$
    SELECT CASE WHEN b::int8 < 0 THEN b::int8 + 2::numeric ^ 64 ELSE b::int8 END $$;
CREATE FUNCTION pg_temp.xs(v numeric, s int) RETURNS numeric LANGUAGE sql AS $$
    SELECT pg_temp.n64(pg_temp.b64(v) # (pg_temp.b64(v) >> s)) $$;
CREATE FUNCTION pg_temp.bloom_add(bloom bytea, rel oid, subject bytea) RETURNS bytea
LANGUAGE plpgsql AS $$
DECLARE
    m numeric := 2::numeric ^ 64;
    h numeric := 14695981039346656037;
    p numeric := 1099511628211;
    step numeric;
    k numeric;
    bytes bytea := int8send(rel::int8);
BEGIN
    FOR i IN REVERSE 7..4 LOOP   -- relid, low byte first
        h := mod((h - mod(h, 256) + (mod(h, 256)::int # get_byte(bytes, i))) * p, m);
    END LOOP;
    FOR i IN 0..length(subject) - 1 LOOP
        h := mod((h - mod(h, 256) + (mod(h, 256)::int # get_byte(subject, i))) * p, m);
    END LOOP;
    h := mod(pg_temp.xs(h, 30) * 13787848793156543929, m);
    h := mod(pg_temp.xs(h, 27) * 10723151780598845931, m);
    h := pg_temp.xs(h, 31);
    step := pg_temp.n64((pg_temp.b64(h) >> 32) | pg_temp.b64(1));
    FOR i IN 1..7 LOOP
        k := mod(h, length(bloom) * 8);
        bloom := set_bit(bloom, k::int, 1);
        h := mod(h + step, m);
    END LOOP;
    RETURN bloom;
END $$;

-- a time as a timestamptz column holds it (one out of its range as 1997)
CREATE FUNCTION pg_temp.ts(us bigint) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT CASE WHEN us = 9223372036854775807 THEN 'infinity'::timestamptz
                ELSE '2000-01-01 00:00:00+00'::timestamptz
                     + make_interval(secs => least(us, 852076800000000) / 1000000.0) END $$;
-- the records to forge: fields as bytes, exactly as a block can hold them
CREATE TEMP TABLE forged (
    kind text, blk text, seq int, at bigint, su bytea, cu bytea, addr bytea, app bytea,
    pid int, stmt bigint, rel oid, subject bytea, purpose bytea, outcome int, reason bytea);
CREATE FUNCTION pg_temp.f(kind text, blk text DEFAULT NULL) RETURNS forged LANGUAGE sql AS $$
    SELECT ROW(kind, coalesce(blk, kind), 1, 852076800000000, 'postgres'::bytea,
               'regress_rec_reader'::bytea, '10.0.0.1'::bytea, 'forger'::bytea, 4242, 9000,
               'rec_people'::regclass::oid, 'R3'::bytea, 'care'::bytea, 0, NULL::bytea)::forged $$;
INSERT INTO forged SELECT (pg_temp.f('client_addr')).*;
UPDATE forged SET addr = 'not an address' WHERE kind = 'client_addr';
INSERT INTO forged SELECT (pg_temp.f('client_addr_v6')).*;
UPDATE forged SET addr = '1:2:3:4:5:6:7:8:9' WHERE kind = 'client_addr_v6';
INSERT INTO forged SELECT (pg_temp.f('subject')).*;
UPDATE forged SET subject = '\xff52' WHERE kind = 'subject';
INSERT INTO forged SELECT (pg_temp.f('session_user_name')).*;
UPDATE forged SET su = '\x706f73c3' WHERE kind = 'session_user_name';
INSERT INTO forged SELECT (pg_temp.f('current_user_name')).*;
UPDATE forged SET cu = convert_to(repeat('u', 70), 'UTF8') WHERE kind = 'current_user_name';
INSERT INTO forged SELECT (pg_temp.f('application_name')).*;
UPDATE forged SET app = '\x61707080' WHERE kind = 'application_name';
INSERT INTO forged SELECT (pg_temp.f('purpose')).*;
UPDATE forged SET purpose = '\xe282' WHERE kind = 'purpose';
INSERT INTO forged SELECT (pg_temp.f('reason')).*;
UPDATE forged SET reason = '\x5cc0af' WHERE kind = 'reason';
INSERT INTO forged SELECT (pg_temp.f('outcome')).*;
UPDATE forged SET outcome = 200 WHERE kind = 'outcome';
INSERT INTO forged SELECT (pg_temp.f('logged_at')).*;
UPDATE forged SET at = 9223372036854775000 WHERE kind = 'logged_at';
-- readable: a table dropped since shows as its OID, infinity as infinity
INSERT INTO forged SELECT (pg_temp.f('dropped_table')).*;
UPDATE forged SET rel = 4000000000 WHERE kind = 'dropped_table';
INSERT INTO forged SELECT (pg_temp.f('infinity')).*;
UPDATE forged SET at = 9223372036854775807 WHERE kind = 'infinity';
-- a block who_read('rec_people', 'R1') unpacks: a good R1 record, then a bad one
INSERT INTO forged SELECT (pg_temp.f('who_read_good', 'who_read')).*;
UPDATE forged SET subject = 'R1' WHERE kind = 'who_read_good';
INSERT INTO forged SELECT (pg_temp.f('who_read_bad', 'who_read')).*;
UPDATE forged SET subject = 'R1', addr = '10.0.0.300', seq = 2, pid = 4343 WHERE kind = 'who_read_bad';

-- append the blocks named in blks, in that order, to the chain after the
-- head (id, hash); returns the new head's id
CREATE FUNCTION pg_temp.forge(blks text[]) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    id bigint;
    prev bytea;
    blkname text;
    r record;
    recs bytea;
    ctxs bytea;
    nrec int;
    bloom bytea;
    first bigint;
    last_id bigint;
    last_at bigint;
    last_stmt bigint;
    min_at bigint;
    max_at bigint;
    h bytea;
    block_prev bytea;
BEGIN
    SELECT a.id, a.hash INTO id, prev FROM health_pass.audit_log a ORDER BY a.id DESC LIMIT 1;
    FOREACH blkname IN ARRAY blks LOOP
        recs := '\x'; ctxs := '\x'; nrec := 0; first := id + 1; block_prev := prev;
        last_id := 0; last_at := 0; last_stmt := 0; min_at := NULL; max_at := NULL;
        SELECT count(*) INTO nrec FROM forged f WHERE f.blk = blkname;
        bloom := decode(repeat('00', (greatest(nrec, 4) * 16 + 63) / 64 * 8), 'hex');
        nrec := 0;
        FOR r IN SELECT * FROM forged f WHERE f.blk = blkname ORDER BY f.seq LOOP
            id := id + 1;
            h := sha256(prev || int8send(id) || int8send(r.at) || pg_temp.hf(r.su)
                 || pg_temp.hf(r.cu) || pg_temp.hf(r.addr) || pg_temp.hf(r.app)
                 || int8send(r.pid::int8) || int8send(r.stmt) || int8send(r.rel::int8)
                 || pg_temp.hf(r.subject) || pg_temp.hf(r.purpose)
                 || pg_temp.hf(convert_to(CASE r.outcome WHEN 0 THEN 'allowed' WHEN 1 THEN 'denied'
                        WHEN 2 THEN 'quota_exceeded' WHEN 3 THEN 'break_glass'
                        WHEN 4 THEN 'superuser' ELSE 'unknown' END, 'UTF8'))
                 || pg_temp.hf(r.reason));
            ctxs := ctxs || pg_temp.tx(r.su) || pg_temp.tx(r.cu) || pg_temp.tx(r.addr)
                 || pg_temp.tx(r.app) || pg_temp.zv(r.pid) || pg_temp.tx(r.purpose)
                 || pg_temp.uv(r.rel::int8);
            recs := recs || pg_temp.uv(nrec) || pg_temp.zv(id - last_id)
                 || pg_temp.zv(r.at::numeric - last_at) || pg_temp.zv(r.stmt - last_stmt)
                 || set_byte('\x00'::bytea, 0, r.outcome) || pg_temp.tx(r.subject)
                 || pg_temp.tx(r.reason) || h;
            IF r.subject IS NOT NULL THEN
                bloom := pg_temp.bloom_add(bloom, r.rel, r.subject);
            END IF;
            min_at := least(min_at, r.at);
            max_at := greatest(max_at, r.at);
            last_id := id; last_at := r.at; last_stmt := r.stmt; prev := h;
            nrec := nrec + 1;
        END LOOP;
        INSERT INTO health_pass.audit_block VALUES (first, id,
            pg_temp.ts(min_at), pg_temp.ts(max_at),
            bloom, '\x484201'::bytea || block_prev || pg_temp.uv(nrec) || ctxs
                   || pg_temp.uv(nrec) || recs);
    END LOOP;
    RETURN id;
END $$;

SELECT max(id) AS head FROM health_pass.audit_log \gset
-- each kind alone: audit_verify() names it (or finds it readable), and the
-- view shows it in a safe form
CREATE TEMP TABLE verdicts (kind text, ok boolean, at_it boolean, why text, shown text);
DO $$
DECLARE
    k text;
    head bigint := (SELECT max(id) FROM health_pass.audit_log);
    v record;
BEGIN
    FOR k IN SELECT kind FROM forged WHERE kind NOT LIKE 'who_read%' ORDER BY kind LOOP
        PERFORM pg_temp.forge(ARRAY[k]);
        SELECT * INTO v FROM health_pass.audit_verify();
        INSERT INTO verdicts
        SELECT k, v.ok, v.first_bad = head + 1, v.why,
               concat_ws(' | ', a.logged_at, a.session_user_name, a.current_user_name, a.client_addr,
                         a.application_name, a.relation::text, a.subject, a.purpose, a.outcome, a.reason)
        FROM health_pass.audit_log a WHERE a.id = head + 1;
        DELETE FROM health_pass.audit_block WHERE min_id = head + 1;
    END LOOP;
END $$;
SELECT kind, ok, at_it, why FROM verdicts ORDER BY kind;
SELECT kind, shown FROM verdicts ORDER BY kind;
SELECT ok, checked, first_bad FROM health_pass.audit_verify();

-- all of them at once, and a block that does not decode at all (its bloom
-- filter matches every subject, so who_read() shows it too): the view,
-- who_read() and audit_verify() answer
SELECT pg_temp.forge(ARRAY['client_addr', 'subject', 'session_user_name', 'application_name',
                           'outcome', 'who_read', 'reason', 'logged_at']) - :head AS forged;
INSERT INTO health_pass.audit_block
SELECT max_id + 1, max_id + 1, max_at, max_at, '\xffffffffffffffff', '\x4842010203'
FROM health_pass.audit_block ORDER BY min_id DESC LIMIT 1;
SELECT id - :head AS n, session_user_name, client_addr, subject, outcome, left(reason, 60) AS reason
FROM health_pass.audit_log WHERE id > :head OR id IS NULL ORDER BY id;
-- every text the view shows is valid (convert_to checks it), in any encoding
SELECT count(*), count(id), bool_and(convert_to(concat_ws(',', session_user_name, current_user_name,
           application_name, subject, purpose, outcome, reason), 'LATIN1') IS NOT NULL) AS valid
FROM health_pass.audit_log;
GRANT SELECT ON health_pass.audit_log, health_pass.audit_block TO regress_rec_reader;
SET ROLE regress_rec_reader;
SELECT id - :head AS n, client_addr, outcome, left(reason, 40) AS reason
FROM health_pass.who_read('rec_people', 'R1');
RESET ROLE;
SELECT ok, first_bad - :head AS first_bad, why FROM health_pass.audit_verify();

-- the forged blocks gone, the log is whole again and the writer goes on
DELETE FROM health_pass.audit_block WHERE max_id > :head;
SELECT ok, checked, first_bad, why FROM health_pass.audit_verify();
SET ROLE regress_rec_reader;
SET health_pass.purpose = 'care';
SELECT person_id FROM rec_people WHERE person_id = 'R3';
RESET health_pass.purpose;
RESET ROLE;
SELECT health_pass.audit_flush() >= 0 AS flushed;
SELECT ok, checked, first_bad, why FROM health_pass.audit_verify();

DROP TABLE rec_people;
DROP OWNED BY regress_rec_reader;
DROP ROLE regress_rec_reader;
