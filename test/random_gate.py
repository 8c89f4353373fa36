#!/usr/bin/python3
"""Randomized test of the read gate (issue 11).

Starts a throwaway cluster of its own (test/cluster.sh, health_pass preloaded),
creates two protected tables whose every value names its row's subject, and for
a fixed time (HP_RANDOM_SECONDS, default 60) runs randomly generated statements
as roles with and without rules, quotas and break glass.  The statements are
generated from a fixed seed (HP_RANDOM_SEED, default 11): case k is the same in
every run, whatever the speed of the machine; only how many cases run varies.
HP_RANDOM_CASES caps the number of cases (0: no cap), HP_RANDOM_VERBOSE=1
prints every case, HP_RANDOM_ONLY="138 204" replays those cases alone on a
fresh cluster (a case that failed after others may pass alone: the sessions
persist from case to case, and state left by one case can break a later one),
HP_RANDOM_LEAKY=0 generates no leaky code (the oracle then finds only crashes,
the superuser's unaudited reads and break glass surviving its savepoint).
Runs with /usr/bin/python3 and Debian's python3-psycopg2 (test/deps.sh).

Data.  reg_a(id, subject, note, n): subject 'A00042', note 'NA00042x', n = id;
reg_b the same with 'B00042' / 'NB00042x', n = id % 7; 200 rows each, both
protected on subject.  Any text the client receives that contains A00042 or
NA00042 (case-insensitive) is a value of subject A00042 of reg_a.  Unprotected
helper tables h_ids(id, label 'L00042') and h_small(k) hold no such token.

Roles (each its own persistent session, purpose 'care' unless said):
  r_all    rule without quota on both tables
  r_sync   the same, with health_pass.audit_sync = on: when its case ends,
           the record of every value it saw must already be committed,
           before audit_flush() is called (HP_RANDOM_SYNC=0 leaves it out)
  r_quota  rule with a quota of 10 subjects an hour on each table
  r_none   no rule
  r_wrong  rules for purpose 'research' only
  r_nopurpose  rules for 'care', but its session declares no purpose
  r_bg     no rule, may call break_glass(); most of its cases run inside a
           transaction that breaks the glass, some break it in a savepoint
           that is rolled back (then it has no right), some do not break it
  r_admin  superuser; its cases use no leaky code (superusers are audited,
           not gated), and every value it receives must be audited 'superuser'
  r_bypass BYPASSRLS, no rule: treated like r_admin (audited 'superuser')

Statements (kinds): leaky code in WHERE alone, ANDed or ORed with leakproof
conditions, in the select list, a custom operator (===) over a leaky function,
casts whose errors print the value (note::int), a function that raises an
ERROR with its argument, set_config() read back with current_setting(),
pg_notify() to a channel the session listens on; around them subqueries
(IN, scalar, ANY, OFFSET 0), EXISTS, CTEs (materialized or not), joins forced
to hash, merge or nested loop, LATERAL, cursors (DECLARE/FETCH/MOVE, scroll,
WITH HOLD, several closed out of order), a PL/pgSQL function returning a
refcursor fetched by a later statement, set-returning functions (SQL,
inlined, and PL/pgSQL) reading the tables, PL/pgSQL reading both tables per
row, DO blocks, ORDER BY leak(), LIMIT, UNION, window functions, aggregates,
EXPLAIN ANALYZE, prepared statements (custom and generic plans), COPY (query)
TO STDOUT, UPDATE ... RETURNING and SELECT ... FOR UPDATE (rolled back).
Random planner settings (enable_seqscan/indexscan/bitmapscan) are mixed in.

Oracle, per case (a case is one generated statement, or a short script such
as BEGIN; DECLARE; FETCH; COMMIT): every token the client saw -- in result
rows, COPY output, NOTICE text, notifications, the error's message, detail,
hint and context -- is mapped to (table, subject).  After audit_flush(), the
records this case's backend wrote since the case began must hold, for each
seen (table, subject), one with outcome allowed, break_glass or superuser for
that role.  A role with no right in the case (r_none, r_wrong, r_nopurpose,
r_bg without glass) must see no token at all.  For r_quota, the distinct subjects seen
(and those audited 'allowed') per table since the start of the run must not
exceed 10.  No false positives: EXPLAIN output and error context are not
counted for tokens that occur literally in the case's SQL (plans print their
constants); nothing else the client receives echoes the SQL.  A crash (a
session's connection lost, or 'terminated by signal' / PANIC in the server
log) fails the case during which it happened (the report names the case the
same session ran before, whose leftover state may be the cause); the server is
waited for, the sessions reconnect and the quota bookkeeping starts over (the
server forgot it).
An internal error (SQLSTATE XX000, e.g. "could not find block containing
chunk", "unrecognized node type") fails its case too: valid SQL never raises
one in a healthy backend.

Count: each case is one test; three more at the end: no backend crashed over
the run (server log, pg_postmaster_start_time() unchanged), and r_quota's
quota held on each table over the run.  The last line is
'random_gate: N passed, N failed'; the exit status is non-zero on failure.
"""
import io
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import sys
import tempfile
import time
from collections import Counter, defaultdict

try:
    import psycopg2
    import psycopg2.extensions
except ImportError:
    print("random_gate: python3-psycopg2 is missing (test/deps.sh installs it)")
    print("random_gate: 0 passed, 1 failed")
    sys.exit(1)

SEED = os.environ.get("HP_RANDOM_SEED", "11")
SECONDS = float(os.environ.get("HP_RANDOM_SECONDS", "60"))
MAX_CASES = int(os.environ.get("HP_RANDOM_CASES", "0"))
VERBOSE = os.environ.get("HP_RANDOM_VERBOSE", "") not in ("", "0")
ONLY = [int(x) for x in os.environ.get("HP_RANDOM_ONLY", "").replace(",", " ").split()]  # replay these cases
LEAKY = os.environ.get("HP_RANDOM_LEAKY", "1") not in ("", "0")  # 0: no leaky code (checks the oracle)
QUOTA = 10
NROWS = 200
DB = "random_gate"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOKEN = re.compile(r"(?<![0-9A-Za-z])(N?)([AB])(\d{5})(?!\d)", re.I)
TABLE_OF = {"A": "reg_a", "B": "reg_b"}

SYNC = os.environ.get("HP_RANDOM_SYNC", "1") not in ("", "0")  # 0: no r_sync role
ROLES = {  # role: (weight, purpose, right, audit_sync); right: 'rule', 'quota', None, 'bg', 'super'
    "r_all": (3, "care", "rule", False),
    "r_sync": (1, "care", "rule", True),
    "r_quota": (2, "care", "quota", False),
    "r_none": (2, "care", None, False),
    "r_wrong": (2, "care", None, False),
    "r_nopurpose": (1, None, None, False),
    "r_bg": (3, "care", "bg", False),
    "r_admin": (1, "care", "super", False),
    "r_bypass": (1, "care", "super", False),
}
if not SYNC:
    del ROLES["r_sync"]

SETUP = f"""
CREATE EXTENSION health_pass;
CREATE TABLE reg_a (id int PRIMARY KEY, subject text NOT NULL UNIQUE, note text, n int);
INSERT INTO reg_a SELECT i, 'A' || lpad(i::text, 5, '0'), 'NA' || lpad(i::text, 5, '0') || 'x', i
    FROM generate_series(1, {NROWS}) i;
CREATE INDEX ON reg_a (n);
CREATE TABLE reg_b (id int PRIMARY KEY, subject text NOT NULL UNIQUE, note text, n int);
INSERT INTO reg_b SELECT i, 'B' || lpad(i::text, 5, '0'), 'NB' || lpad(i::text, 5, '0') || 'x', i % 7
    FROM generate_series(1, {NROWS}) i;
CREATE TABLE h_ids (id int PRIMARY KEY, label text);
INSERT INTO h_ids SELECT i, 'L' || lpad(i::text, 5, '0') FROM generate_series(1, 300) i;
CREATE TABLE h_small (k int);
INSERT INTO h_small SELECT generate_series(1, 20);
ANALYZE;
CREATE VIEW v_a AS SELECT id, subject, note, n FROM reg_a;
CREATE VIEW v_b_sb WITH (security_barrier) AS SELECT id, subject, note, n FROM reg_b WHERE id <= 150;
SELECT health_pass.protect('reg_a', 'subject');
SELECT health_pass.protect('reg_b', 'subject');

-- leaky code: none of it is LEAKPROOF
CREATE FUNCTION leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
  $$ BEGIN RAISE NOTICE 'leak %', $1; RETURN true; END $$;
CREATE FUNCTION leak_false(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
  $$ BEGIN RAISE NOTICE 'leak_false %', $1; RETURN false; END $$;
CREATE FUNCTION leak2(text, int) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
  $$ BEGIN RAISE NOTICE 'leak2 % %', $1, $2; RETURN $2 % 3 = 0; END $$;
CREATE FUNCTION leak_err(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
  $$ BEGIN RAISE EXCEPTION 'leak_err %', $1; END $$;
CREATE FUNCTION leak_eq(text, text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
  $$ BEGIN RAISE NOTICE 'leak_eq % %', $1, $2; RETURN $1 = $2; END $$;
CREATE OPERATOR === (LEFTARG = text, RIGHTARG = text, FUNCTION = leak_eq);
-- a cursor opened by a function, fetched by a later statement
CREATE FUNCTION open_cur(q text, name text) RETURNS refcursor LANGUAGE plpgsql AS
  $$ DECLARE c refcursor := name; BEGIN OPEN c FOR EXECUTE q; RETURN c; END $$;
-- set-returning functions reading the tables
CREATE FUNCTION rows_a(lim int) RETURNS SETOF reg_a LANGUAGE sql STABLE AS
  $$ SELECT * FROM reg_a WHERE id <= lim $$;
CREATE FUNCTION rows_b_pl(lim int) RETURNS SETOF reg_b LANGUAGE plpgsql AS
  $$ BEGIN RETURN QUERY SELECT * FROM reg_b WHERE id <= lim; END $$;
-- PL/pgSQL reading both protected tables, called once per row
CREATE FUNCTION two_notes(k int) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN RETURN (SELECT note FROM reg_a WHERE id = k) || '/' || (SELECT note FROM reg_b WHERE id = k); END $$;
-- PL/pgSQL scanning a table with a leaky filter inside
CREATE FUNCTION leaky_count_a(lim int) RETURNS bigint LANGUAGE plpgsql AS
  $$ BEGIN RETURN (SELECT count(*) FROM reg_a WHERE id <= lim AND leak_false(note)); END $$;

CREATE ROLE r_all LOGIN;
CREATE ROLE r_quota LOGIN;
CREATE ROLE r_none LOGIN;
CREATE ROLE r_wrong LOGIN;
CREATE ROLE r_bg LOGIN;
CREATE ROLE r_admin LOGIN SUPERUSER;
CREATE ROLE r_bypass LOGIN BYPASSRLS;
CREATE ROLE r_nopurpose LOGIN;
CREATE ROLE r_sync LOGIN;
GRANT USAGE ON SCHEMA health_pass TO r_all, r_quota, r_none, r_wrong, r_bg, r_bypass, r_nopurpose, r_sync;
GRANT SELECT, UPDATE ON reg_a, reg_b TO r_all, r_quota, r_none, r_wrong, r_bg, r_bypass, r_nopurpose, r_sync;
GRANT SELECT ON v_a, v_b_sb, h_ids, h_small TO r_all, r_quota, r_none, r_wrong, r_bg, r_bypass, r_nopurpose,
    r_sync;
SELECT health_pass.allow('r_sync', 'reg_a', 'care');
SELECT health_pass.allow('r_sync', 'reg_b', 'care');
ALTER ROLE r_sync SET health_pass.audit_sync = on;
SELECT health_pass.allow('r_nopurpose', 'reg_a', 'care');
SELECT health_pass.allow('r_nopurpose', 'reg_b', 'care');
SELECT health_pass.allow('r_all', 'reg_a', 'care');
SELECT health_pass.allow('r_all', 'reg_b', 'care');
SELECT health_pass.allow('r_quota', 'reg_a', 'care', {QUOTA}, '1 hour');
SELECT health_pass.allow('r_quota', 'reg_b', 'care', {QUOTA}, '1 hour');
SELECT health_pass.allow('r_wrong', 'reg_a', 'research');
SELECT health_pass.allow('r_wrong', 'reg_b', 'research');
GRANT EXECUTE ON FUNCTION health_pass.break_glass(text) TO r_bg;
ALTER ROLE r_all SET statement_timeout = '5s';
ALTER ROLE r_quota SET statement_timeout = '5s';
ALTER ROLE r_none SET statement_timeout = '5s';
ALTER ROLE r_wrong SET statement_timeout = '5s';
ALTER ROLE r_bg SET statement_timeout = '5s';
ALTER ROLE r_admin SET statement_timeout = '5s';
ALTER ROLE r_bypass SET statement_timeout = '5s';
ALTER ROLE r_nopurpose SET statement_timeout = '5s';
ALTER ROLE r_sync SET statement_timeout = '5s';
"""

FILLER = "SELECT count(*) FROM (SELECT repeat('x', 100000) FROM generate_series(1, 50)) s"


class Stmt:
    def __init__(self, sql, how="sql"):
        self.sql = sql
        self.how = how  # sql, copy, explain, state (reads back session state)


class Case:
    def __init__(self, no, role, kind):
        self.no, self.role, self.kind = no, role, kind
        self.body = []       # statements
        self.after = []      # statements after the transaction ends
        self.txn = False     # body needs a transaction block
        self.end = "COMMIT"
        self.glass = False   # r_bg breaks the glass for the whole case
        self.right = True    # may the role see anything in this case?
        self.script = []     # what was run, in order

    def sql_text(self):
        return "; ".join(s.sql for s in self.script)


class Gen:
    """Generates the SQL of one case from its own Random."""

    def __init__(self, rng, leaky_ok):
        self.r = rng
        self.leaky_ok = leaky_ok
        self.pre = []
        self.post = []

    def pick(self, *opts):
        return self.r.choice(opts)

    def tbl(self, base_only=False):
        opts = [("reg_a", "A")] * 4 + [("reg_b", "B")] * 4
        if not base_only:
            opts += [("v_a", "A"), ("v_b_sb", "B")]
        return self.r.choice(opts)

    def subj(self, P):
        return f"'{P}{self.r.randint(1, NROWS):05d}'"

    def safe(self, al, P):
        r = self.r
        c = r.randrange(6)
        if c == 0:
            return f"{al}.id < {r.randint(2, 60)}"
        if c == 1:
            x = r.randint(1, NROWS - 10)
            return f"{al}.id BETWEEN {x} AND {x + r.randint(0, 10)}"
        if c == 2:
            return f"{al}.subject = {self.subj(P)}"
        if c == 3:
            return f"{al}.n = {r.randint(0, 6)}"
        if c == 4:
            return f"{al}.id IN ({', '.join(str(r.randint(1, NROWS)) for _ in range(r.randint(1, 4)))})"
        return f"{al}.subject IN ({self.subj(P)}, {self.subj(P)})"

    def leaky(self, al, P, which=None):
        """A boolean expression over a row that runs non-LEAKPROOF code."""
        if not self.leaky_ok:
            return self.safe(al, P)
        r = self.r
        col = f"{al}.{r.choice(['note', 'subject'])}"
        c = r.randrange(11) if which is None else which
        if c == 0:
            return f"leak({col})"
        if c == 1:
            return f"leak_false({col})"
        if c == 2:
            return f"NOT leak_false({col})"
        if c == 3:
            return f"{col} === 'zz'"
        if c == 4:
            return f"{al}.subject === {al}.note"
        if c == 5:
            return f"{col}::int > 0"
        if c == 6:
            return f"length({col}::numeric::text) > 0"
        if c == 7:
            return f"leak_err({col})"
        if c == 8:
            if "SELECT current_setting('hp.leak', true)" not in self.post:
                self.post.append("SELECT current_setting('hp.leak', true)")
            return f"set_config('hp.leak', {col}, false) = 'zz'"
        if c == 9:
            if "LISTEN hp_ch" not in self.pre:
                self.pre.append("LISTEN hp_ch")
            return f"pg_notify('hp_ch', {col})::text = 'zz'"
        return f"leak2({col}, {al}.id)"

    def pred(self, al, P):
        r = self.r
        c = r.randrange(8)
        L = self.leaky(al, P)
        S = self.safe(al, P)
        return [L, f"{S} AND {L}", f"{L} AND {S}", f"({S} OR {L})", f"NOT ({L})",
                f"CASE WHEN {S} THEN {L} ELSE false END", S, f"({L} OR {S})"][c]

    def leaky_sel(self, al, P):
        if not self.leaky_ok:
            return f"{al}.note"
        return self.pick(f"leak({al}.note)", f"{al}.note::int", f"leak_err({al}.subject)",
                         f"({al}.note === 'zz')", f"leak2({al}.subject, {al}.id)",
                         f"set_config('hp.leak', {al}.note, false)")

    def sel(self, al, P):
        r = self.r
        opts = [f"{al}.id", f"{al}.subject", f"{al}.note", f"{al}.subject, {al}.note",
                f"{al}.id, {al}.note", f"upper({al}.note)", f"{al}.n",
                f"{al}.subject || ':' || {al}.note"]
        if r.random() < 0.2:
            return self.leaky_sel(al, P)
        return r.choice(opts)

    def select(self, al="t"):
        T, P = self.tbl()
        q = f"SELECT {self.sel(al, P)} FROM {T} {al} WHERE {self.pred(al, P)}"
        if self.r.random() < 0.3:
            q += f" ORDER BY {al}.id"
        if self.r.random() < 0.3:
            q += f" LIMIT {self.r.randint(1, 20)}"
        return q


def k_where(g, c):
    c.body.append(Stmt(g.select()))


def k_select_list(g, c):
    T, P = g.tbl()
    c.body.append(Stmt(f"SELECT t.id, {g.leaky_sel('t', P)} FROM {T} t WHERE {g.safe('t', P)}"))


def k_operator(g, c):
    T, P = g.tbl()
    rhs = g.pick("'zz'", "t.note", "t.subject")
    op = f"t.{g.pick('note', 'subject')} === {rhs}" if g.leaky_ok else g.safe("t", P)
    w = g.pick(op, f"{g.safe('t', P)} AND {op}", f"({op} OR {g.safe('t', P)})")
    c.body.append(Stmt(f"SELECT {g.sel('t', P)} FROM {T} t WHERE {w}"))


def k_cast(g, c):
    T, P = g.tbl()
    col = g.pick("note", "subject")
    ty = g.pick("int", "numeric", "date", "boolean", "bigint")
    if not g.leaky_ok:
        c.body.append(Stmt(f"SELECT t.{col} FROM {T} t WHERE {g.safe('t', P)}"))
    elif g.r.random() < 0.5:
        c.body.append(Stmt(f"SELECT t.id FROM {T} t WHERE {g.safe('t', P)} AND (t.{col})::{ty} IS NOT NULL"))
    else:
        c.body.append(Stmt(f"SELECT t.id, (t.{col})::{ty} FROM {T} t WHERE {g.safe('t', P)}"))


def k_subquery(g, c):
    T, P = g.tbl()
    v = g.r.randrange(4)
    if v == 0:
        q = (f"SELECT h.id, h.label FROM h_ids h WHERE h.id IN (SELECT t.id FROM {T} t WHERE {g.pred('t', P)}) "
             f"ORDER BY h.id LIMIT 20")
    elif v == 1:
        q = f"SELECT h.k, (SELECT t.note FROM {T} t WHERE t.id = h.k AND {g.pred('t', P)}) FROM h_small h"
    elif v == 2:
        q = f"SELECT count(*) FROM h_ids h WHERE h.id = ANY (ARRAY(SELECT t.n FROM {T} t WHERE {g.pred('t', P)}))"
    else:
        off = g.pick(" OFFSET 0", "")
        q = f"SELECT {g.sel('s', P)} FROM (SELECT * FROM {T} t WHERE {g.safe('t', P)}{off}) s WHERE {g.pred('s', P)}"
    c.body.append(Stmt(q))


def k_exists(g, c):
    T, P = g.tbl()
    neg = g.pick("", "NOT ")
    c.body.append(Stmt(f"SELECT h.id FROM h_ids h WHERE {neg}EXISTS (SELECT 1 FROM {T} t WHERE t.id = h.id AND "
                       f"{g.pred('t', P)}) ORDER BY 1 LIMIT 10"))


def k_cte(g, c):
    T, P = g.tbl()
    mat = g.pick("MATERIALIZED ", "NOT MATERIALIZED ", "")
    c.body.append(Stmt(f"WITH c AS {mat}(SELECT * FROM {T} t WHERE {g.safe('t', P)}) "
                       f"SELECT {g.sel('c', P)} FROM c WHERE {g.pred('c', P)}"))


def k_join(g, c):
    method = g.pick("hash", "merge", "nestloop")
    for m in ("hashjoin", "mergejoin", "nestloop"):
        if not m.startswith(method[:4]):
            c.body.append(Stmt(f"SET enable_{m} = off"))
    v = g.r.randrange(4)
    jt = g.pick("JOIN", "LEFT JOIN")
    if v == 0:
        (T1, P1), (T2, P2) = g.tbl(), g.tbl()
        on = f"a.id = b.id"
        if g.r.random() < 0.4:
            on += f" AND {g.leaky('a', P1)}"
        al, PP = g.pick(("a", P1), ("b", P2))
        q = (f"SELECT a.{g.pick('subject', 'note', 'id')}, b.{g.pick('subject', 'note', 'id')} "
             f"FROM {T1} a {jt} {T2} b ON {on} WHERE {g.pred(al, PP)}")
    elif v == 1:
        T, P = g.tbl()
        q = (f"SELECT h.label, {g.sel('t', P)} FROM h_ids h {jt} {T} t ON h.id = t.id "
             f"WHERE {g.pred('t', P)} AND h.id <= {g.r.randint(5, 300)}")
    elif v == 2:
        T, P = g.tbl()
        q = f"SELECT s.k, {g.sel('t', P)} FROM h_small s {jt} {T} t ON t.n = s.k WHERE {g.pred('t', P)}"
    else:
        q = (f"SELECT a.subject, b.subject FROM reg_a a JOIN reg_b b ON a.n = b.n "
             f"WHERE {g.pred('a', 'A')} AND {g.safe('b', 'B')}")
    c.body.append(Stmt(q))


def k_lateral(g, c):
    T, P = g.tbl()
    lim = g.pick("", " LIMIT 1")
    if g.r.random() < 0.5:
        q = (f"SELECT h.k, l.* FROM h_small h, LATERAL (SELECT t.subject, t.note FROM {T} t "
             f"WHERE t.id = h.k + {g.r.randint(0, 150)} AND {g.pred('t', P)}{lim}) l")
    else:
        q = (f"SELECT h.k, l.note FROM h_small h LEFT JOIN LATERAL (SELECT t.note FROM {T} t "
             f"WHERE t.n = h.k AND {g.pred('t', P)}{lim}) l ON true")
    c.body.append(Stmt(q))


def k_cursor(g, c):
    c.txn = True
    r = g.r
    scroll = g.pick("", "SCROLL ", "NO SCROLL ")
    hold = r.random() < 0.2
    c.body.append(Stmt(f"DECLARE c1 {scroll}CURSOR {'WITH HOLD ' if hold else ''}FOR {g.select()}"))
    c.body.append(Stmt(f"FETCH {r.randint(1, 5)} FROM c1"))
    if r.random() < 0.5:
        c.body.append(Stmt(f"MOVE {r.randint(1, 20)} IN c1"))
        c.body.append(Stmt(f"FETCH {g.pick('NEXT', '2', 'ALL')} FROM c1"))
    if scroll == "SCROLL " and r.random() < 0.5:
        c.body.append(Stmt("FETCH PRIOR FROM c1"))
        c.body.append(Stmt("FETCH FIRST FROM c1"))
    if r.random() < 0.5:  # several cursors, closed out of order
        c.body.append(Stmt(f"DECLARE c2 CURSOR FOR {g.select()}"))
        if not hold:
            c.body.append(Stmt("CLOSE c1"))
        c.body.append(Stmt(f"DECLARE c3 CURSOR FOR {g.select()}"))
        c.body.append(Stmt(f"DECLARE c4 CURSOR FOR {g.select()}"))
        c.body.append(Stmt(f"FETCH 3 FROM c{g.pick(2, 3, 4)}"))
        c.body.append(Stmt(f"FETCH 2 FROM c{g.pick(2, 3, 4)}"))
    if hold:
        c.after.append(Stmt(f"FETCH {r.randint(1, 5)} FROM c1"))
        c.after.append(Stmt("CLOSE c1"))


def k_refcursor(g, c):
    c.txn = True
    q = g.select().replace("'", "''")
    c.body.append(Stmt(f"SELECT open_cur('{q}', 'rc')"))
    if g.r.random() < 0.6:
        c.body.append(Stmt(FILLER))
    c.body.append(Stmt(f"FETCH {g.pick('5', '1', 'ALL')} FROM rc"))
    if g.r.random() < 0.4:
        q2 = g.select().replace("'", "''")
        c.body.append(Stmt(f"SELECT open_cur('{q2}', 'rc2')"))
        c.body.append(Stmt("CLOSE rc"))
        c.body.append(Stmt("FETCH 3 FROM rc2"))


def k_srf(g, c):
    v = g.r.randrange(3)
    if v == 0:
        c.body.append(Stmt(f"SELECT {g.sel('r', 'A')} FROM rows_a({g.r.randint(1, 200)}) r WHERE {g.pred('r', 'A')}"))
    elif v == 1:
        c.body.append(Stmt(f"SELECT {g.sel('r', 'B')} FROM rows_b_pl({g.r.randint(1, 200)}) r "
                           f"WHERE {g.pred('r', 'B')}"))
    elif g.leaky_ok:
        c.body.append(Stmt(f"SELECT leaky_count_a({g.r.randint(1, 200)})"))
    else:
        c.body.append(Stmt(f"SELECT (rows_a({g.r.randint(1, 30)})).note"))


def k_plpgsql(g, c):
    if g.r.random() < 0.5:
        c.body.append(Stmt(f"SELECT h.id, two_notes(h.id) FROM h_ids h WHERE h.id <= {g.r.randint(1, 200)}"))
    else:
        T, P = g.tbl()
        c.body.append(Stmt(f"DO $$ DECLARE r record; BEGIN FOR r IN SELECT t.note FROM {T} t WHERE "
                           f"{g.pred('t', P)} LOOP RAISE NOTICE 'row %', r.note; END LOOP; END $$"))


def k_order_by(g, c):
    T, P = g.tbl()
    key = g.leaky_sel("t", P) if g.leaky_ok else "t.note"
    c.body.append(Stmt(f"SELECT t.id FROM {T} t WHERE {g.safe('t', P)} ORDER BY {key}, t.id "
                       f"LIMIT {g.r.randint(1, 10)}"))


def k_limit(g, c):
    T, P = g.tbl()
    c.body.append(Stmt(f"SELECT {g.sel('t', P)} FROM {T} t WHERE {g.pred('t', P)} LIMIT {g.r.randint(1, 3)}"))


def k_union(g, c):
    (T1, P1), (T2, P2) = g.tbl(), g.tbl()
    c.body.append(Stmt(f"SELECT t.subject FROM {T1} t WHERE {g.pred('t', P1)} {g.pick('UNION', 'UNION ALL')} "
                       f"SELECT u.note FROM {T2} u WHERE {g.pred('u', P2)}"))


def k_window(g, c):
    T, P = g.tbl()
    w = g.pick("row_number() OVER (ORDER BY t.note)", "lag(t.note) OVER (ORDER BY t.id)",
               "first_value(t.subject) OVER (PARTITION BY t.n ORDER BY t.id)",
               "count(*) OVER (PARTITION BY leak(t.note))" if g.leaky_ok else "count(*) OVER ()")
    c.body.append(Stmt(f"SELECT t.id, {w} FROM {T} t WHERE {g.pred('t', P)}"))


def k_aggregate(g, c):
    T, P = g.tbl()
    a = g.pick("string_agg(t.note, ',')", "max(t.subject)", "count(*)", "min(t.note), t.n",
               "array_agg(t.subject) FILTER (WHERE leak(t.note))" if g.leaky_ok else "array_agg(t.subject)")
    q = f"SELECT {a} FROM {T} t WHERE {g.pred('t', P)}"
    if a.endswith("t.n"):
        q += " GROUP BY t.n"
    c.body.append(Stmt(q))


def k_explain(g, c):
    opts = g.pick("ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF", "ANALYZE, VERBOSE, COSTS OFF, TIMING OFF",
                  "ANALYZE, FORMAT JSON, TIMING OFF")
    c.body.append(Stmt(f"EXPLAIN ({opts}) {g.select()}", "explain"))


def k_prepared(g, c):
    T, P = g.tbl()
    if g.r.random() < 0.5:
        c.body.append(Stmt("SET plan_cache_mode = force_generic_plan"))
    c.body.append(Stmt(f"PREPARE p(int) AS SELECT {g.sel('t', P)} FROM {T} t WHERE t.id < $1 AND {g.pred('t', P)}"))
    for _ in range(g.r.randint(1, 3)):
        c.body.append(Stmt(f"EXECUTE p({g.r.randint(1, 200)})"))


def k_copy(g, c):
    fmt = g.pick("", " WITH (FORMAT csv)", " WITH (FORMAT text)")
    c.body.append(Stmt(f"COPY ({g.select()}) TO STDOUT{fmt}", "copy"))


def k_state(g, c):
    T, P = g.tbl()
    L = g.leaky("t", P, 8) if g.leaky_ok else g.safe("t", P)
    c.body.append(Stmt(f"SELECT count(*) FROM {T} t WHERE {g.safe('t', P)} AND {L}"))


def k_notify(g, c):
    T, P = g.tbl()
    L = g.leaky("t", P, 9) if g.leaky_ok else g.safe("t", P)
    c.body.append(Stmt(f"SELECT count(*) FROM {T} t WHERE {g.pick(g.safe('t', P) + ' AND ', '')}{L}"))


def k_dml(g, c):
    c.txn = True
    c.end = "ROLLBACK"
    T, P = g.tbl(base_only=True)
    if g.r.random() < 0.5:
        c.body.append(Stmt(f"UPDATE {T} t SET n = t.n WHERE {g.pred('t', P)} RETURNING t.{g.pick('subject', 'note')}"))
    else:
        c.body.append(Stmt(f"SELECT {g.sel('t', P)} FROM {T} t WHERE {g.pred('t', P)} FOR {g.pick('UPDATE', 'SHARE')}"))


def k_bg_savepoint(g, c):
    """break glass inside a savepoint rolled back: the glass is gone"""
    c.txn = True
    c.glass = False
    c.right = False
    c.body.append(Stmt("SAVEPOINT s"))
    c.body.append(Stmt("SELECT health_pass.break_glass('random gate savepoint')"))
    c.body.append(Stmt("ROLLBACK TO SAVEPOINT s"))
    T, P = g.tbl()
    c.body.append(Stmt(f"SELECT t.subject, t.note FROM {T} t WHERE {g.safe('t', P)}"))


KINDS = {
    "where": (4, k_where), "select_list": (2, k_select_list), "operator": (2, k_operator),
    "cast": (2, k_cast), "subquery": (2, k_subquery), "exists": (1, k_exists), "cte": (2, k_cte),
    "join": (3, k_join), "lateral": (1, k_lateral), "cursor": (2, k_cursor), "refcursor": (2, k_refcursor),
    "srf": (1, k_srf), "plpgsql": (1, k_plpgsql), "order_by": (1, k_order_by), "limit": (1, k_limit),
    "union": (1, k_union), "window": (1, k_window), "aggregate": (1, k_aggregate), "explain": (1, k_explain),
    "prepared": (1, k_prepared), "copy": (1, k_copy), "state": (1, k_state), "notify": (1, k_notify),
    "dml": (1, k_dml),
}
SUPER_SKIP = {"select_list", "operator", "cast", "state", "notify"}


def make_case(no):
    r = random.Random(f"{SEED}:{no}")
    role = r.choices(list(ROLES), weights=[v[0] for v in ROLES.values()])[0]
    right = ROLES[role][2]
    kinds = [k for k in KINDS if not ((right == "super" or not LEAKY) and k in SUPER_SKIP)]
    if right == "bg" and r.random() < 0.1:
        kind = "bg_savepoint"
    else:
        kind = r.choices(kinds, weights=[KINDS[k][0] for k in kinds])[0]
    c = Case(no, role, kind)
    g = Gen(r, leaky_ok=(right != "super" and LEAKY))
    if r.random() < 0.25:
        c.body.append(Stmt(f"SET {r.choice(['enable_seqscan', 'enable_indexscan', 'enable_bitmapscan'])} = off"))
    (k_bg_savepoint if kind == "bg_savepoint" else KINDS[kind][1])(g, c)
    c.body = [Stmt(s) for s in g.pre] + c.body + [Stmt(s, "state") for s in g.post]
    if right == "bg" and kind != "bg_savepoint":
        c.glass = r.random() < 0.75
        c.right = c.glass
    elif right is None:
        c.right = False
    script = []
    if c.glass or c.txn:
        script.append(Stmt("BEGIN"))
        if c.glass:
            script.append(Stmt("SELECT health_pass.break_glass('random gate test')"))
        script += c.body
        script.append(Stmt(c.end))
    else:
        script += c.body
    c.script = script + c.after
    return c


class Sink:
    """Collects every notice (psycopg2 keeps only the last 50 in a list)."""

    def __init__(self):
        self.items = []

    def append(self, x):
        self.items.append(x)


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="health_pass_random.")
        os.chmod(self.dir, 0o755)
        self.pg = os.path.join(self.dir, "pg")
        self.port = 56000 + random.SystemRandom().randrange(900)
        self.log = os.path.join(self.pg, "server.log")
        self.log_pos = 0

    def sh(self, fn, *args):
        cmd = f". '{ROOT}/test/cluster.sh' && {fn} \"$@\""
        return subprocess.run(["bash", "-c", cmd, "_"] + list(args), capture_output=True, text=True)

    def start(self):
        p = self.sh("hp_cluster_start", self.pg, str(self.port))
        if p.returncode != 0:
            print(p.stdout, p.stderr)
            return False
        return True

    def stop(self):
        self.sh("hp_cluster_stop", self.pg, "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self, user="postgres", db=DB, purpose=None):
        opts = f"-c health_pass.purpose={purpose}" if purpose else ""
        conn = psycopg2.connect(host=self.pg, port=self.port, user=user, dbname=db, options=opts,
                                connect_timeout=10)
        conn.autocommit = True
        conn.notices = Sink()
        return conn

    def new_log(self):
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_pos)
                data = f.read()
                self.log_pos += len(data)
            return data.decode("utf-8", "replace")
        except OSError:
            return ""


CRASH = re.compile(r"terminated by signal|terminated by exception|PANIC:|server process .* was terminated")


def tokens_in(text, channel, seen, exclude=None):
    for m in TOKEN.finditer(text):
        tok = m.group(0)
        if exclude is not None and tok.upper() in exclude:
            continue
        key = (TABLE_OF[m.group(2).upper()], m.group(2).upper() + m.group(3))
        seen.setdefault(key, (channel, tok))


def run_statement(conn, st, seen, sqltoks):
    """Run one statement; add every token the client received to seen.
    Returns None, or the error (SQLSTATE, text); raises on a lost connection."""
    cur = conn.cursor()
    err = None
    try:
        if st.how == "copy":
            buf = io.StringIO()
            cur.copy_expert(st.sql, buf)
            tokens_in(buf.getvalue(), "copy", seen)
        else:
            cur.execute(st.sql)
            if cur.description is not None:
                rows = cur.fetchall()
                text = "\n".join("|".join(str(v) for v in row) for row in rows)
                if st.how == "explain":
                    tokens_in(text, "explain", seen, exclude=sqltoks)
                else:
                    tokens_in(text, "session state" if st.how == "state" else "rows", seen)
    except psycopg2.Error as e:
        if conn.closed:
            raise
        d = e.diag
        for part, ch in ((d.message_primary, "error"), (d.message_detail, "error detail"),
                         (d.message_hint, "error hint")):
            if part:
                tokens_in(part, ch, seen)
        if d.context:
            tokens_in(d.context, "error context", seen, exclude=sqltoks)
        err = (d.sqlstate or "?????", (d.message_primary or str(e)).splitlines()[0][:120])
    finally:
        try:
            cur.close()
        except psycopg2.Error:
            pass
    return err


def violations_of(violations, case):
    for c, probs in violations:
        if c is case:
            return probs
    return []


def main():
    t_start = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))   # stop the cluster on the way out
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(1))
    cl = Cluster()
    if not cl.start():
        print("random_gate: could not start a cluster")
        print("random_gate: 0 passed, 1 failed")
        return 1
    try:
        return run(cl, t_start)
    finally:
        cl.stop()


def run(cl, t_start):
    admin = cl.connect(db="postgres")
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    admin.close()
    su = cl.connect()
    cur = su.cursor()
    cur.execute(SETUP)
    cur.execute("SELECT pg_postmaster_start_time()::text, 'reg_a'::regclass::oid, 'reg_b'::regclass::oid")
    pm_start, oid_a, oid_b = cur.fetchone()
    rel_name = {oid_a: "reg_a", oid_b: "reg_b"}
    cl.new_log()

    def audit_mark(conn):
        c = conn.cursor()
        c.execute("SELECT health_pass.audit_flush()")
        c.execute("SELECT coalesce(max(max_id), 0) FROM health_pass.audit_block")
        return c.fetchone()[0]

    def new_records(conn, mark, flush=True):
        c = conn.cursor()
        if flush:
            c.execute("SELECT health_pass.audit_flush()")
        c.execute("SELECT r.id, r.backend_pid, r.current_user_name, r.relation::oid, r.subject, r.outcome "
                  "FROM health_pass.audit_block b CROSS JOIN LATERAL health_pass._audit_rows(b.records) r "
                  "WHERE b.max_id > %s AND r.id > %s", (mark, mark))
        return c.fetchall()

    mark = audit_mark(su)
    sessions = {}
    quota_seen = defaultdict(set)      # table -> subjects r_quota saw (since start or last crash)
    quota_allowed = defaultdict(set)   # table -> subjects audited allowed for r_quota
    quota_over = {"reg_a": False, "reg_b": False}
    stats = Counter()
    kind_fail = Counter()
    role_runs = Counter()
    channels = Counter()
    seen_by_role = defaultdict(set)
    errors = Counter()
    internal = {}     # message of an internal error -> first case
    samples = {}      # SQLSTATE -> its first message
    violations = []   # (case, [messages])
    crashes = 0
    passed = failed = 0
    no = 0

    def session(role):
        s = sessions.get(role)
        if s is None or s.closed:
            s = cl.connect(user=role, purpose=ROLES[role][1])
            sessions[role] = s
        return s

    def recover():
        nonlocal su, mark
        for s in list(sessions.values()):
            try:
                s.close()
            except Exception:
                pass
        sessions.clear()
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                su = cl.connect()
                su.cursor().execute("SELECT 1")
                break
            except psycopg2.Error:
                time.sleep(0.3)
        else:
            return False
        mark = audit_mark(su)
        quota_seen.clear()
        quota_allowed.clear()
        return True

    t_cases = time.time()
    last_case = {}    # role -> the case its current session ran before
    todo = list(ONLY)
    while (todo if ONLY else time.time() - t_cases < SECONDS and (MAX_CASES == 0 or no < MAX_CASES)):
        no = todo.pop(0) if ONLY else no + 1
        c = make_case(no)
        role_runs[c.role] += 1
        stats[c.kind] += 1
        sqltext = c.sql_text()
        sqltoks = {m.group(0).upper() for m in TOKEN.finditer(sqltext)}
        seen = {}
        problems = []
        lost = None
        conn, pid = None, -1
        hung = []

        def watchdog():
            hung.append(True)
            if conn is not None:
                conn.cancel()
        timer = threading.Timer(60, watchdog)
        timer.start()
        try:
            conn = session(c.role)
            pid = conn.get_backend_pid()
            conn.notices.items.clear()
            del conn.notifies[:]
            for st in c.script:
                e = run_statement(conn, st, seen, sqltoks)
                if e:
                    errors[e[0]] += 1
                    samples.setdefault(e[0], f"{e[1]} (case {no})")
                    if e[0].startswith("XX") or e[0] == "?????":
                        internal.setdefault(e[1], no)
                        problems.append(("internal error (SQLSTATE XX...)", f"internal error {e[0]}: {e[1]}"))
            if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                conn.rollback()
            conn.cursor().execute("DISCARD ALL")
        except psycopg2.Error as e:
            lost = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
        finally:
            timer.cancel()
        if conn is not None:
            for n in conn.notices.items:
                tokens_in(n, "notice", seen)
            for n in conn.notifies:
                tokens_in(n.payload, "notify", seen)
        log = cl.new_log()
        if lost and not CRASH.search(log):
            # the postmaster logs a crash after the client saw its connection drop
            deadline = time.time() + 5
            while time.time() < deadline and not CRASH.search(log):
                time.sleep(0.1)
                log += cl.new_log()
        line = next((l for l in log.splitlines() if CRASH.search(l)), "")
        if lost:
            problems.append(("connection lost", f"connection lost: {lost}"))
        if hung:
            problems.append(("hung", "the case ran longer than 60 s and was cancelled"))
        if line:
            crashes += 1
            prev = last_case.get(c.role)
            problems.append(("crash", "backend crashed: " + line.split("LOG:")[-1].strip() +
                             (f" (pid {pid}; this session ran case {prev} before)" if prev else f" (pid {pid})")))
            # wait until the server has reinitialized before going on
            deadline = time.time() + 90
            while time.time() < deadline and "ready to accept connections" not in log.split(line, 1)[-1]:
                time.sleep(0.1)
                log += cl.new_log()
            if not recover():
                problems.append(("crash", "the server did not come back"))
                violations.append((c, problems))
                failed += 1
                break
            last_case.clear()
            records = []
        else:
            last_case[c.role] = no
            if lost:
                sessions.pop(c.role, None)
            records = None
            durable = None
            if ROLES[c.role][3]:
                try:   # audit_sync: the records are durable before the client saw a value
                    durable = new_records(su, mark, flush=False)
                except psycopg2.Error:
                    pass
            for _ in range(3):
                try:
                    records = new_records(su, mark)
                    break
                except psycopg2.Error as e:
                    flush_err = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    if su.closed:
                        recover()
                    time.sleep(1)
            if records is None:
                problems.append(("the audit log could not be read", f"audit_flush() or audit_log failed: {flush_err}"))
                records = []
                line = "no records"   # do not judge this case's reads without its records
        if records:
            mark = max(mark, max(r[0] for r in records))
        mine = [r for r in records if r[1] == pid]
        ok = {(rel_name.get(r[3]), r[4]) for r in mine
              if r[5] in ("allowed", "break_glass", "superuser") and r[2] == c.role}
        for key, (ch, tok) in sorted(seen.items()):
            channels[ch] += 1
            seen_by_role[c.role].add(key)
            if not c.right:
                problems.append((f"{c.role} (no right) saw a value via {ch}",
                                 f"{c.role} (no right) saw {tok} of {key[0]} via {ch}"))
            elif key not in ok and not line:
                problems.append((f"{c.role} saw a value via {ch}, not audited",
                                 f"{c.role} saw {tok} of {key[0]} via {ch}, not audited for it"))
            elif durable is not None and not line and key not in {
                    (rel_name.get(r[3]), r[4]) for r in durable if r[1] == pid and r[5] != "denied"}:
                problems.append((f"{c.role} saw a value via {ch} before its record was durable",
                                 f"{c.role} saw {tok} of {key[0]} via {ch}; its record was not yet "
                                 f"committed when the case ended (audit_sync)"))
        if ROLES[c.role][2] == "quota" and not line:
            for tbl in ("reg_a", "reg_b"):
                before = len(quota_seen[tbl])
                quota_seen[tbl] |= {s for (t, s) in seen if t == tbl}
                quota_allowed[tbl] |= {r[4] for r in mine if r[5] == "allowed" and rel_name.get(r[3]) == tbl}
                if len(quota_seen[tbl]) > QUOTA and len(quota_seen[tbl]) > before:
                    problems.append(("r_quota saw more subjects than its quota",
                                     f"r_quota has now seen {len(quota_seen[tbl])} subjects of {tbl} (quota {QUOTA})"))
                    quota_over[tbl] = True
                if len(quota_allowed[tbl]) > QUOTA:
                    problems.append(("r_quota has more 'allowed' subjects than its quota",
                                     f"r_quota has {len(quota_allowed[tbl])} 'allowed' subjects of {tbl} "
                                     f"in the audit log (quota {QUOTA})"))
                    quota_over[tbl] = True
        if problems:
            failed += 1
            kind_fail[c.kind] += 1
            violations.append((c, problems))
        else:
            passed += 1
        if VERBOSE:
            print(f"case {no} {c.role} {c.kind} {'FAIL' if problems else 'ok'} seen={len(seen)}: {sqltext[:300]}")
            for _, p in problems[:5]:
                print(f"    {p}")

    # run-wide properties
    try:
        su.cursor().execute("SELECT 1")
    except psycopg2.Error:
        recover()
    cur = su.cursor()
    cur.execute("SELECT pg_postmaster_start_time()::text")
    pm_now = cur.fetchone()[0]
    final = [("no backend crashed during the run", crashes == 0 and pm_now == pm_start and not CRASH.search(cl.new_log())),
             (f"r_quota saw at most {QUOTA} subjects of reg_a", not quota_over["reg_a"]),
             (f"r_quota saw at most {QUOTA} subjects of reg_b", not quota_over["reg_b"])]
    for s in sessions.values():
        try:
            s.close()
        except Exception:
            pass

    elapsed = time.time() - t_start
    print(f"random_gate: seed {SEED}, {no} cases in {time.time() - t_cases:.0f} s of cases "
          f"({SECONDS:.0f} s budget), {elapsed:.0f} s in all")
    print("  by kind (run/failed): " + ", ".join(f"{k} {stats[k]}/{kind_fail[k]}" for k in sorted(stats)))
    print("  by role (cases): " + ", ".join(f"{r} {role_runs[r]}" for r in ROLES))
    print("  distinct subjects seen by role: " + ", ".join(f"{r} {len(seen_by_role[r])}" for r in ROLES))
    print("  tokens seen by channel: " + ", ".join(f"{k} {v}" for k, v in channels.most_common()))
    print("  errors by SQLSTATE: " + ", ".join(f"{k} {v}" for k, v in errors.most_common(8)))
    if VERBOSE:
        for k, v in samples.items():
            print(f"    {k}: {v}")
    print(f"  crashes: {crashes}")
    vcount = Counter()
    first = {}        # violation type -> first case with it
    for c, probs in violations:
        for tag in {t for t, _ in probs}:
            vcount[tag] += 1
            first.setdefault(tag, c)
    if violations:
        print(f"  violations ({len(violations)} failing cases); failing cases by type, first case of each type:")
        for tag, n in vcount.most_common():
            c = first[tag]
            probs = [p for t, p in violations_of(violations, c) if t == tag]
            print(f"  {n:5d}  {tag}")
            print(f"         case {c.no} ({c.role}, {c.kind}): {c.sql_text()[:360]}")
            for p in probs[:2]:
                print(f"           {p}")
            if len(probs) > 2:
                print(f"           ... and {len(probs) - 2} more")
    for what, ok in final:
        print(f"{'ok' if ok else 'not ok'} - {what}")
        if ok:
            passed += 1
        else:
            failed += 1
    print(f"random_gate: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
