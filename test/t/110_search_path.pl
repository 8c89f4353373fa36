# The search_path the SQL of health_pass runs under: none of a role's
# schemas may decide what its queries find (the siblings of revoke()'s
# search_path hole, test/sql/revocation.sql; audit_verify(), audit_checkpoint()
# and audit_archive(): test/sql/anchor.sql).
#
#  A. DROP DATABASE by its owner: the count of the database's prepared
#     transactions (access/plan.c) named = and count() bare, so an =(oid, oid)
#     of the owner's schema, first in his search_path, made it 0: the audit
#     writer was stopped for a DROP DATABASE that then failed, which is what
#     the check is there to prevent.
#  B. The audit writer (a background worker, as the bootstrap superuser)
#     ignores the search_path its database's owner sets (ALTER DATABASE ...
#     SET search_path): a max(bigint) and a type int8 of the owner's, which
#     its queries would have found, never run.
#  C. A standby's quota question to the primary cast its parameters to a
#     bare oid (audit/ship.c), resolved under the search_path the owner of
#     the database set on the primary: a domain "oid" of his, whose CHECK
#     ran as the role primary_conninfo connects as (shipper, or a superuser).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;

my $node = hp_node('search_path', "max_prepared_transactions = 2\n");
$node->safe_psql('postgres', 'CREATE ROLE dbowner LOGIN');
audited_db('target', "INSERT INTO people SELECT 'T' || i, 'name ' || i FROM generate_series(1, 100) i");
$node->safe_psql('postgres', 'ALTER DATABASE target OWNER TO dbowner');
$node->safe_psql('postgres', 'CREATE DATABASE home OWNER dbowner');

sub read_target
{
	my ($id) = @_;
	return merged(psql_as('target', 'reader',
		"SET health_pass.purpose = 'care'; SELECT name FROM public.people WHERE person_id = '$id'"));
}

# A. DROP DATABASE with an =(oid, oid) of the owner's first in his path
is(read_target('T1'), 'name 1', 'a read starts the writer of target');
my $w = writer_pid('target');
isnt($w, '', 'the writer of target runs');
psql_as('home', 'dbowner', q{
CREATE SCHEMA evil;
CREATE FUNCTION evil.oideq(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = evil.oideq);
}, on_error_die => 1);
psql_as('target', 'dbowner', "BEGIN;\nPREPARE TRANSACTION 'held';", on_error_die => 1);
my ($ret, undef, $err) = psql_as('home', 'dbowner',
	"SET search_path = evil, pg_catalog;\nDROP DATABASE target;", on_error_stop => 0);
like($err, qr/is being accessed by other users/, 'DROP DATABASE fails (a prepared transaction, and the writer)');
is(writer_pid('target'), $w, 'the owner\'s =(oid, oid) did not get the writer stopped');
$node->safe_psql('target', "COMMIT PREPARED 'held'");
is(read_target('T2'), 'name 2', 'target still reads');

# B. The writer's search_path is not its database's
psql_as('target', 'dbowner', q{
CREATE SCHEMA evil2;
CREATE TABLE evil2.ran (who name);
GRANT USAGE ON SCHEMA evil2 TO PUBLIC;
GRANT INSERT ON evil2.ran TO PUBLIC;
CREATE FUNCTION evil2.escalate() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evil2.ran VALUES (current_user);
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE dbowner SUPERUSER;
    END IF;
    RETURN true;
END $$;
CREATE FUNCTION evil2.grab(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM evil2.escalate();
    RETURN CASE WHEN $1 IS NULL OR $2 > $1 THEN $2 ELSE $1 END;
END $$;
CREATE AGGREGATE evil2.max(bigint) (SFUNC = evil2.grab, STYPE = bigint);
CREATE DOMAIN evil2.int8 AS pg_catalog.int8 CHECK (evil2.escalate());
ALTER DATABASE target SET search_path = evil2, pg_catalog;
}, on_error_die => 1);
is(merged(psql_as('target', 'reader', 'SHOW search_path')), 'evil2, pg_catalog',
	'a session of target gets the owner\'s search_path');
# the writer starts again (it reads its database's settings at start)
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer' AND datname = 'target'");
$node->poll_query_until('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer' AND datname = 'target'", '0');
is(read_target("T$_"), "name $_", "a read after the writer restarted ($_)") for 3 .. 12;
$node->safe_psql('target', 'SELECT health_pass.audit_flush()');
# a few index steps (at least once a second while idle)
sleep 2;
is($node->safe_psql('target',
		"SELECT count(*) FROM health_pass.audit_log WHERE subject IN ('T3', 'T12') AND outcome = 'allowed'"),
	'2', 'the restarted writer wrote the records');
isnt(writer_pid('target'), '', 'the writer runs');
is($node->safe_psql('target', "SELECT coalesce(string_agg(DISTINCT who::text, ','), 'nobody') FROM evil2.ran"),
	'nobody', 'nothing of the owner\'s schema ran in the writer');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'dbowner'"), 'f',
	'the database owner is no superuser');
is($node->safe_psql('target', 'SELECT ok FROM health_pass.audit_verify()'), 't', 'the chain verifies');

# C. A standby's quota question under the search_path the owner set on the primary
my $primary = streaming_primary('sp_primary', '', q{
CREATE ROLE dbowner LOGIN;
CREATE ROLE counted LOGIN;
CREATE DATABASE owned OWNER dbowner;
});
$primary->safe_psql('owned', q{
CREATE EXTENSION health_pass;
GRANT EXECUTE ON FUNCTION health_pass._audit_ship(text, timestamptz, bigint, bytea) TO shipper;
GRANT EXECUTE ON FUNCTION health_pass._audit_quota_admit(oid, oid, text, bytea) TO shipper;
CREATE TABLE people (person_id text PRIMARY KEY, name text);
INSERT INTO people SELECT 'Q' || i, 'name ' || i FROM generate_series(1, 100) i;
GRANT SELECT ON people TO counted;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('counted', 'people', 'care', 50, '1 hour');
SET ROLE counted; SET health_pass.purpose = 'care';
SELECT name FROM people WHERE person_id = 'Q1';
RESET ROLE; SELECT health_pass.audit_flush();
});
$primary->psql('owned', q{
CREATE SCHEMA evil;
CREATE TABLE evil.ran (who name);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT INSERT ON evil.ran TO PUBLIC;
CREATE FUNCTION evil.note(oid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evil.ran VALUES (current_user);
    RETURN true;
END $$;
CREATE DOMAIN evil.oid AS pg_catalog.oid CHECK (evil.note(VALUE));
ALTER DATABASE owned SET search_path = evil, pg_catalog;
}, connstr => $primary->connstr('owned') . ' user=dbowner', on_error_die => 1);
my $standby = streaming_standby($primary, 'sp_standby',
	"health_pass.primary_conninfo = '" . shipper_conninfo($primary) . "'\n");
my ($r, $out, $e) = $standby->psql('owned',
	"SET health_pass.purpose = 'care'; SELECT name FROM public.people WHERE person_id = 'Q2'",
	connstr => $standby->connstr('owned') . ' user=counted');
is($out, 'name 2', 'the standby reads through the rule with a quota') or diag($e);
is($primary->safe_psql('owned', "SELECT coalesce(string_agg(DISTINCT who::text, ','), 'nobody') FROM evil.ran"),
	'nobody', 'the quota question ran nothing of the owner\'s schema on the primary');
$standby->safe_psql('owned', 'SELECT health_pass.audit_flush()');
is($primary->safe_psql('owned',
		"SELECT count(*) FROM health_pass.audit_log WHERE subject = 'Q2' AND node IS NOT NULL"),
	'1', 'the standby\'s read was shipped to the primary');

done_testing();
