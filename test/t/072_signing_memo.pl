# The statement memo of hp_signer_open (docs/design/signing.md, "The
# statement memo"): within one statement the key's row and the grant's
# answer are remembered; what could change them under the same snapshot
# forgets the memo.
#   1. many calls of one statement sign, and the memo does not outlive it: a
#      grant revoked between two statements of a function is refused;
#   2. a grant made in a subtransaction that is rolled back is refused at
#      the next call, even under a snapshot of the same content
#      (subtransaction abort callback);
#   3. a grant's role renamed in the same transaction loses the grant at the
#      next call (pg_authid invalidation);
#   4. a key file made readable by others: within one statement it is
#      refused at most a second later; the next statement refuses it;
#   5. a grant revoked, or a key deleted, by another session is refused at
#      the next statement of a signer whose REPEATABLE READ transaction
#      still sees it (grants and keys are read under the latest snapshot,
#      not the transaction's: the red team signed on until COMMIT).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Path qw(make_path);

my $node = PostgreSQL::Test::Cluster->new('signing_memo');
$node->init;
my $dir = $node->basedir . '/keys';
my $out = $node->basedir . '/outside';
make_path($dir, $out);
chmod 0700, $dir;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'health_pass'
health_pass.key_directory = '$dir'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION health_pass');

sub run { system(@_) == 0 or die "failed: @_"; }
run('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
	'-out', "$dir/es.pem", '-quiet');
chmod 0600, "$dir/es.pem";
run('openssl', 'req', '-new', '-x509', '-key', "$dir/es.pem", '-subj', '/C=FR/CN=memo',
	'-days', '365', '-outform', 'DER', '-out', "$out/es.der");

sub sq
{
	my ($sql, $role) = @_;
	my ($ret, $o, $e) = $node->psql('postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ], on_error_stop => 0,
		defined $role ? (connstr => $node->connstr('postgres') . " user=$role") : ());
	return join("\n", grep { defined $_ && $_ ne '' } $o, $e);
}

$node->safe_psql('postgres', qq{
SELECT health_pass.signing_key_add('fr', pg_read_binary_file('$out/es.der'), 'file:es.pem');
CREATE ROLE signer LOGIN;
GRANT signer TO CURRENT_USER;
});

# 1. ---------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT health_pass.grant_signing('signer', 'fr')");
is(sq("SET ROLE signer;
	SELECT count(DISTINCT health_pass.signer_check('fr')) FROM generate_series(1, 2000)"),
	"1", 'one statement, 2,000 calls: the same key');
like(sq(q{DO $$
BEGIN
	SET LOCAL ROLE signer;
	PERFORM health_pass.signer_check('fr') FROM generate_series(1, 10);
	RESET ROLE;
	PERFORM health_pass.revoke_signing('signer', 'fr');
	SET LOCAL ROLE signer;
	PERFORM health_pass.signer_check('fr');
END $$}),
	qr/42501: key: permission denied to sign with key "fr"/,
	'a grant revoked by an earlier statement of the same function: refused');
is(sq("SELECT health_pass.revoke_signing('signer', 'fr')"), 't', '(that DO block rolled back: revoke)');

# 2. ---------------------------------------------------------------------
like(sq(q{DO $$
BEGIN
	BEGIN
		PERFORM health_pass.grant_signing('signer', 'fr');
		SET LOCAL ROLE signer;
		PERFORM health_pass.signer_check('fr');
		RAISE EXCEPTION 'undo';
	EXCEPTION WHEN raise_exception THEN
		NULL;
	END;
	SET LOCAL ROLE signer;
	RAISE NOTICE 'rolled back, signing again';
	PERFORM health_pass.signer_check('fr');
END $$}),
	qr/rolled back, signing again.*42501: key: permission denied to sign with key "fr"/s,
	'a grant made in a rolled-back subtransaction: refused at the next call');
is(sq("SELECT count(*) FROM health_pass.signing_grant"), '0', '... and not there');

# 3. ---------------------------------------------------------------------
like(sq(q{SELECT health_pass.grant_signing('signer', 'fr');
DO $$
BEGIN
	SET LOCAL ROLE signer;
	PERFORM health_pass.signer_check('fr');
	RESET ROLE;
	ALTER ROLE signer RENAME TO signer2;
	SET LOCAL ROLE signer2;
	RAISE NOTICE 'renamed, signing again';
	PERFORM health_pass.signer_check('fr');
END $$}),
	qr/renamed, signing again.*42501: key: permission denied to sign with key "fr"/s,
	'a role renamed in the same transaction loses its grant at the next call');
is(sq("SET ROLE signer; SELECT health_pass.signer_check('fr') IS NOT NULL"), "t",
	'... which it has outside that transaction (rolled back)');

# 4. ---------------------------------------------------------------------
$node->safe_psql('postgres', qq{
CREATE FUNCTION key_mode(m text) RETURNS void LANGUAGE plpgsql AS \$f\$
BEGIN
	EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'chmod ' || m || ' $dir/es.pem');
END \$f\$;
});
my $r = sq(q{SELECT i, CASE WHEN i = 2 THEN key_mode('640') END,
	CASE WHEN i = 4 THEN pg_sleep(1.2) END,
	health_pass._sign('fr', 'x') IS NOT NULL
  FROM generate_series(1, 5) i});
like($r, qr/YHK01: key: the key file of signing key "fr" must be owned/,
	'a key file made group-readable during a statement: refused within it, after a second');
unlike($r, qr/^4\|/m, '... from the first call more than a second later');
like(sq("SELECT health_pass._sign('fr', 'x')"), qr/YHK01/,
	'... and at the first call of the next statement');
$node->safe_psql('postgres', "SELECT key_mode('600')");
is(sq("SELECT health_pass._sign('fr', 'x') IS NOT NULL"), 't', 'mode 0600 again: signs');

# 5. ---------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT health_pass.grant_signing('signer', 'fr')");
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_safe("SET ROLE signer");
$bg->query_safe("BEGIN ISOLATION LEVEL REPEATABLE READ");
is($bg->query("SELECT health_pass.signer_check('fr') IS NOT NULL"), 't',
	'a signer in a REPEATABLE READ transaction signs');
is($node->safe_psql('postgres', "SELECT health_pass.revoke_signing('signer', 'fr')"), 't',
	'another session revokes the grant');
$bg->query("SELECT health_pass.signer_check('fr')");
like($bg->{stderr}, qr/permission denied to sign with key "fr"/,
	'the signer\'s next statement, same transaction: refused');
$bg->{stderr} = '';
$bg->query("ROLLBACK");
$node->safe_psql('postgres', "SELECT health_pass.grant_signing('signer', 'fr')");
$bg->query_safe("BEGIN ISOLATION LEVEL REPEATABLE READ");
is($bg->query("SELECT health_pass.signer_check('fr') IS NOT NULL"), 't', 'granted again: signs');
$node->safe_psql('postgres', q{
ALTER TABLE health_pass.signing_key DISABLE TRIGGER USER;
DELETE FROM health_pass.signing_grant; DELETE FROM health_pass.signing_key WHERE name = 'fr';
ALTER TABLE health_pass.signing_key ENABLE TRIGGER USER;});
$bg->query("SELECT health_pass.signer_check('fr')");
like($bg->{stderr}, qr/key: /, 'a key deleted by another session: the signer\'s next statement is refused');
$bg->quit;

# ... and when the statements come in one message (one statement start
# time), or a cursor's FETCHes push the same snapshot: each client statement
# reads the grant again (the memo outlived them before).  The revoke comes
# while the signer sleeps 3 s between its two statements.
$node->safe_psql('postgres', q{
SELECT health_pass.signing_key_add('fr', pg_read_binary_file('} . "$out/es.der" . q{'), 'file:es.pem');
SELECT health_pass.grant_signing('signer', 'fr');});
for my $c (
	[ q{BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT health_pass.signer_check('fr') IS NOT NULL; SELECT pg_sleep(3); SELECT health_pass.signer_check('fr') IS NOT NULL; COMMIT;},
	  'statements of one message in a REPEATABLE READ transaction' ],
	[ q{BEGIN; DECLARE c CURSOR FOR SELECT health_pass.signer_check('fr') IS NOT NULL FROM generate_series(1, 10); FETCH 1 FROM c; SELECT pg_sleep(3); FETCH 1 FROM c; COMMIT;},
	  'FETCHes of one cursor' ])
{
	my ($sql, $what) = @$c;
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start([ $node->installed_command('psql'), '-XAtq', '-d',
		$node->connstr('postgres') . ' user=signer', '-c', $sql ], '>', \$o, '2>', \$e);
	$node->poll_query_until('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'signer' AND wait_event = 'PgSleep'}, '1')
	  or die 'the signer never slept';
	is($node->safe_psql('postgres', "SELECT health_pass.revoke_signing('signer', 'fr')"), 't', "revoked during $what");
	$h->finish;
	like($e, qr/permission denied to sign with key "fr"/,
		"$what: the statement after the revoke is refused");
	like($o, qr/^t\n/, "$what: the one before it signed");
	$node->safe_psql('postgres', "SELECT health_pass.grant_signing('signer', 'fr')");
}

done_testing();
