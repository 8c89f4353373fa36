# Issue 15 §1-2: reads on a hot standby are audited on the primary, or
# refused at once; quotas are the primary's; a promotion continues the one
# chain and says so; no worker slot is consumed by a writer that cannot run.
#
# Until 0.9.0 the standby's writer never started (registered to start after
# recovery): an allowed role got rows whose records stayed in the standby's
# memory for the first audit_timeout, then every read waited 5 s and failed
# with a message about the writer; quotas were counted per node; and after
# promotion the held records were written with ids the old primary had used.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;
use Time::HiRes qw(time sleep);
use IPC::Run;

my $primary = streaming_primary('primary', "health_pass.audit_timeout = '3s'\n", q{
CREATE ROLE reader LOGIN;
CREATE ROLE counted LOGIN;
GRANT USAGE ON SCHEMA health_pass TO reader, counted;
CREATE TABLE people (person_id text PRIMARY KEY, name text);
INSERT INTO people SELECT 'P' || i, 'name ' || i FROM generate_series(1, 100000) i;
GRANT SELECT ON people TO reader, counted;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('reader', 'people', 'care');
SELECT health_pass.allow('counted', 'people', 'care', 5, '1 hour');
CREATE TABLE plain AS SELECT i FROM generate_series(1, 200000) i;
});
# a first read on the primary: its writer runs and the chain has a head
$primary->safe_psql('postgres', q{SET ROLE reader; SET health_pass.purpose = 'care';
SELECT name FROM people WHERE person_id = 'P1'; RESET ROLE; SELECT health_pass.audit_flush()});

my $standby = streaming_standby($primary, 'standby1', "cluster_name = 'standby1'\nrestart_after_crash = on\n");

sub count_primary
{
	my ($where) = @_;
	$primary->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
	return $primary->safe_psql('postgres',
		"SELECT count(*) FROM health_pass.audit_log WHERE $where");
}

sub workers
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'health_pass audit writer'");
}

# 1. Shipping not configured: refused at once, also right after start,
#    naming recovery and the setting; nothing returned
{
	my $t0 = time;
	my ($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P2'");
	my $took = time - $t0;
	isnt($ret, 0, 'standby without shipping: a protected read fails');
	is($out, '', 'standby without shipping: no row is returned');
	like($err, qr/YHA02|cannot be read on this standby/, 'the error says it is the standby');
	like($err, qr/recovery/, 'the error names recovery');
	like($err, qr/health_pass\.primary_conninfo/, 'the error names the setting to configure');
	cmp_ok($took, '<', 2.5, "refused at once (${took}s, audit_timeout is 3 s)");

	# twenty more: no worker is started for each, parallel query still works
	my $before = workers($standby);
	psql_care($standby, 'reader', "SELECT name FROM people WHERE person_id = 'P$_'") for 3 .. 22;
	cmp_ok(workers($standby), '<=', $before + 0, 'no writer started per blocked read');
	my ($launched) = $standby->safe_psql('postgres', q{
SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON)
SELECT count(*) FROM plain}) =~ /"Workers Launched": (\d+)/;
	ok(defined $launched && $launched > 0, 'parallel query on the standby still launches workers');
	is(count_primary("subject IN ('P2','P3','P22')"), '0', 'no record of a refused read anywhere');
}

# 2. Shipping configured: reads audited on the primary, the standby named;
#    under audit_sync the record is durable on the primary before the row
#    leaves
{
	$standby->append_conf('postgresql.conf',
		"health_pass.primary_conninfo = '" . shipper_conninfo($primary) . "'\n");
	$standby->reload;
	my ($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P30'");
	is($ret, 0, 'shipping on: the standby reads') or diag($err);
	is($out, 'name 30', 'shipping on: the row');
	# audit_sync is off: the row may leave before the shipper sent its
	# record; audit_flush() on the standby waits until it is on the primary
	$standby->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
	is(count_primary("subject = 'P30' AND node = 'standby1' AND outcome = 'allowed' AND session_user_name = 'reader'"),
		'1', "the primary's chain holds the standby's read, naming the standby");

	# audit_sync (superuser-only, so set for the role): when the row
	# arrives, the record is already in the primary's log
	$primary->safe_psql('postgres', q{ALTER ROLE reader SET health_pass.audit_sync = on});
	$primary->wait_for_catchup($standby);
	($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P31'");
	is($out, 'name 31', 'audit_sync on the standby: the row') or diag($err);
	is($primary->safe_psql('postgres',
		"SELECT count(*) FROM health_pass.audit_log WHERE subject = 'P31' AND node = 'standby1'"),
		'1', 'audit_sync: the record was in the primary\'s log when the row left the standby');

	# the primary cannot write (its audit log locked): under audit_sync the
	# standby returns no row; the record is written once the lock goes
	my ($lout, $lerr) = ('', '');
	my $locker = IPC::Run::start(
		[ $primary->installed_command('psql'), '-XAtq', '-d', $primary->connstr('postgres'),
		  '-c', 'BEGIN; LOCK health_pass.audit_block IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT' ],
		'<', \undef, '>', \$lout, '2>', \$lerr);
	$primary->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE relation = 'health_pass.audit_block'::regclass AND mode = 'AccessExclusiveLock' AND granted");
	($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P32'");
	isnt($ret, 0, 'audit_sync, primary cannot write: the read fails');
	is($out, '', 'audit_sync, primary cannot write: no row leaves the standby');
	$locker->finish;
	$primary->safe_psql('postgres', q{ALTER ROLE reader RESET health_pass.audit_sync});
	$primary->wait_for_catchup($standby);
	ok($primary->poll_query_until('postgres',
		"SELECT health_pass.audit_flush() >= 0 AND count(*) > 0 FROM health_pass.audit_log WHERE subject = 'P32' AND node = 'standby1'"),
	  'the queued record reached the primary once it could write');
	my $ok = 0;
	for (1 .. 50)
	{
		($ret, $out, $err) = psql_care($standby, 'reader',
			"SELECT name FROM people WHERE person_id = 'P33'");
		if ($ret == 0) { $ok = 1; last; }
		sleep 0.2;
	}
	ok($ok, 'the standby reads again once the primary writes') or diag($err);
	# the batch the shipper sent again after the failed answer is written once
	is($primary->safe_psql('postgres',
		"SELECT count(*) FROM health_pass.audit_log WHERE subject = 'P32' AND node = 'standby1'"),
		'1', 'a batch shipped again is not written twice');

	# a crash restart of the standby (a backend killed): its queues start
	# numbering again under the same postmaster start time; the primary must
	# not take its next records for ones it already has (review finding)
	my ($sout, $serr) = ('', '');
	my $sleeper = IPC::Run::start(
		[ $standby->installed_command('psql'), '-XAtq', '-d', $standby->connstr('postgres'),
		  '-c', 'SELECT pg_sleep(60)' ], '<', \undef, '>', \$sout, '2>', \$serr);
	$standby->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'");
	my $victim = $standby->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'");
	kill 'KILL', $victim;
	$sleeper->finish;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery() OR true');
	my $ok = 0;
	for (1 .. 100)
	{
		($ret, $out, $err) = psql_care($standby, 'reader',
			"SELECT name FROM people WHERE person_id = 'P34'");
		if ($ret == 0) { $ok = 1; last; }
		sleep 0.2;
	}
	ok($ok, 'the standby reads after its crash restart') or diag($err);
	$standby->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
	is(count_primary("subject = 'P34' AND node = 'standby1'"), '1',
		"after the standby's crash restart its read is written on the primary");

	# the whole chain still verifies, with the shipped records in it
	is($primary->safe_psql('postgres', 'SELECT ok FROM health_pass.audit_verify()'), 't',
		'the chain with shipped records verifies');
	# a forged shipment: ordinary roles cannot call _audit_ship
	my ($r2, $o2, $e2) = psql_care($primary, 'reader',
		"SELECT * FROM health_pass._audit_ship('standby1', now(), 0, NULL)");
	like($e2, qr/permission denied/, 'an ordinary role cannot ship records');
}

# 3. Quotas are the primary's: 5 subjects in all, wherever read
{
	for my $i (1 .. 3)
	{
		my ($ret, $out, $err) = psql_care($primary, 'counted',
			"SELECT name FROM people WHERE person_id = 'P10$i'");
		is($ret, 0, "counted reads subject $i on the primary") or diag($err);
	}
	my ($ret, $out, $err) = psql_care($standby, 'counted',
		"SELECT name FROM people WHERE person_id IN ('P201', 'P202')");
	is($ret, 0, 'counted reads subjects 4 and 5 on the standby') or diag($err);
	($ret, $out, $err) = psql_care($standby, 'counted',
		"SELECT name FROM people WHERE person_id = 'P203'");
	isnt($ret, 0, 'a sixth subject on the standby is refused');
	like($err, qr/quota exceeded/, 'by the quota');
	($ret, $out, $err) = psql_care($primary, 'counted',
		"SELECT name FROM people WHERE person_id = 'P204'");
	like($err, qr/quota exceeded/, 'and on the primary too: the standby counted against it');
	($ret, $out, $err) = psql_care($standby, 'counted',
		"SELECT name FROM people WHERE person_id = 'P101'");
	is($out, 'name 101', 'a subject already counted is read again on the standby');
}

# 4. Replication breaks (the shipper still reaches the primary), the primary
#    writes records the standby never receives, then the primary goes: reads
#    on the standby are refused at once, naming the primary
my ($replicated_id, $lost_id);
{
	$primary->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
	$primary->wait_for_catchup($standby);
	$replicated_id = $primary->safe_psql('postgres', 'SELECT max(id) FROM health_pass.audit_log');
	$standby->append_conf('postgresql.conf', "primary_conninfo = ''\n");
	$standby->reload;
	$standby->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_wal_receiver');
	my ($ret, $out, $err) = psql_care($primary, 'reader',
		"SELECT name FROM people WHERE person_id IN ('P60', 'P61')");
	is($ret, 0, 'the primary reads while replication is broken') or diag($err);
	$primary->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
	$lost_id = $primary->safe_psql('postgres', 'SELECT max(id) FROM health_pass.audit_log');
	cmp_ok($lost_id, '>', $replicated_id, 'records the standby will never receive');
	sleep 2.5;	# the shipper's heartbeat learns the primary's head
	$primary->stop('fast');
	my $deadline = time + 10;
	# the shipper notices within its heartbeat; then every read fails at once
	do
	{
		($ret, $out, $err) = psql_care($standby, 'reader',
			"SELECT name FROM people WHERE person_id = 'P40'");
	} while ($ret == 0 && time < $deadline);
	my $t0 = time;
	($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P41'");
	my $took = time - $t0;
	isnt($ret, 0, 'primary down: a protected read on the standby fails');
	is($out, '', 'primary down: no row');
	like($err, qr/primary/, 'the error names the primary');
	cmp_ok($took, '<', 2.5, "primary down: refused at once (${took}s)");
	like($standby->safe_psql('postgres', 'SELECT waiting_on FROM health_pass.audit_status()'),
		qr/^error: the primary: /, 'audit_status() on the standby says the primary cannot be reached');
}

# 5. Promotion: the chain continues from the last record that reached the
#    standby, with a failover record; audit_verify() checks it all
{
	$standby->promote;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
	my ($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P50'");
	is($out, 'name 50', 'after promotion the new primary reads') or diag($err);
	$standby->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
	my $fo = $standby->safe_psql('postgres',
		"SELECT id, reason FROM health_pass.audit_log WHERE outcome = 'failover'");
	like($fo, qr/^\d+\|timeline 2 \(was 1\): the chain continues after record \d+/,
		'a failover record starts the new timeline');
	my ($fid) = $fo =~ /^(\d+)/;
	is($standby->safe_psql('postgres',
		"SELECT count(*) FROM health_pass.audit_log WHERE id = $fid - 1"), '1',
		'it follows the last record that reached this server');
	is($standby->safe_psql('postgres',
		'SELECT count(*) = count(DISTINCT id) FROM health_pass.audit_log'), 't',
		'no id is used twice');
	is($standby->safe_psql('postgres', 'SELECT ok FROM health_pass.audit_verify()'), 't',
		'audit_verify() checks the whole history across the failover');
	is($standby->safe_psql('postgres',
		"SELECT count(*) FROM health_pass.audit_log WHERE subject = 'P50' AND id > $fid"), '1',
		'reads after promotion come after the failover record');
	is($standby->safe_psql('postgres',
		'SELECT timeline, previous, after_id = ' . ($fid - 1) . ' FROM health_pass.audit_timeline ORDER BY timeline DESC LIMIT 1'),
		'2|1|t', 'audit_timeline notes the new timeline and where the chain continues');
	cmp_ok($fid - 1, '==', $replicated_id, 'the chain continues after the last replicated record')
		or diag("failover: $fo");
	my $from = $replicated_id + 1;
	like($fo, qr/the old primary had written records $from to $lost_id, which did not reach this server/,
		'the failover record reports the old primary\'s records that did not arrive')
		or diag("failover: $fo");
}

done_testing();
