# Signing keys in a PKCS#11 token (issue 14 section 1, docs/design/signing.md),
# with SoftHSM2 as the HSM on a token this test creates:
#   1. signing_key_add with pkcs11: URIs for an EC P-256 and an RSA key; the
#      kid is trust_add()'s;
#   2. randomized messages signed through C_Sign (CKM_ECDSA, CKM_RSA_PKCS_PSS)
#      verify with the certificate's key in Python's cryptography;
#   3. URIs carrying a PIN or a module, or naming no key, are refused; so are
#      a missing token or object, a key that is not the certificate's, a key
#      on another curve;
#   4. the PIN: a wrong one fails with its return code and is not tried
#      again, by that backend or any other (a mark in shared memory), until
#      the PIN file changes; six backends at once after it changed: one
#      tries; no PIN file, a PIN file others may read; the PIN never in an
#      error, the log or a dump;
#   5. the module: unset, not a shared library, not a PKCS#11 module: errors,
#      never a crash;
#   6. grants apply as for files; many backends sign at once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use File::Path qw(make_path);

my $module = '/usr/lib/softhsm/libsofthsm2.so';
plan skip_all => "SoftHSM2 is not installed ($module)" unless -e $module;

my $node = PostgreSQL::Test::Cluster->new('signing_pkcs11');
$node->init;
my $base = $node->basedir;
my $dir  = "$base/keys";
my $out  = "$base/certs";
make_path($dir, $out, "$base/tokens");
chmod 0700, $dir;

sub run { system(@_) == 0 or die "failed: @_"; }
sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!"; local $/; my $s = <$fh>; close $fh; return $s; }
sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $s; close $fh; }

# the token: SOFTHSM2_CONF set before the server starts, so backends see it
my $pin = '73915528';
spew("$base/softhsm2.conf", "directories.tokendir = $base/tokens\nobjectstore.backend = file\nlog.level = ERROR\n");
$ENV{SOFTHSM2_CONF} = "$base/softhsm2.conf";
run("softhsm2-util --init-token --free --label registry --pin $pin --so-pin 24681357 >/dev/null");

# KEY NAME, SUBJECT, GENPKEY ARGS: a key imported into the token (label
# dsc-NAME, id $id), its self-signed DSC in $out/NAME.der; the PEM is deleted
my $id = 0;
sub token_key
{
	my ($name, $subj, @gen) = @_;
	my $tmp = "$base/$name.pem";
	run('openssl', 'genpkey', @gen, '-out', $tmp, '-quiet');
	run('openssl', 'req', '-new', '-x509', '-key', $tmp, '-subj', $subj, '-days', '365',
		'-outform', 'DER', '-out', "$out/$name.der");
	run('openssl', 'pkcs8', '-topk8', '-nocrypt', '-in', $tmp, '-out', "$base/$name.pk8");
	$id++;
	run("softhsm2-util --import $base/$name.pk8 --token registry --label dsc-$name --id 0$id --pin $pin >/dev/null");
	my $pem = slurp($tmp);
	unlink $tmp, "$base/$name.pk8";
	return $pem;
}
my @pems;
push @pems, token_key('es', '/C=FR/CN=HSM ES256', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256');
push @pems, token_key('rsa', '/C=DE/CN=HSM PS256', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048');
push @pems, token_key('p384', '/C=FR/CN=HSM P-384', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384');
# a DSC whose key is nowhere in the token
run('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$base/stray.pem", '-quiet');
run('openssl', 'req', '-new', '-x509', '-key', "$base/stray.pem", '-subj', '/C=FR/CN=stray', '-days', '365',
	'-outform', 'DER', '-out', "$out/stray.der");

spew("$dir/pin", "$pin\n");
chmod 0600, "$dir/pin";
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'health_pass'
health_pass.key_directory = '$dir'
health_pass.pkcs11_module = '$module'
health_pass.pkcs11_pin_file = 'pin'
log_statement = 'all'
max_connections = 40
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION health_pass');

sub cert { return "pg_read_binary_file('$out/$_[0].der')"; }
sub sq
{
	my ($sql, $role) = @_;
	my ($ret, $o, $e) = $node->psql('postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ], on_error_stop => 0,
		defined $role ? (connstr => $node->connstr('postgres') . " user=$role") : ());
	return join("\n", grep { defined $_ && $_ ne '' } $o, $e);
}
sub reconf
{
	my ($setting, $value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $setting = '$value'; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres', "SELECT current_setting('$setting') = '$value'", 't')
	  or die "$setting not reloaded";
}

# 1. keys ------------------------------------------------------------------
is(sq("SELECT health_pass.signing_key_add('fr', " . cert('es') . ", 'pkcs11:token=registry;object=dsc-es;type=private') = "
	  . "health_pass.trust_add(" . cert('es') . ")"), 't',
	'ES256 key in the token added (object=, type=private); its kid is trust_add\'s');
is(sq("SELECT health_pass.signing_key_add('de', " . cert('rsa') . ", 'pkcs11:token=registry;id=%02') = "
	  . "substr(sha256(" . cert('rsa') . "), 1, 8)"), 't',
	'PS256 key in the token added (id= percent-encoded)');
is(sq("SELECT string_agg(name || ' ' || alg || ' ' || country, ', ' ORDER BY id) FROM health_pass.signing_key"),
	'fr ES256 FR, de PS256 DE', 'alg by key type, country from the DSC');

# 2. randomized signatures -------------------------------------------------
for my $k ([ 'fr', 'es', 200 ], [ 'de', 'rsa', 60 ])
{
	my ($name, $file, $n) = @$k;
	my $rows = sq(qq{SELECT encode(d, 'hex') || '|' || encode(health_pass._sign('$name', d), 'hex')
	  FROM (SELECT CASE WHEN i = 1 THEN ''::bytea
	                    ELSE decode(string_agg(md5(random()::text || i), ''), 'hex') END AS d
	          FROM generate_series(1, $n) i, generate_series(1, 1 + (random() * 60)::int) j
	         GROUP BY i) s});
	my $res;
	IPC::Run::run([ '/usr/bin/python3', "$FindBin::RealBin/../sig_check.py", "$out/$file.der" ], '<', \$rows, '>', \$res);
	chomp $res;
	is($res, "$n 0", "$name: $n signatures made in the token verify with the DSC in Python's cryptography");
}

# 3. URIs and objects -------------------------------------------------------
for my $c (
	[ 'pkcs11:token=registry;object=dsc-es?pin-value=' . $pin, qr/22023: key: invalid pkcs11: key_ref: a PIN \(pin-value, pin-source\) is never taken from the URI/, 'pin-value in the query' ],
	[ 'pkcs11:token=registry;object=dsc-es;pin-value=' . $pin, qr/22023: key: invalid pkcs11: key_ref: a PIN/, 'pin-value in the path' ],
	[ "pkcs11:token=registry;object=dsc-es?pin-source=file:$dir/pin", qr/22023: key: invalid pkcs11: key_ref: a PIN/, 'pin-source' ],
	[ "pkcs11:token=registry;object=dsc-es?module-path=$module", qr/22023: key: invalid pkcs11: key_ref: the module \(module-path, module-name\)/, 'module-path' ],
	[ 'pkcs11:token=registry;object=dsc-es?module-name=softhsm2', qr/22023: key: invalid pkcs11: key_ref: the module/, 'module-name' ],
	[ 'pkcs11:token=registry;object=dsc-es;type=public', qr/22023: key: invalid pkcs11: key_ref: type must be private/, 'type=public' ],
	[ 'pkcs11:token=registry', qr/22023: key: invalid pkcs11: key_ref: it names no key/, 'no object and no id' ],
	[ 'pkcs11:token=registry;object=dsc-es;colour=red', qr/22023: key: invalid pkcs11: key_ref: unknown attribute/, 'an unknown attribute' ],
	[ 'pkcs11:token=registry;object=dsc-es;object=x', qr/22023: key: invalid pkcs11: key_ref: an attribute is repeated/, 'a repeated attribute' ],
	[ 'pkcs11:token=registry;id=%0', qr/22023: key: invalid pkcs11: key_ref: bad percent-encoding/, 'bad percent-encoding' ],
	[ 'pkcs11:token=nosuch;object=dsc-es', qr/YHK03: key: no PKCS#11 token matches the key_ref of signing key "x"/, 'a missing token' ],
	[ 'pkcs11:token=registry;object=nosuch', qr/YHK03: key: no private key object on the token matches/, 'a missing object' ],
	[ 'pkcs11:token=registry;object=dsc-rsa', qr/YHK02: key: the private key of signing key "x" is not of the certificate's key type/, 'an RSA object for an EC DSC' ],
	[ 'pkcs11:token=registry;object=dsc-p384', qr/0A000: key: the private key of signing key "x" is not on curve P-256/, 'a P-384 object for a P-256 DSC' ],)
{
	my ($ref, $re, $what) = @$c;
	my $r = sq("SELECT health_pass.signing_key_add('x', " . cert('es') . ", '$ref')");
	like($r, $re, "refused: $what");
}
like(sq("SELECT health_pass.signing_key_add('x', " . cert('stray') . ", 'pkcs11:token=registry;object=dsc-es')"),
	qr/YHK02: key: the private key of signing key "x" does not match its certificate/,
	'refused: a token key that is not the certificate\'s (challenge fails)');
like(sq("SELECT health_pass.signing_key_add('x', " . cert('p384') . ", 'pkcs11:token=registry;object=dsc-p384')"),
	qr/0A000: key: the certificate holds an EC key on curve secp384r1/, 'refused: a P-384 DSC');
is(sq("SELECT count(*) FROM health_pass.signing_key"), '2', 'nothing refused was added');

# 4. the PIN ---------------------------------------------------------------
spew("$dir/pin", "11112222\n");
my $r = sq("SELECT health_pass.signer_check('fr'); SELECT health_pass.signer_check('fr');");
like($r, qr/YHK03: key: login to the token of signing key "fr" failed \(CKR_PIN_INCORRECT\)/,
	'a wrong PIN: the login fails with its return code (YHK03)');
like($r, qr/YHK04: key: login to the token of signing key "fr" failed before with this PIN file \(CKR_PIN_INCORRECT\); not tried again by any backend until the file changes/,
	'... and is not tried again in that backend while the file is the same (YHK04)');
unlike($r, qr/11112222|$pin/, '... the error holds no PIN');

# 4b. the wrong PIN across backends: a token locks its PIN after a few
# failures, so a PIN that failed once is not tried by any other backend
# (a new connection each) until the PIN file changes
my @again = map { sq("SELECT health_pass.signer_check('fr')") } 1 .. 3;
is(scalar(grep { /YHK04: key: login to the token of signing key "fr" failed before with this PIN file \(CKR_PIN_INCORRECT\); not tried again by any backend until the file changes/ } @again),
	3, 'three new backends: none tries the wrong PIN again (YHK04)');
is(scalar(grep { /CKR_PIN_INCORRECT\)$|failed \(CKR_PIN/m } @again), 0, '... none got a login answer from the token');
# the file changes (same wrong PIN written again: another modification time):
# one new attempt, by one backend, and the others refuse again
sleep 1;
spew("$dir/pin", "11112222\n");
my @par;
{
	my @h;
	for my $i (1 .. 6)
	{
		my ($o, $e) = ('', '');
		push @h, [ IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-v', 'VERBOSITY=verbose',
			'-c', "SELECT health_pass.signer_check('fr')" ], '>', \$o, '2>', \$e), \$o, \$e ];
	}
	for my $h (@h) { $h->[0]->finish; push @par, ${ $h->[1] } . ${ $h->[2] }; }
}
is(scalar(grep { /YHK03: key: login to the token of signing key "fr" failed \(CKR_PIN_INCORRECT\)/ } @par), 1,
	'the PIN file changed, six backends at once: exactly one logs in with it and fails')
  or diag(join("\n--\n", @par));
is(scalar(grep { /YHK04: / } @par), 5, '... the five others refuse without trying it (YHK04)')
  or diag(join("\n--\n", @par));
unlike(join('', @par), qr/11112222|$pin/, '... no error holds a PIN');
spew("$dir/pin", "$pin\n");
is(sq("SELECT health_pass.signer_check('fr') IS NOT NULL"), 't', 'the right PIN back: signs');
chmod 0644, "$dir/pin";
like(sq("SELECT health_pass.signer_check('fr')"),
	qr/YHK01: key: the PIN file of signing key "fr" must be owned by the server's OS user and readable by no one else/,
	'a PIN file others may read: refused');
chmod 0600, "$dir/pin";
reconf('health_pass.pkcs11_pin_file', '');
like(sq("SELECT health_pass.signer_check('fr')"),
	qr/55000: key: the token of signing key "fr" needs a PIN: set health_pass.pkcs11_pin_file/,
	'no PIN file: refused (55000)');
reconf('health_pass.pkcs11_pin_file', '../pin');
like(sq("SELECT health_pass.signer_check('fr')"), qr/YHK01: key: the PIN file of signing key "fr" must be named relative/,
	'a PIN file outside key_directory: refused');
reconf('health_pass.pkcs11_pin_file', 'pin');

# 5. the module ------------------------------------------------------------
my ($libz) = grep { -e $_ } ('/usr/lib/x86_64-linux-gnu/libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1', glob('/usr/lib/*/libz.so.1'));
spew("$base/notalib.so", "not a library\n");
for my $c (
	[ '', qr/55000: key: health_pass.pkcs11_module is not set/, 'no module set' ],
	[ "$base/missing.so", qr/YHK03: key: the PKCS#11 module \(health_pass.pkcs11_module\) cannot be loaded/, 'a missing module' ],
	[ "$base/notalib.so", qr/YHK03: key: the PKCS#11 module \(health_pass.pkcs11_module\) cannot be loaded/, 'a file that is not a shared library' ],
	($libz ? ([ $libz, qr/YHK03: key: health_pass.pkcs11_module is not a PKCS#11 module/, 'a shared library that is not a PKCS#11 module' ]) : ()),)
{
	my ($path, $re, $what) = @$c;
	reconf('health_pass.pkcs11_module', $path);
	like(sq("SELECT health_pass.signer_check('fr')"), $re, "$what: an error");
	unlike(sq("SELECT health_pass.signer_check('fr')"), qr/\Q$base\E/, "... that names no path ($what)");
}
reconf('health_pass.pkcs11_module', $module);
is(sq("SELECT health_pass.signer_check('fr') IS NOT NULL"), 't', 'the module back: signs');
ok(!$node->log_contains(qr/terminated by signal|server process .* was terminated/), 'no backend crashed');

# 6. grants and many backends ---------------------------------------------
$node->safe_psql('postgres', q{CREATE ROLE signer LOGIN; CREATE ROLE other LOGIN;
	SELECT health_pass.grant_signing('signer', 'fr'); SELECT health_pass.grant_signing('signer', 'de')});
is(sq("SELECT health_pass.signer_check('fr') = health_pass.signer_check('de')", 'signer'), 'f',
	'a granted role opens both token keys');
like(sq("SELECT health_pass.signer_check('fr')", 'other'), qr/42501: key: permission denied to sign with key "fr"/,
	'an ungranted role: refused');
$node->pgbench('-n -c 8 -j 4 -t 100', 0, [qr/processed: 800\/800/], [qr/^$/],
	'8 backends sign 100 times each through the token, no failure',
	{ 'sign' => q{SELECT length(health_pass._sign('fr', 'x'))} });

# the PIN and the keys appear nowhere
my $dump = '';
IPC::Run::run([ $node->installed_command('pg_dump'), '-d', $node->connstr('postgres') ], '>', \$dump)
  or die 'pg_dump failed';
like($dump, qr/pkcs11:token=registry;object=dsc-es;type=private/, 'the dump holds the URIs');
my @secret = ($pin, '11112222');
for my $pem (@pems)
{
	push @secret, grep { length($_) >= 40 } map { s/\s+//gr } grep { !/-----/ } split /\n/, $pem;
}
my $log = slurp($node->logfile);
for my $where ([ 'the server log', $log ], [ 'pg_dump', $dump ])
{
	my ($what, $text) = @$where;
	my @found = grep { index($text, $_) >= 0 } @secret;
	my @pin_found = grep { index($text, $_) >= 0 } ($pin, '11112222');
	# the PIN in the log is only the test's own refused URIs (log_statement)
	$text =~ s/pin-value=\Q$pin\E//g;
	@pin_found = grep { index($text, $_) >= 0 } ($pin, '11112222');
	is(scalar(@pin_found), 0, "no PIN in $what (but in statements that tried to pass one in a URI)");
	is(scalar(grep { index($text, $_) >= 0 } @secret[2 .. $#secret]), 0, "no key material in $what");
}
like(sq("SELECT count(*) FROM pg_settings WHERE name LIKE 'health_pass.pkcs11%'", 'signer'), qr/^0$/,
	'the PKCS#11 settings are hidden from non-superusers');

$node->stop;
ok(!$node->log_contains(qr/PANIC|terminated by signal/), 'clean shutdown, no crash');
done_testing();
