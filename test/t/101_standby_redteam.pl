# Issue 15 §1-2, red team: attacks on the standby's shipping, the primary's
# _audit_ship() and the quota questions, kept as regression tests.
#
#  A. audit_sync on the standby: the primary's _audit_ship() timed out
#     waiting for its writer (records queued there, not durable); the
#     shipper called again with the same batch, the primary skipped the
#     records it had queued and answered at once, and the standby let the
#     row leave before its record was durable on the primary.
#  C. Malformed version 2 blocks: the bounded decoder never crashes.
#  D. A quota question interrupted (statement_timeout) while connecting to
#     the primary left its connection open (checked after a first question,
#     so the table's files the backend keeps open are not counted; without
#     the PQfinish on the error path it shows one descriptor more per
#     question).
#  E. A standby stopped while records of reads it returned were unshipped
#     (primary down) lost them without a word.
#  F. A standby promoted while records of its reads are still unshipped
#     writes them after the failover record.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use IPC::Run;

my $primary = streaming_primary('rt_primary', qq{
health_pass.audit_timeout = '1s'
health_pass.audit_queue_size = 64
}, q{
CREATE ROLE reader LOGIN;
CREATE ROLE syncer LOGIN;
CREATE ROLE counted LOGIN;
GRANT USAGE ON SCHEMA health_pass TO reader, syncer, counted;
CREATE TABLE people (person_id text PRIMARY KEY, name text);
INSERT INTO people SELECT 'P' || i, 'name ' || i FROM generate_series(1, 1000) i;
GRANT SELECT ON people TO reader, syncer, counted;
SELECT health_pass.protect('people', 'person_id');
SELECT health_pass.allow('reader', 'people', 'care');
SELECT health_pass.allow('syncer', 'people', 'care');
SELECT health_pass.allow('counted', 'people', 'care', 50, '1 hour');
ALTER ROLE syncer SET health_pass.audit_sync = on;
ALTER ROLE syncer SET health_pass.audit_timeout = '8s';
});
$primary->safe_psql('postgres', q{SET ROLE reader; SET health_pass.purpose = 'care';
SELECT name FROM people WHERE person_id = 'P1'; RESET ROLE; SELECT health_pass.audit_flush()});

my $ship_conninfo = shipper_conninfo($primary);
my $standby = streaming_standby($primary, 'rt_standby', "cluster_name = 'standby1'\n"
	  . "health_pass.primary_conninfo = '$ship_conninfo'\n");

# a read on the standby that succeeds (the shipper may still be connecting)
sub standby_read
{
	my ($role, $id) = @_;
	my ($ret, $out, $err);
	for (1 .. 50)
	{
		($ret, $out, $err) = psql_care($standby, $role,
			"SELECT name FROM people WHERE person_id = '$id'");
		return ($ret, $out, $err) if $ret == 0;
		sleep 0.2;
	}
	return ($ret, $out, $err);
}

sub lock_primary_log
{
	my ($secs) = @_;
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start(
		[ $primary->installed_command('psql'), '-XAtq', '-d', $primary->connstr('postgres'),
		  '-c', "BEGIN; LOCK health_pass.audit_block IN SHARE MODE; SELECT pg_sleep($secs); COMMIT" ],
		'<', \undef, '>', \$o, '2>', \$e);
	$primary->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE relation = 'health_pass.audit_block'::regclass AND mode = 'ShareLock' AND granted");
	return $h;
}

sub primary_count
{
	my ($where) = @_;
	return $primary->safe_psql('postgres',
		"SELECT count(*) FROM health_pass.audit_log WHERE $where");
}

my ($ret, $out, $err) = standby_read('reader', 'P2');
is($out, 'name 2', 'shipping works') or diag($err);
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM health_pass.audit_log WHERE subject = 'P2' AND node IS NOT NULL");

# C. malformed version 2 blocks (a shipped record makes one): no crash
{
	my $r = $primary->psql('postgres', q{
DO $$
DECLARE
    good bytea;
    b bytea;
    n int;
BEGIN
    SELECT records INTO good FROM health_pass.audit_block
     WHERE get_byte(records, 2) = 2 ORDER BY min_id DESC LIMIT 1;
    IF good IS NULL THEN RAISE EXCEPTION 'no version 2 block'; END IF;
    PERFORM setseed(0.15);
    FOR i IN 1 .. 3000 LOOP
        b := good;
        IF i % 7 = 0 THEN
            b := substring(b FROM 1 FOR (random() * length(b))::int);
        ELSE
            FOR k IN 1 .. 1 + (random() * 4)::int LOOP
                n := 3 + (random() * (length(b) - 4))::int;
                b := set_byte(b, n, (random() * 255)::int);
            END LOOP;
        END IF;
        BEGIN
            PERFORM count(*) FROM health_pass._audit_rows(b);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END LOOP;
END $$});
	is($r, 0, 'C: 3000 malformed version 2 blocks decode or fail, no crash');
	is($primary->safe_psql('postgres', 'SELECT 1'), '1', 'C: the primary is up');
	# and through _audit_ship: a truncated block is refused with an error
	my ($r2, $o2, $e2) = $primary->psql('postgres', q{
SELECT * FROM health_pass._audit_ship('x', now(), 0,
  (SELECT substring(records FROM 1 FOR 40) FROM health_pass.audit_block ORDER BY min_id DESC LIMIT 1))});
	like($e2, qr/do not decode/, 'C: _audit_ship refuses a truncated block');
	# a node name cannot inject anything
	($r2, $o2, $e2) = $primary->psql('postgres',
		q{SELECT * FROM health_pass._audit_ship(E'a\nb'' --', now(), 0, NULL)});
	like($e2, qr/invalid node name/, 'C: a node name is letters, digits and _.:- only');
}

# A. audit_sync: no row leaves the standby before its record is durable on
#    the primary, even when the primary's first answer was a timeout
{
	my $locker = lock_primary_log(5);
	my $t0 = time;
	my ($ret, $out, $err) = psql_care($standby, 'syncer',
		"SELECT name FROM people WHERE person_id = 'P70'");
	my $took = time - $t0;
	my $on_primary = primary_count("subject = 'P70'");
	my $locked = $primary->safe_psql('postgres',
		"SELECT count(*) > 0 FROM pg_locks WHERE relation = 'health_pass.audit_block'::regclass AND mode = 'ShareLock' AND granted");
	ok(!($ret == 0 && $on_primary eq '0'),
		"A: audit_sync: no row before the record is in the primary's log (row after ${took}s, records there: $on_primary, log still locked: $locked)");
	$locker->finish;
	$primary->poll_query_until('postgres',
		"SELECT health_pass.audit_flush() >= 0 AND count(*) > 0 FROM health_pass.audit_log WHERE subject = 'P70'");
	is(primary_count("subject = 'P70'"), '1', 'A: the record is written once');
}

# D. a quota question interrupted while connecting leaves no connection open
{
	my $hole = IO::Socket::INET->new(Listen => 20, LocalAddr => '127.0.0.1',
		LocalPort => 0, Proto => 'tcp', ReuseAddr => 1) or die "listen: $!";
	my $port = $hole->sockport;
	$standby->append_conf('postgresql.conf',
		"health_pass.primary_conninfo = 'host=127.0.0.1 port=$port user=shipper'\n");
	$standby->reload;
	sleep 0.5;
	# one question first: the table's and index's files the backend opens
	# (and keeps open, md.c) are not a leak
	my $sql = q{SET health_pass.purpose = 'care'; SET statement_timeout = '200ms';
SET ROLE counted; SELECT name FROM people WHERE person_id = 'P300'; RESET ROLE;
SELECT count(*) FROM pg_ls_dir('/proc/' || pg_backend_pid() || '/fd');
SET ROLE counted;
} . join('', map { "SELECT name FROM people WHERE person_id = 'P30$_';\n" } 1 .. 6) . q{
RESET ROLE; RESET statement_timeout;
SELECT count(*) FROM pg_ls_dir('/proc/' || pg_backend_pid() || '/fd');};
	my ($r, $o, $e) = $standby->psql('postgres', $sql, on_error_stop => 0);
	my ($before, $after) = split /\n/, $o;
	like($e, qr/statement timeout/, 'D: the quota question was interrupted');
	cmp_ok($after, '<=', $before + 1, "D: no socket left open per interrupted question ($before fds before, $after after)");
	is($standby->safe_psql('postgres', 'SELECT 1'), '1', 'D: the standby is up');
	close $hole;
	$standby->append_conf('postgresql.conf', "health_pass.primary_conninfo = '$ship_conninfo'\n");
	$standby->reload;
	($ret, $out, $err) = standby_read('counted', 'P310');
	is($out, 'name 310', 'D: reads resume with the primary back') or diag($err);
}

# E. a standby stopped with records of returned rows unshipped says so
{
	my $locker = lock_primary_log(30);
	my ($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P80'");
	is($out, 'name 80', 'E: the row left (audit_sync off)') or diag($err);
	sleep 0.3;
	$primary->stop('immediate');
	$locker->kill_kill;
	my $log_from = -s $standby->logfile;
	$standby->stop('fast');
	my $log = slurp_file($standby->logfile, $log_from);
	like($log, qr/audit records? of this standby's reads (was|were) not shipped/,
		'E: the records lost at shutdown are reported in the log');
	$primary->start;
	$standby->start;
}

# F. promoted while a read's record is still unshipped: written after the
#    failover record
{
	my ($ret, $out, $err) = standby_read('reader', 'P90');
	is($out, 'name 90', 'F: the standby reads again') or diag($err);
	$primary->poll_query_until('postgres',
		"SELECT health_pass.audit_flush() >= 0 AND count(*) = 1 FROM health_pass.audit_log WHERE subject = 'P90' AND outcome = 'allowed'");
	$primary->wait_for_catchup($standby);
	my $locker = lock_primary_log(30);
	($ret, $out, $err) = psql_care($standby, 'reader',
		"SELECT name FROM people WHERE person_id = 'P91'");
	is($out, 'name 91', 'F: the row left (audit_sync off)') or diag($err);
	sleep 0.3;
	$primary->stop('immediate');
	$locker->kill_kill;
	$standby->promote;
	$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
	$standby->poll_query_until('postgres',
		"SELECT health_pass.audit_flush() >= 0 AND count(*) = 1 FROM health_pass.audit_log WHERE subject = 'P91' AND outcome = 'allowed'");
	is($standby->safe_psql('postgres',
		"SELECT (SELECT id FROM health_pass.audit_log WHERE subject = 'P91' AND outcome = 'allowed') > (SELECT id FROM health_pass.audit_log WHERE outcome = 'failover')"),
		't', 'F: the unshipped record is written after the failover record');
	is($standby->safe_psql('postgres', 'SELECT count(*) = count(DISTINCT id) FROM health_pass.audit_log'),
		't', 'F: no id twice');
	is($standby->safe_psql('postgres', 'SELECT ok FROM health_pass.audit_verify()'), 't',
		'F: the chain verifies');
}

done_testing();
