# The statistics a gated scan keeps when its backend dies in the middle of
# a call (docs/design/side_channels.md).  Around each call of a gated scan
# the counters are clamped, and on an ERROR the call's counts are taken
# back in PG_CATCH.  A FATAL error leaves through proc_exit() instead, and
# the statistics' exit hook flushed the partial counts of the call: a
# reader that had its own backend terminated (pg_terminate_backend() of a
# backend of its own role needs no privilege) in the middle of an index
# scan whose every row a leakproof subject qual removed before the gate
# read in pg_stat_user_tables how many rows the index condition matched,
# with no record.  hp_stats_exit() now takes them back before that hook.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;

my $node = hp_node('statistics_exit');
audited_db('se', "INSERT INTO people SELECT 'S' || i, 'name ' || i FROM generate_series(1, 10) i");
$node->safe_psql('se', q{
CREATE TABLE marks (id int, person text NOT NULL, flag int);
INSERT INTO marks SELECT i, 'M' || i, i % 4 FROM generate_series(1, 40000) i;
CREATE INDEX ON marks (flag);
VACUUM ANALYZE marks;
GRANT SELECT ON marks TO reader;
SELECT health_pass.protect('marks', 'person');
SELECT health_pass.allow('reader', 'marks', 'care');
});

sub counts
{
	$node->safe_psql('se', 'SELECT pg_stat_force_next_flush()');
	return $node->safe_psql('se', q{SELECT t.idx_tup_fetch, i.idx_tup_read, s.heap_blks_hit + s.heap_blks_read
	  FROM pg_stat_user_tables t, pg_stat_user_indexes i, pg_statio_user_tables s
	 WHERE t.relid = 'marks'::regclass AND i.indexrelid = 'marks_flag_idx'::regclass AND s.relid = t.relid});
}

# the reader's query: 2,000 index scans of flag = 1 (10,000 rows each), every
# row removed before the gate by person = 'none'; it runs for seconds
my $q = q{SET health_pass.purpose = 'care'; SET enable_seqscan = off; SET enable_bitmapscan = off;
DO $$ BEGIN FOR i IN 1 .. 2000 LOOP
  PERFORM count(*) FROM marks WHERE flag = 1 AND person = 'none';
END LOOP; END $$};
is(merged(psql_as('se', 'reader', $q =~ s/2000/2/r . '; SELECT 0')), '0',
	'the reader\'s query runs (two scans of it)');
my $before = counts();
is($before, counts(), 'the counts are steady');

for my $round (1 .. 3)
{
	my ($out, $err) = ('', '');
	my $h = start_psql('se', 'reader', $q, \$out, \$err);
	my $pid;
	$node->poll_query_until('se', q{SELECT count(*) = 1 FROM pg_stat_activity
	  WHERE usename = 'reader' AND state = 'active' AND query LIKE '%1 .. 2000%'})
	  or die 'the reader\'s query did not start';
	# let it run well into its scans, then the reader ends its own backend
	usleep(300_000);
	my ($ret, $o, $e) = psql_as('se', 'reader', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	  WHERE usename = 'reader' AND state = 'active' AND query LIKE '%1 .. 2000%' AND pid <> pg_backend_pid()});
	is($o, 't', "round $round: the reader terminates its own backend in the middle of the query");
	$h->finish;
	like($err, qr/terminating connection due to administrator command/, "round $round: ... which dies (FATAL)");
	$node->poll_query_until('se', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = 'reader'})
	  or die 'the reader\'s backend did not end';
	is(counts(), $before, "round $round: the statistics views count none of the rows its scans read before the gate");
}

# the exit path still flushes what is not a gated scan's: a count of another table
$node->safe_psql('se', 'CREATE TABLE plain (x int); INSERT INTO plain SELECT generate_series(1, 100); GRANT SELECT ON plain TO reader');
$node->safe_psql('se', 'SELECT pg_stat_force_next_flush()');
my $plain = $node->safe_psql('se', q{SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'plain'});
{
	my ($out, $err) = ('', '');
	my $h = start_psql('se', 'reader', 'SELECT count(*) FROM plain; ' . $q, \$out, \$err);
	$node->poll_query_until('se', q{SELECT count(*) = 1 FROM pg_stat_activity
	  WHERE usename = 'reader' AND state = 'active' AND query LIKE '%1 .. 2000%'})
	  or die 'the reader\'s query did not start';
	usleep(300_000);
	psql_as('se', 'reader', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	  WHERE usename = 'reader' AND state = 'active' AND query LIKE '%1 .. 2000%' AND pid <> pg_backend_pid()});
	$h->finish;
	$node->poll_query_until('se', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = 'reader'})
	  or die 'the reader\'s backend did not end';
}
$node->safe_psql('se', 'SELECT pg_stat_force_next_flush()');
$node->poll_query_until('se', qq{SELECT seq_tup_read = $plain + 100 FROM pg_stat_user_tables WHERE relname = 'plain'})
  or fail('the dying backend\'s other counts were flushed');
is(counts(), $before, '... while the gated scan\'s were not');

$node->stop;
ok(!$node->log_contains(qr/PANIC|terminated by signal/), 'no crash');
done_testing();
