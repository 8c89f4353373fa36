# Session settings as hidden input: what the session that reads the audit
# log sets must not change what audit_verify() answers.
#
#  A. Records cut from the end of the log are found through the writer's
#     head in shared memory.  audit_verify() compared it only in READ
#     COMMITTED: under REPEATABLE READ or SERIALIZABLE (a BEGIN, or
#     default_transaction_isolation, which the superuser who cut the
#     records can give the auditor's role: ALTER ROLE ... SET, or a
#     database owner the database) a truncated log verified "ok".
#  B. audit_verify() read audit_anchor under a new snapshot and the blocks
#     under the statement's (the transaction's, in REPEATABLE READ): an
#     audit_archive() committed in between made it report an intact log
#     as broken ("the archive anchor ... is not recorded in the chain").
#     Both now read under one snapshot taken after the writer's head.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;

my $node = hp_node('session_settings');
audited_db('ss', "INSERT INTO people SELECT 'S' || i, 'name ' || i FROM generate_series(1, 50) i");
$node->safe_psql('ss', q{
CREATE ROLE auditor LOGIN;
GRANT USAGE ON SCHEMA health_pass TO auditor;
GRANT SELECT ON health_pass.audit_block, health_pass.audit_log TO auditor;
});

sub read_all
{
	psql_as('ss', 'reader', "SET health_pass.purpose = 'care'; SELECT count(*) FROM people",
		on_error_die => 1);
	$node->safe_psql('ss', 'SELECT health_pass.audit_flush()');
}

sub verify_as
{
	my ($role, $sql) = @_;
	my $q = ($sql // '') . "SELECT ok, first_bad IS NOT NULL, why FROM health_pass.audit_verify()";
	return defined $role ? merged(psql_as('ss', $role, $q)) : merged($node->psql('ss', $q));
}

# B. an archive committed while an auditor's REPEATABLE READ transaction runs
read_all();
is(verify_as('auditor'), 't|f|', 'the log verifies');
my $bg = $node->background_psql('ss', on_error_stop => 0);
$bg->query_safe('SET ROLE auditor');
$bg->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$bg->query_safe('SELECT count(*) FROM health_pass.audit_block');
$node->safe_psql('ss', 'SELECT health_pass.audit_archive(clock_timestamp())');
is($bg->query('SELECT ok, first_bad IS NOT NULL, why FROM health_pass.audit_verify()'), 't|f|',
	'REPEATABLE READ, an archive committed since the snapshot: the intact log verifies');
$bg->query_safe('COMMIT');
$bg->quit;
is(verify_as('auditor'), 't|f|', 'and after the transaction');

# A. the last records cut by a superuser, nothing written since; the
# settings come first (an ALTER DATABASE is audited: a record after the cut
# would make it a gap in the middle, found anyway)
$node->safe_psql('ss', "ALTER DATABASE ss SET default_transaction_isolation = 'repeatable read'");
$node->safe_psql('ss', "ALTER ROLE auditor SET default_transaction_isolation = 'serializable'");
read_all();
is(verify_as('auditor'), 't|f|', 'more records: the log verifies');
$node->safe_psql('ss',
	'DELETE FROM health_pass.audit_log WHERE id > (SELECT max(id) - 3 FROM health_pass.audit_log)');
my $cut = 'f|t|records missing at the end';
is(verify_as('auditor', "SET default_transaction_isolation = 'read committed'; "), $cut,
	'READ COMMITTED: records missing at the end');
is(verify_as('auditor', 'SET default_transaction_isolation = DEFAULT; '), $cut,
	'the database\'s default, REPEATABLE READ: records missing at the end');
is(verify_as('auditor'), $cut,
	'the auditor\'s role given SERIALIZABLE by the superuser: records missing at the end');
is(verify_as('auditor', "SET default_transaction_isolation = 'read committed'; BEGIN ISOLATION LEVEL REPEATABLE READ; "),
	$cut, 'BEGIN ISOLATION LEVEL REPEATABLE READ: records missing at the end');
is(verify_as(undef), $cut, 'the superuser\'s own check (the database\'s REPEATABLE READ) too');
$node->safe_psql('ss', "ALTER ROLE auditor RESET ALL");
$node->safe_psql('ss', "ALTER DATABASE ss RESET ALL");

$node->stop;
done_testing();
