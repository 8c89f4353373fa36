# HealthPass::Test: what the TAP scripts in test/t/ share.  A script calls
# hp_node(NAME) once; the other functions act on that node.
#
#   hp_node NAME [, CONF]     a started node with the extension preloaded,
#                             fsync on, crash restarts on (the test cluster's
#                             default is off), 40 connections, and CONF
#   audited_db DB, ROWS_SQL   a database with the extension and a protected
#                             table people that role reader may read for
#                             purpose care
#   psql_as, merged, read_in, count_records, chain_ok, writer_pid,
#   start_psql, missing_of, wait_crash_restart: see each below
#   streaming_primary, streaming_standby, shipper_conninfo, psql_care:
#                             the standby tests' pair of servers (test/t/10x)
package HealthPass::Test;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(hp_node audited_db psql_as merged read_in count_records
  chain_ok writer_pid start_psql missing_of wait_crash_restart
  streaming_primary streaming_standby shipper_conninfo psql_care);

our $node;

sub hp_node
{
	my ($name, $conf) = @_;
	$node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'health_pass'
fsync = on
restart_after_crash = on
max_connections = 40
} . ($conf // ''));
	$node->start;
	return $node;
}

# audited_db NAME, ROWS_SQL: a database with the extension, a protected
# table people that reader may read for purpose care
sub audited_db
{
	my ($db, $rows) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
CREATE EXTENSION health_pass;
DO \$\$ BEGIN CREATE ROLE reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
GRANT USAGE ON SCHEMA health_pass TO reader;
CREATE TABLE people (person_id text PRIMARY KEY, name text);
$rows;
GRANT SELECT ON people TO reader;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('reader', 'people', 'care');
});
}

# psql as ROLE on DB: ($ret, $stdout, $stderr)
sub psql_as
{
	my ($db, $role, $sql, %params) = @_;
	return $node->psql($db, $sql,
		connstr => $node->connstr($db) . " user=$role", %params);
}

# stdout and stderr together, as `psql ... 2>&1` gives them
sub merged
{
	my (undef, $out, $err) = @_;
	return join("\n", grep { defined $_ && $_ ne '' } $out, $err);
}

sub read_in
{
	my ($db, $id) = @_;
	return merged(psql_as($db, 'reader',
		"SELECT name FROM people WHERE person_id = '$id'"));
}

# records of the audit log matching WHERE, after a flush
sub count_records
{
	my ($where) = @_;
	$node->safe_psql('crash', 'SELECT health_pass.audit_flush()');
	return $node->safe_psql('crash',
		"SELECT count(*) FROM health_pass.audit_log WHERE $where");
}

sub chain_ok
{
	return $node->safe_psql('crash', 'SELECT ok FROM health_pass.audit_verify()');
}

sub writer_pid
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer' AND datname = '$db'");
}

# a psql of ROLE (undef: the superuser) running SQL in the background
sub start_psql
{
	my ($db, $role, $sql, $out, $err) = @_;
	my $connstr = $node->connstr($db) . (defined $role ? " user=$role" : '');
	return IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $connstr, '-c', $sql ],
		'<', \undef, '>', $out, '2>', $err,
		IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
}

# subjects in LIST without a record written for backend PID
sub missing_of
{
	my ($pid, @subjects) = @_;
	my %seen;
	my $arr = join(',', grep { !$seen{$_}++ } @subjects);
	$node->safe_psql('crash', 'SELECT health_pass.audit_flush()');
	return $node->safe_psql('crash',
		"SELECT count(*) FROM unnest('{$arr}'::text[]) got(s) WHERE NOT EXISTS (SELECT 1 FROM health_pass.audit_log a WHERE a.subject = got.s AND a.backend_pid = $pid)");
}

# after a process was killed (log offset taken before): the postmaster
# reinitialized and accepts connections again
sub wait_crash_restart
{
	my ($offset) = @_;
	$node->wait_for_log(
		qr/all server processes terminated; reinitializing.*database system is ready to accept connections/s,
		$offset);
	$node->poll_query_until('postgres', 'SELECT 1', '1')
	  or die 'the server did not come back after a crash';
}

# streaming_primary NAME, CONF, SQL: a started primary that streams, with the
# extension preloaded and created, a role shipper granted the two functions a
# standby ships through, and SQL run after that
sub streaming_primary
{
	my ($name, $conf, $sql) = @_;
	my $p = PostgreSQL::Test::Cluster->new($name);
	$p->init(allows_streaming => 1);
	$p->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'health_pass'
max_connections = 40
wal_level = replica
hot_standby = on
} . ($conf // ''));
	$p->start;
	$p->safe_psql('postgres', q{
CREATE EXTENSION health_pass;
CREATE ROLE shipper LOGIN;
GRANT EXECUTE ON FUNCTION health_pass._audit_ship(text, timestamptz, bigint, bytea) TO shipper;
GRANT EXECUTE ON FUNCTION health_pass._audit_quota_admit(oid, oid, text, bytea) TO shipper;
} . $sql);
	return $p;
}

# the connection string a standby of PRIMARY ships through (as shipper)
sub shipper_conninfo
{
	my ($primary) = @_;
	return 'host=' . $primary->host . ' port=' . $primary->port . ' user=shipper';
}

# streaming_standby PRIMARY, NAME, CONF: a started streaming standby of
# PRIMARY from a new backup, caught up
sub streaming_standby
{
	my ($primary, $name, $conf) = @_;
	$primary->backup("b_$name");
	my $s = PostgreSQL::Test::Cluster->new($name);
	$s->init_from_backup($primary, "b_$name", has_streaming => 1);
	$s->append_conf('postgresql.conf', $conf // '');
	$s->start;
	$primary->wait_for_catchup($s);
	return $s;
}

# psql on NODE's postgres as ROLE with purpose care: ($ret, $stdout, $stderr)
sub psql_care
{
	my ($node, $role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET health_pass.purpose = 'care'; $sql",
		connstr => $node->connstr('postgres') . " user=$role");
	return ($ret, $out // '', $err // '');
}

1;
