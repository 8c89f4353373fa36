# Signing keys in PEM files (issue 14 section 1, docs/design/signing.md):
#   1. signing_key_add: kid as trust_add() derives it, alg by key type, the
#      DSC's facts; a private key that is not the certificate's is refused;
#   2. signatures: randomized messages signed ES256 and PS256 verify with the
#      certificate's key in Python's cryptography (an independent verifier);
#   3. key files: a name that escapes health_pass.key_directory ("..",
#      absolute, a symbolic link out), a file others may read, a missing file,
#      a file that is not a key, an encrypted key, an unsupported key, no
#      directory set: each refused with its stage and SQLSTATE, on add and on
#      the next use of a key already added;
#   4. grants: an ungranted role is refused, a granted one signs, members
#      that inherit sign, NOINHERIT members and renamed roles do not, a
#      revoked grant is refused on the next call of the same session;
#   5. the private key never appears in a SQL value, an error, the server
#      log, pg_settings or a dump; a dump restores the keys and grants.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use File::Path qw(make_path);

my $node = PostgreSQL::Test::Cluster->new('signing_pem');
$node->init;
my $dir  = $node->basedir . '/keys';
my $out  = $node->basedir . '/outside';
make_path($dir, $out);
chmod 0700, $dir;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'health_pass'
health_pass.key_directory = '$dir'
log_statement = 'all'
log_min_messages = debug1
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION health_pass');

sub run { system(@_) == 0 or die "failed: @_"; }
sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!"; local $/; my $s = <$fh>; close $fh; return $s; }
sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $s; close $fh; }

# key NAME, OPENSSL GENPKEY ARGS..., then a self-signed DSC NAME.der (C=FR,
# the DCC vaccination extended key usage when $eku)
sub make_key
{
	my ($name, $subj, $eku, @gen) = @_;
	run('openssl', 'genpkey', @gen, '-out', "$dir/$name.pem", '-quiet') if @gen;
	chmod 0600, "$dir/$name.pem";
	run('openssl', 'req', '-new', '-x509', '-key', "$dir/$name.pem", '-subj', $subj,
		'-days', '365', '-outform', 'DER', '-out', "$out/$name.der",
		($eku ? ('-addext', "extendedKeyUsage=$eku") : ()));
}
make_key('es', '/C=FR/CN=DSC ES256', '1.3.6.1.4.1.1847.2021.1.2',
	'-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256');
make_key('rsa', '/C=DE/CN=DSC PS256', undef,
	'-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048');
make_key('es2', '/C=FR/CN=other', undef,
	'-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256');
make_key('p384', '/C=FR/CN=P-384', undef,
	'-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384');
make_key('rsa1k', '/C=FR/CN=RSA 1024', undef,
	'-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024');

sub cert { return "pg_read_binary_file('$out/$_[0].der')"; }

# psql as ROLE (undef: the superuser): stdout and stderr together
sub sq
{
	my ($sql, $role) = @_;
	my ($ret, $o, $e) = $node->psql('postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ], on_error_stop => 0,
		defined $role ? (connstr => $node->connstr('postgres') . " user=$role") : ());
	return join("\n", grep { defined $_ && $_ ne '' } $o, $e);
}

# 1. signing_key_add ------------------------------------------------------
is(sq("SELECT health_pass.signing_key_add('fr', " . cert('es') . ", 'file:es.pem') = "
	  . "substr(sha256(" . cert('es') . "), 1, 8)"), 't',
	'ES256 key added; its kid is the first 8 bytes of SHA-256 of the DSC');
is(sq("SELECT health_pass.signing_key_add('de', " . cert('rsa') . ", 'file:rsa.pem') = "
	  . "health_pass.trust_add(" . cert('rsa') . ")"), 't',
	'PS256 key added; its kid is what trust_add returns');
is(sq("SELECT string_agg(concat_ws(' ', name, alg, country, key_usage::text, key_ref), ', ' ORDER BY id) FROM health_pass.signing_key"),
	'fr ES256 FR {vaccination} file:es.pem, de PS256 DE {test,vaccination,recovery} file:rsa.pem',
	'the row holds alg by key type, the subject country, the DCC key usage (none: all kinds)');
like(sq("SELECT health_pass.signing_key_add('x', " . cert('es') . ", 'file:es2.pem')"),
	qr/YHK02: key: the private key of signing key "x" does not match its certificate/,
	'a private key that is not the certificate\'s: refused (YHK02)');
like(sq("SELECT health_pass.signing_key_add('x', " . cert('es') . ", 'file:rsa.pem')"),
	qr/YHK02: key: the private key of signing key "x" is not of the certificate's key type/,
	'a private key of another type: refused (YHK02)');
like(sq("SELECT health_pass.signing_key_add('x', " . cert('p384') . ", 'file:p384.pem')"),
	qr/0A000: key: the certificate holds an EC key on curve secp384r1/,
	'a P-384 key: refused as unsupported (0A000)');
like(sq("SELECT health_pass.signing_key_add('x', " . cert('rsa1k') . ", 'file:rsa1k.pem')"),
	qr/0A000: key: the certificate holds an RSA key of 1024 bits/,
	'RSA 1024: refused as unsupported (0A000)');
like(sq("SELECT health_pass.signing_key_add('x', '\\x3082'::bytea, 'file:es.pem')"),
	qr/22023: key: the certificate is not a DER-encoded X.509 certificate/,
	'not a certificate: refused (22023)');
like(sq("SELECT health_pass.signing_key_add('fr', " . cert('es') . ", 'file:es.pem')"),
	qr/23505: key: a signing key named "fr" already exists/, 'a name is unique (23505, at the key stage)');
like(sq("INSERT INTO health_pass.signing_key (name, certificate, key_ref) VALUES ('y', " . cert('es') . ", 'ldap:x')"),
	qr/22023: key: key_ref must be file:NAME or a pkcs11: URI/,
	'a plain INSERT is checked too: key_ref form');

# 2. randomized signatures, verified independently ------------------------
for my $k (['fr', 'es', 300], ['de', 'rsa', 100])
{
	my ($name, $file, $n) = @$k;
	my $rows = sq(qq{SELECT encode(d, 'hex') || '|' || encode(health_pass._sign('$name', d), 'hex')
	  FROM (SELECT CASE WHEN i = 1 THEN ''::bytea
	                    ELSE decode(string_agg(md5(random()::text || i), '' ), 'hex') END AS d
	          FROM generate_series(1, $n) i, generate_series(1, 1 + (random() * 60)::int) j
	         GROUP BY i) s});
	my $res;
	IPC::Run::run([ '/usr/bin/python3', "$FindBin::RealBin/../sig_check.py", "$out/$file.der" ],
		'<', \$rows, '>', \$res);
	chomp $res;
	is($res, "$n 0", "$name: $n signatures of random messages verify with the DSC in Python's cryptography");
}
my $sig2 = sq("SELECT count(DISTINCT health_pass._sign('fr', 'same')) FROM generate_series(1, 20)");
is($sig2, '20', 'ECDSA signatures of the same message differ (fresh nonces)');

# 3. key files ------------------------------------------------------------
# the files refused below
run('cp', "$dir/es.pem", "$out/es.pem");
chmod 0600, "$out/es.pem";
symlink("$out/es.pem", "$dir/link.pem") or die;
run('cp', "$dir/es.pem", "$dir/open.pem");
chmod 0644, "$dir/open.pem";
spew("$dir/notakey.pem", "SECRET-CONTENT-7731 not a key\n");
chmod 0600, "$dir/notakey.pem";
run('openssl', 'pkey', '-in', "$dir/es.pem", '-aes256', '-passout', 'pass:s3cr3t-9', '-out', "$dir/enc.pem");
chmod 0600, "$dir/enc.pem";
mkdir "$dir/sub", 0700;
for my $c (
	[ 'file:../outside/es.pem', qr/22023: key: a file: key_ref names a file relative/, '".." in the name' ],
	[ "file:$dir/es.pem", qr/22023: key: a file: key_ref names a file relative/, 'an absolute name' ],
	[ 'file:a/../es.pem', qr/22023: key: a file: key_ref names a file relative/, '".." inside the name' ],
	[ 'file:', qr/22023/, 'an empty name' ],
	[ 'file:missing.pem', qr/58P01: key: the key file of signing key "x" does not exist/, 'a missing file' ],
	[ 'file:link.pem', qr/YHK01: key: the key file of signing key "x" resolves outside health_pass.key_directory/, 'a symbolic link out of the directory' ],
	[ 'file:open.pem', qr/YHK01: key: the key file of signing key "x" must be owned by the server's OS user and readable by no one else/, 'a file group and others may read' ],
	[ 'file:notakey.pem', qr/YHK03: key: the key file of signing key "x" holds no unencrypted PEM private key/, 'a file that is not a key' ],
	[ 'file:enc.pem', qr/YHK03: key: the key file of signing key "x" holds no unencrypted PEM private key/, 'an encrypted key (no passphrase prompt)' ],
	[ 'file:sub', qr/YHK03: key: the key file of signing key "x" is not a regular file/, 'a directory' ],)
{
	my ($ref, $re, $what) = @$c;
	my $r = sq("SELECT health_pass.signing_key_add('x', " . cert('es') . ", '$ref')");
	like($r, $re, "add refuses $what");
	unlike($r, qr/SECRET-CONTENT|BEGIN|PRIVATE/, "... and the error shows no file content ($what)");
}
is(sq("SELECT count(*) FROM health_pass.signing_key"), '2', 'nothing refused was added');

# a key already added: its file made readable by others is refused from the
# next call on (the backend's cache opens the file every time), and a file
# replaced by another key is proven again and refused
like(sq("SELECT health_pass.signer_check('fr') = kid FROM health_pass.signing_key WHERE name = 'fr';
	\\! chmod 640 $dir/es.pem
	SELECT health_pass.signer_check('fr');
	\\! chmod 600 $dir/es.pem
	SELECT 'again', health_pass.signer_check('fr') IS NOT NULL;"),
	qr/^t\nagain\|t\n.*YHK01: key: the key file of signing key "fr" must be owned/s,
	'a key file made group-readable is refused on the next call of the same session, and used again once fixed');
run('cp', "$dir/es.pem", "$out/es.keep");
run('cp', "$dir/es2.pem", "$dir/es.pem");
like(sq("SELECT health_pass.signer_check('fr')"),
	qr/YHK02: key: the private key of signing key "fr" does not match its certificate/,
	'a key file replaced by another key: refused (proven again)');
run('cp', "$out/es.keep", "$dir/es.pem");
like(sq("SELECT health_pass.signer_check('fr') IS NOT NULL"), qr/^t$/, 'the right key back: signs again');

chmod 0770, $dir;
like(sq("SELECT health_pass.signer_check('fr')"),
	qr/YHK01: key: health_pass.key_directory must be owned by the server's OS user and not writable by others/,
	'a key directory others may write: refused');
chmod 0700, $dir;

# 4. grants ----------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE ROLE signer LOGIN;
CREATE ROLE clerk LOGIN IN ROLE signer;
CREATE ROLE noinherit LOGIN NOINHERIT IN ROLE signer;
CREATE ROLE other LOGIN;
});
like(sq("SELECT health_pass.signer_check('fr')", 'signer'),
	qr/42501: key: permission denied to sign with key "fr"/, 'ungranted role: refused (42501)');
like(sq("SELECT health_pass.signer_check('nosuch')", 'signer'),
	qr/42704: key: signing key "nosuch" does not exist/, 'unknown key: 42704');
like(sq("SELECT health_pass.grant_signing('signer', 'fr')", 'signer'),
	qr/42501: permission denied for function grant_signing/, 'a non-superuser cannot grant');
sq("SELECT health_pass.grant_signing('signer', 'fr')");
is(sq("SELECT health_pass.signer_check('fr') = kid FROM health_pass.signing_key WHERE name = 'fr'", 'signer'),
	't', 'granted role: signs (signer_check returns the kid)');
like(sq("SELECT health_pass.signer_check('de')", 'signer'),
	qr/42501/, 'a grant is for one key');
is(sq("SELECT health_pass.signer_check('fr') IS NOT NULL", 'clerk'), 't',
	'a member that inherits the granted role signs');
like(sq("SELECT health_pass.signer_check('fr')", 'noinherit'), qr/42501/,
	'a NOINHERIT member does not');
is(sq("SET ROLE signer; SELECT health_pass.signer_check('fr') IS NOT NULL", 'noinherit'), 't',
	'... until it SETs ROLE to the granted role');
like(sq("SELECT health_pass._sign('fr', 'x')", 'signer'), qr/42501/,
	'a granted role cannot sign raw bytes (_sign is for superusers)');
# _sign() signs no COSE signing input: a pass is signed only through issue(),
# which checks it and writes its audit record (a superuser with an HSM key
# could otherwise make pass signatures that no record names)
my $sigstr = '846a5369676e61747572653143a1012640' . '4a' . unpack('H*', '{"x":"y"}!');
like(sq("SELECT health_pass._sign('fr', '\\x$sigstr')"),
	qr/22023: sign: _sign\(\) does not sign a COSE signing input/,
	'a superuser cannot sign a COSE Sig_structure ("Signature1") with _sign (22023)');
like(sq("SELECT health_pass._sign('fr', '\\x85695369676e617475726543a10126')"), qr/22023/,
	'... nor a COSE_Sign one ("Signature")');
like(sq("SELECT health_pass._sign('fr', '\\x8570436f756e7465725369676e6174757265')"), qr/22023/,
	'... nor a countersignature\'s ("CounterSignature")');
is(sq("SELECT length(health_pass._sign('fr', '\\x846a5369676e6174757265'))"), '64',
	'... while other bytes, even a prefix of one, sign as before');
like(sq("SELECT key_ref FROM health_pass.signing_key", 'signer'), qr/42501: permission denied/,
	'signers cannot read key_ref');
is(sq("SELECT name FROM health_pass.signing_key WHERE name = 'fr'", 'signer'), 'fr',
	'signers see which keys exist');
like(sq("SELECT health_pass.signing_key_add('z', " . cert('es2') . ", 'file:es2.pem')", 'signer'),
	qr/42501/, 'a non-superuser cannot add a key');
$node->safe_psql('postgres', q{GRANT EXECUTE ON FUNCTION health_pass.signing_key_add(text, bytea, text),
	health_pass._signing_key_prove(text, bytea, text) TO other; GRANT INSERT ON health_pass.signing_key TO other});
my $es2hex = unpack('H*', slurp("$out/es2.der"));
like(sq("SELECT health_pass.signing_key_add('z', '\\x$es2hex', 'file:es2.pem')", 'other'),
	qr/42501: key: only a superuser may add a signing key/, '... even when granted EXECUTE');
# revoked: refused on the next call of the same session
like(sq("SELECT health_pass.signer_check('fr') IS NOT NULL;
	RESET ROLE; SELECT health_pass.revoke_signing('signer', 'fr'); SET ROLE signer;
	SELECT health_pass.signer_check('fr');
	RESET ROLE; SELECT health_pass.grant_signing('signer', 'fr'); SET ROLE signer;
	SELECT 'back', health_pass.signer_check('fr') IS NOT NULL;", undef),
	qr/^t\nt\n\nback\|t\n.*42501: key: permission denied to sign with key "fr"/s,
	'a revoked grant is refused on the next call of the same session; granted again, it signs');
# a renamed role loses the grant; back to its name, it has it again
sq("ALTER ROLE signer RENAME TO signer2");
like(sq("SELECT health_pass.signer_check('fr')", 'signer2'), qr/42501/,
	'a renamed role loses its grant');
sq("ALTER ROLE signer2 RENAME TO signer");
is(sq("SELECT health_pass.signer_check('fr') IS NOT NULL", 'signer'), 't', '... and has it back under its name');
is(sq("SELECT health_pass.revoke_signing('other', 'fr')"), 'f', 'revoking what was not granted: false');

# 5. secrets --------------------------------------------------------------
like(sq("SHOW health_pass.key_directory", 'signer'), qr/42501/,
	'key_directory: hidden from non-superusers (SHOW)');
is(sq("SELECT count(*) FROM pg_settings WHERE name LIKE 'health_pass.%key%' OR name LIKE 'health_pass.pkcs11%'", 'signer'),
	'0', '... and from pg_settings');
like(sq("SET health_pass.key_directory = '/tmp'"), qr/55P02|cannot be changed now/,
	'key_directory cannot be set in a session, even by a superuser');

my @secret;
for my $f ('es', 'rsa', 'es2')
{
	my $pem = slurp("$dir/$f.pem");
	push @secret, grep { length($_) >= 40 } map { s/\s+//gr } grep { !/-----/ } split /\n/, $pem;
	my $hex = `openssl pkey -in $dir/$f.pem -text -noout 2>/dev/null`;
	my ($priv) = $hex =~ /priv(?:ate)?(?:Exponent)?:\s*\n((?:\s+[0-9a-f:]+\n)+)/;
	push @secret, join('', ($priv // '') =~ /([0-9a-f]{2})/g) if $priv;
}
push @secret, 'SECRET-CONTENT-7731', 's3cr3t-9';
ok(@secret >= 10, 'collected ' . scalar(@secret) . ' secret strings (PEM lines, private scalars)');
# the trust list is the DBA's too: a revoked DSC among its rows (0.8.0's dump
# lost them all)
$node->safe_psql('postgres', qq{
SELECT health_pass.trust_add(@{[cert('es')]});
SELECT health_pass.trust_add(@{[cert('rsa')]});
UPDATE health_pass.trust_list SET revoked_at = '2026-11-01 00:00+00', revocation_reason = 'key leaked'
 WHERE country = 'DE';
});
my $trust_rows = q{SELECT string_agg(concat_ws(' ', id, encode(kid, 'hex'), country, encode(fingerprint, 'hex'),
  valid_from, valid_until, key_usage, revoked_at, revocation_reason), ',' ORDER BY id) FROM health_pass.trust_list};
my $trust_before = $node->safe_psql('postgres', $trust_rows);
my $dump = '';
IPC::Run::run([ $node->installed_command('pg_dump'), '-d', $node->connstr('postgres') ], '>', \$dump)
  or die 'pg_dump failed';
like($dump, qr/file:es\.pem/, 'the dump holds the key references');
my $log = slurp($node->logfile);
my $activity = sq("SELECT string_agg(coalesce(query, ''), ' ') FROM pg_stat_activity");
my $values = sq("SELECT string_agg(t::text, ' ') FROM health_pass.signing_key t") . sq("SELECT string_agg(t::text, ' ') FROM health_pass.signing_grant t");
for my $where ([ 'the server log', $log ], [ 'pg_dump', $dump ], [ 'pg_stat_activity', $activity ], [ 'the rows', $values ])
{
	my ($what, $text) = @$where;
	my $hexonly = lc($text) =~ s/[^0-9a-f]//gr;
	my @found = grep { index($text, $_) >= 0 || (/^[0-9a-f]{40,}$/ && index($hexonly, $_) >= 0) } @secret;
	is(scalar(@found), 0, "no private key material or file content in $what");
}

# a dump restores the keys and grants; the restored keys sign
$node->safe_psql('postgres', 'CREATE DATABASE restored');
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $node->installed_command('psql'), '-X', '-q', '-d', $node->connstr('restored') ],
		'<', \$dump, '>', \$o, '2>', \$e);
	unlike($e, qr/ERROR/, 'the dump restores without error') or diag($e);
}
is($node->safe_psql('restored', q{SELECT string_agg(s.name || ':' || g.role::text, ',') FROM health_pass.signing_key s
	JOIN health_pass.signing_grant g ON g.key_id = s.id}), 'fr:signer', 'restored: the keys and the grant');
is(sq("\\c restored signer\nSELECT health_pass.signer_check('fr') IS NOT NULL"), 't',
	'restored: the granted role signs');
is($node->safe_psql('restored', $trust_rows), $trust_before,
	'restored: the trust list, row for row, the revoked DSC still revoked');
is($node->safe_psql('restored', qq{SELECT health_pass.trust_add(@{[cert('es2')]}) IS NOT NULL;
  SELECT count(DISTINCT id) FROM health_pass.trust_list}), "t\n3",
	'restored: the trust list takes a new DSC (its identity sequence was restored too)');

# no directory set: refused, no crash
$node->safe_psql('postgres', "ALTER SYSTEM SET health_pass.key_directory = ''; SELECT pg_reload_conf()");
$node->poll_query_until('postgres', "SELECT current_setting('health_pass.key_directory') = ''", 't');
like(sq("SELECT health_pass.signer_check('fr')"),
	qr/55000: key: health_pass.key_directory is not set/, 'no key directory: refused (55000)');
$node->safe_psql('postgres', "ALTER SYSTEM SET health_pass.key_directory = 'relative/dir'; SELECT pg_reload_conf()");
$node->poll_query_until('postgres', "SELECT current_setting('health_pass.key_directory') <> ''", 't');
like(sq("SELECT health_pass.signer_check('fr')"),
	qr/55000: key: health_pass.key_directory is not an absolute path/, 'a relative key directory: refused');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');

$node->stop;
done_testing();
