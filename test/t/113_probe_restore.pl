# The write-probe trigger after a dump and restore (docs/design/write_probes.md).
# The trigger that gates a write's key conflicts is internal, and pg_dump
# leaves internal triggers out: a restored database had its protected
# tables (the protected_table rows, forced row security) but no trigger, so
# a role could probe keys with unique violations again, unrecorded.  A row
# added to protected_table (here by the restore's COPY) now puts the
# trigger on its table; partitions too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;

my $node = hp_node('probe_restore');
audited_db('pr', "INSERT INTO people SELECT 'P' || i, 'name ' || i FROM generate_series(1, 10) i");
$node->safe_psql('pr', q{
GRANT INSERT ON people TO reader;
CREATE TABLE visits (person text, region int, PRIMARY KEY (person, region)) PARTITION BY LIST (region);
CREATE TABLE visits_1 PARTITION OF visits FOR VALUES IN (1);
INSERT INTO visits VALUES ('P3', 1);
GRANT INSERT ON visits TO reader;
SELECT health_pass.protect('visits', 'person');
SELECT health_pass.allow('reader', 'visits', 'care');
});

my $triggers = q{SELECT string_agg(tgrelid::regclass::text, ',' ORDER BY tgrelid::regclass::text)
  FROM pg_trigger WHERE tgisinternal AND tgfoid = 'health_pass._write_probe()'::regprocedure};
is($node->safe_psql('pr', $triggers), 'people,visits_1', 'protect() put the trigger on each table that holds rows');

my $dump = '';
IPC::Run::run([ $node->installed_command('pg_dump'), '-d', $node->connstr('pr') ], '>', \$dump)
  or die 'pg_dump failed';
unlike($dump, qr/health_pass_write_probe/, 'the dump holds no write-probe trigger (internal)');

$node->safe_psql('postgres', 'CREATE DATABASE restored');
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $node->installed_command('psql'), '-X', '-q', '-d', $node->connstr('restored') ],
		'<', \$dump, '>', \$o, '2>', \$e);
	unlike($e, qr/ERROR/, 'the dump restores without error') or diag($e);
}
is($node->safe_psql('restored', $triggers), 'people,visits_1',
	'the restore put the trigger back on each protected table');

# a probe in the restored database is recorded with the subject it matched
my $mark = $node->safe_psql('restored', 'SELECT coalesce(max(id), 0) FROM health_pass.audit_log');
like(merged(psql_as('restored', 'reader',
	q{SET health_pass.purpose = 'care'; INSERT INTO people VALUES ('P7', 'probe')})),
	qr/duplicate key value/, 'the probe fails as before');
is(merged(psql_as('restored', 'reader',
	q{SET health_pass.purpose = 'care'; INSERT INTO visits VALUES ('P3', 1) ON CONFLICT DO NOTHING})),
	'', 'the probe through the partitioned table inserts nothing');
$node->safe_psql('restored', 'SELECT health_pass.audit_flush()');
is($node->safe_psql('restored', qq{SELECT string_agg(relation::text || ':' || subject || ':' || outcome, ',' ORDER BY id)
  FROM health_pass.audit_log WHERE id > $mark AND current_user_name = 'reader'}),
	'people:P7:allowed,visits_1:P3:allowed', 'both probes are recorded with the subject of the row they matched');

# A data-only restore with --disable-triggers (into a database restored from
# the schema) keeps even protected_table's trigger from firing: the tables
# are protected but have no probe trigger.  Writes to them are refused to
# every gated role until protect() puts it back (a red-team pass probed P4
# unrecorded this way).
$node->safe_psql('postgres', 'CREATE DATABASE twostep');
{
	my ($schema, $data) = ('', '');
	IPC::Run::run([ $node->installed_command('pg_dump'), '-s', '-d', $node->connstr('pr') ], '>', \$schema)
	  or die 'pg_dump -s failed';
	IPC::Run::run([ $node->installed_command('pg_dump'), '-a', '--disable-triggers', '-d', $node->connstr('pr') ], '>', \$data)
	  or die 'pg_dump -a failed';
	for my $part ($schema, $data)
	{
		my ($o, $e) = ('', '');
		IPC::Run::run([ $node->installed_command('psql'), '-X', '-q', '-d', $node->connstr('twostep') ],
			'<', \$part, '>', \$o, '2>', \$e);
		unlike($e, qr/ERROR/, 'the two-step restore runs without error') or diag($e);
	}
}
is($node->safe_psql('twostep', $triggers), '', 'the data-only restore with --disable-triggers put no probe trigger on');
like(merged(psql_as('twostep', 'reader',
	q{SET health_pass.purpose = 'care'; INSERT INTO people VALUES ('P4', 'probe') ON CONFLICT DO NOTHING})),
	qr/has no write-probe trigger that fires in this session: writes are refused/, 'a write to the table is refused (not a probe that goes unrecorded)');
like(merged(psql_as('twostep', 'reader',
	q{SET health_pass.purpose = 'care'; INSERT INTO visits VALUES ('P3', 1) ON CONFLICT DO NOTHING})),
	qr/"visits_1" has no write-probe trigger that fires/, 'through the partitioned table too');
$node->safe_psql('twostep', q{SELECT health_pass.protect('people', 'person_id'); SELECT health_pass.protect('visits', 'person')});
is($node->safe_psql('twostep', $triggers), 'people,visits_1', 'protect() again puts them back');
$mark = $node->safe_psql('twostep', 'SELECT coalesce(max(id), 0) FROM health_pass.audit_log');
is(merged(psql_as('twostep', 'reader',
	q{SET health_pass.purpose = 'care'; INSERT INTO people VALUES ('P4', 'probe') ON CONFLICT DO NOTHING})),
	'', 'then the write goes on as a probe');
$node->safe_psql('twostep', 'SELECT health_pass.audit_flush()');
is($node->safe_psql('twostep', qq{SELECT string_agg(relation::text || ':' || subject || ':' || outcome, ',' ORDER BY id)
  FROM health_pass.audit_log WHERE id > $mark AND current_user_name = 'reader'}),
	'people:P4:allowed', 'and is recorded');

$node->stop;
done_testing();
