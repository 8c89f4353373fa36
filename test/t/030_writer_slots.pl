# Audit writers and their slots, on a cluster of their own (fsync on):
#   5.  health_pass.max_databases: past it reads fail closed and name the
#       setting; a dropped database's queue is reused, also when it was
#       dropped while no writer ran; a refused DROP DATABASE leaves the writer;
#   5b. parallel queries that take every free worker slot do not keep a
#       writer from starting after a restart.
# (Sections numbered as in the former test/crash.sh.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = hp_node('writer_slots');

my @stopped;    # writers we sent SIGSTOP: let them go whatever happens
END { kill 'CONT', @stopped if @stopped; }

audited_db('crash', "INSERT INTO people SELECT 'C' || lpad(i::text, 5, '0'), 'name ' || i FROM generate_series(1, 5000) i");
$ENV{PGOPTIONS} = '-c health_pass.purpose=care';

# 5. health_pass.max_databases: one database past it fails closed, with the
#    setting named; dropping an audited database frees its queue
$node->safe_psql('crash', q{ALTER ROLE reader SET health_pass.audit_sync = on;
ALTER ROLE reader SET health_pass.audit_timeout = '500ms'});
is(read_in('crash', 'C00100'), 'name 100', 'a read before the restart works');
$node->safe_psql('postgres', 'ALTER SYSTEM SET health_pass.max_databases = 2');
$node->restart;
audited_db($_, "INSERT INTO people VALUES ('D1', 'name d1')") for qw(crash2 crash3);
is(read_in('crash', 'C00104'), 'name 104', 'max_databases 2: the first database audits');
is(read_in('crash2', 'D1'), 'name d1', 'max_databases 2: the second database audits');
my $err = read_in('crash3', 'D1');
like($err =~ s/\n/ /gr, qr/at most 2 databases.*max_databases/,
	'max_databases 2: a third fails and names the setting');
unlike($err, qr/name d1/, 'max_databases 2: no row of the third was returned');
$node->safe_psql('postgres', 'DROP DATABASE crash2');
is(read_in('crash3', 'D1'), 'name d1', 'dropping an audited database frees its queue for another');
$node->safe_psql('crash3', 'SELECT health_pass.audit_flush()');
is($node->safe_psql('crash3',
		"SELECT count(*) FROM health_pass.audit_log WHERE subject = 'D1' AND outcome = 'allowed'"),
	'1', "the third database's record was written");
# DROP DATABASE in a transaction block (PostgreSQL refuses it) leaves the
# writer running; a database dropped while no writer runs (renamed first,
# which stops it) still frees its queue (0.7.0's first cut leaked the slot)
audited_db('crash4', "INSERT INTO people VALUES ('D1', 'name d1')");
my $w3 = writer_pid('crash3');
my ($ret, undef, $drop_err) = $node->psql('postgres', "BEGIN;\nDROP DATABASE crash3;\nROLLBACK;",
	on_error_stop => 0);
like($drop_err, qr/DROP DATABASE cannot run inside a transaction block/,
	'DROP DATABASE in a transaction block is refused');
ok($w3 ne '' && writer_pid('crash3') eq $w3,
	'DROP DATABASE in a transaction block: the writer still runs');
$node->safe_psql('postgres', 'ALTER DATABASE crash3 RENAME TO crash3x');
$node->safe_psql('postgres', 'DROP DATABASE crash3x');
is(read_in('crash4', 'D1'), 'name d1',
	'a database dropped while no writer ran frees its queue for another');

# 5b. background worker slots: after a restart, a plain role's parallel
#     queries take every free max_worker_processes slot (max_parallel_workers
#     is a user setting); the writers were reserved at server start, so the
#     first audited read still gets one (on 0.7.0: "could not start an audit
#     writer", and every audited read failed with YHA01)
$node->restart;
my $par = 'SET force_parallel_mode = on; SET max_parallel_workers = 16;';
# the sleepers hold their slots until this test cancels them, after the reads
my @sleepers;
for my $i (1 .. 10)
{
	my ($out, $err) = ('', '');
	push @sleepers, [ start_psql('postgres', 'reader', "$par SELECT pg_sleep(60)", \$out, \$err), \$out, \$err ];
}
sub workers_launched
{
	my (undef, $out) = psql_as('postgres', 'reader',
		"$par EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT 1");
	return $out =~ /Workers Launched: (\d+)/ ? $1 : '';
}
my $launched = '';
for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	$launched = workers_launched();
	last if $launched eq '0';
	usleep(100_000);
}
is($launched, '0', 'parallel queries of a plain role took every free worker slot');
is(read_in('crash', 'C00105'), 'name 105',
	'every worker slot taken: an audited read after a restart still gets its writer');
is(read_in('crash4', 'D1'), 'name d1', '... and the other audited database too');
is(workers_launched(), '0', '... while the parallel queries still held every free slot');
is($node->safe_psql('postgres',
		"SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE usename = 'reader' AND query LIKE '%pg_sleep(60)' AND backend_type = 'client backend'"),
	'10', 'the ten parallel queries were still running');
$_->[0]->finish for @sleepers;

# no signal and no PANIC at all: this test kills nothing
my @crashes = grep { /terminated by signal [0-9]+|PANIC/ } split /\n/, slurp_file($node->logfile);
is_deeply(\@crashes, [], 'no backend was terminated by a signal, no PANIC (server log)');

done_testing();
