# Crash and shutdown tests for the audit log, on a cluster of their own
# (fsync on, restart_after_crash on):
#   1. the extended protocol (pgbench -M extended / prepared) is gated;
#   2. SIGKILL of a reading backend under audit_sync: every row the client
#      received has its record after crash recovery;
#   3. immediate shutdown: nothing lost under audit_sync; the window lost with
#      audit_sync off is measured (note) and bounded; a fast shutdown loses
#      nothing even with audit_sync off;
#   4. writer stopped (SIGSTOP) or terminated: reads fail closed, then recover;
#   9. a writer that cannot start writing still stops on a fast shutdown.
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

my $node = hp_node('crash_recovery');

my @stopped;    # writers we sent SIGSTOP: let them go whatever happens
END { kill 'CONT', @stopped if @stopped; }

audited_db('crash', "INSERT INTO people SELECT 'C' || lpad(i::text, 5, '0'), 'name ' || i FROM generate_series(1, 5000) i");
$ENV{PGOPTIONS} = '-c health_pass.purpose=care';

# 1. the extended protocol and prepared statements
for my $mode (qw(extended prepared))
{
	my $before = count_records("subject = 'C00007'");
	$node->pgbench("-n -U reader -M $mode -t 3", 0,
		[qr/number of transactions actually processed: 3\/3/], [qr/^$/],
		"pgbench -M $mode runs",
		{ "one_$mode.sql" => "SELECT name FROM people WHERE person_id = 'C00007';\n" },
		'crash');
	my $after = count_records("subject = 'C00007'");
	is($after - $before, 3, "pgbench -M $mode: 3 statements, 3 records");
}

# 2. SIGKILL of a reading backend under audit_sync
$node->safe_psql('crash', 'ALTER ROLE reader SET health_pass.audit_sync = on');
{
	my ($out, $err) = ('', '');
	my $h = start_psql('crash', 'reader',
		'COPY (SELECT person_id, pg_sleep(0.0005) FROM people ORDER BY person_id) TO STDOUT',
		\$out, \$err);
	$h->pump while $h->pumpable && ($out =~ tr/\n//) < 1500;
	my $victim = $node->safe_psql('crash',
		"SELECT pid FROM pg_stat_activity WHERE usename = 'reader' AND query LIKE 'COPY%'");
	my $offset = -s $node->logfile;
	ok($victim =~ /^\d+$/ && kill('KILL', $victim), 'SIGKILL under audit_sync: the reading backend was killed mid-COPY');
	$h->finish;
	wait_crash_restart($offset);
	my @subjects = grep { /^C/ } map { (split /\t/)[0] // '' } split /\n/, $out;
	my $got = scalar @subjects;
	my $missing = missing_of($victim, @subjects);
	note("the client received $got rows before SIGKILL; rows without a record after recovery: $missing");
	cmp_ok($got, '>', 0, 'SIGKILL under audit_sync: the client received rows');
	is($missing, 0, 'SIGKILL under audit_sync: every received row has its record');
	is(chain_ok(), 't', 'the chain is intact after crash recovery');
}

# 3. immediate shutdown: audit_sync on loses nothing; off loses a measured
#    window. A fast shutdown (pg_ctl's default) right after such a read: the
#    writer writes what is queued before it exits, so nothing is lost even with
#    audit_sync off (0.6.0's writer died on SIGTERM with records queued)
sub lost_after_stop
{
	my ($sync, $mode) = @_;
	$node->safe_psql('crash', "ALTER ROLE reader SET health_pass.audit_sync = $sync");
	my $before = count_records('true');
	psql_as('crash', 'reader', 'SELECT count(*) FROM people', on_error_die => 1);
	$node->stop($mode);
	$node->start;
	my $after = $node->safe_psql('crash', 'SELECT count(*) FROM health_pass.audit_log');
	return $before + 5000 - $after;
}
my $lost_on = lost_after_stop('on', 'immediate');
is($lost_on, 0, 'immediate shutdown under audit_sync: no record lost');
my $lost_off = lost_after_stop('off', 'immediate');
note("immediate shutdown right after a 5000-subject read with audit_sync off: $lost_off of 5000 records lost");
my $lost_fast = lost_after_stop('off', 'fast');
note("fast shutdown right after a 5000-subject read with audit_sync off: $lost_fast of 5000 records lost");
is($lost_fast, 0, 'fast shutdown with audit_sync off: no record lost');
ok($lost_off >= 0 && $lost_off <= 8192, 'immediate shutdown with audit_sync off: at most the queue is lost')
  or diag("lost: $lost_off");
is(chain_ok(), 't', 'the chain is intact after immediate shutdown');

# 4. the writer stopped: reads fail closed after audit_timeout, then recover
$node->safe_psql('crash', q{ALTER ROLE reader SET health_pass.audit_sync = on;
ALTER ROLE reader SET health_pass.audit_timeout = '500ms'});
is(read_in('crash', 'C00100'), 'name 100', 'writer running: a read works');
my $wp = writer_pid('crash');
ok($wp =~ /^\d+$/ && kill('STOP', $wp), 'the writer was stopped (SIGSTOP)');
push @stopped, $wp;
my $err = read_in('crash', 'C00101');
like($err, qr/audit log is not being written/, 'writer stopped: the read fails with a clear error');
unlike($err, qr/name 101/, 'writer stopped: no row was returned');
kill 'CONT', $wp;
@stopped = ();
is(read_in('crash', 'C00102'), 'name 102', 'writer resumed: reads work again');
kill 'TERM', $wp;
$node->poll_query_until('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $wp", '0')
  or die 'the writer did not exit on SIGTERM';
is(read_in('crash', 'C00103'), 'name 103', 'writer terminated: the next read starts a new one');
my $new_wp = writer_pid('crash');
ok($new_wp ne '' && $new_wp ne $wp, 'a new writer is running');
is(chain_ok(), 't', 'records across writers chain correctly');

# 9. a writer that cannot start writing (a superuser broke audit_block, so
#    every attempt to read the chain head fails) still stops on a fast
#    shutdown (0.7.0's first drain left it retrying, and the shutdown hung)
$node->safe_psql('crash', q{ALTER ROLE reader RESET ALL;
ALTER ROLE reader SET health_pass.audit_sync = on});
audited_db('crashz', "INSERT INTO people VALUES ('D1', 'name d1')");
$node->safe_psql('crashz', q{SELECT count(*) FROM people;
SELECT health_pass.audit_flush();
ALTER TABLE health_pass.audit_block ADD COLUMN junk int});
my $zw = writer_pid('crashz');
ok($zw =~ /^\d+$/, 'crashz has a writer before audit_block is broken');
my $offset = -s $node->logfile;
$node->safe_psql('crashz',
	'SELECT pg_terminate_backend(writer_pid) FROM health_pass.audit_status()');
$node->poll_query_until('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $zw", '0')
  or die 'the writer of crashz did not exit';
read_in('crashz', 'D1');
$zw = writer_pid('crashz');
ok($zw =~ /^\d+$/, 'a new writer of crashz started for the read');
# a new writer has tried, and failed, to read its chain head
$node->wait_for_log(qr/audit_block is not the table/, $offset);
{
	local $ENV{PGCTLTIMEOUT} = 15;
	ok($node->stop('fast', fail_ok => 1),
		'fast shutdown with a writer that cannot read its chain head: the server stops');
	$node->stop('immediate') if defined $node->{_pid};
}

# the SIGKILL above is this test's own; any other signal or a PANIC is a crash
my @crashes = grep { /terminated by signal [0-9]+|PANIC/ && !/terminated by signal 9:/ }
  split /\n/, slurp_file($node->logfile);
is_deeply(\@crashes, [],
	'no backend died of anything but the SIGKILLs this test sends (server log)');

done_testing();
