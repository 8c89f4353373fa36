# Signing keys in a PKCS#11 token (issue 14 section 1, docs/design/signing.md),
# with SoftHSM2 as the HSM on a token this test creates:
#   1. signing_key_add with pkcs11: URIs for an EC P-256 and an RSA key; the
#      kid is trust_add()'s;
#   2. randomized messages signed through C_Sign (CKM_ECDSA, CKM_RSA_PKCS_PSS)
#      verify with the certificate's key in Python's cryptography;
#   2b. issue() and issue_batch() with both token keys (their DSCs trusted):
#      check() is ok, test/issue_check.py (cbor2, cryptography) verifies every
#      pass, alg -7 with the EC key and -37 with the RSA key, PS256 as
#      RSASSA-PSS with MGF1-SHA256 and a salt of exactly 32 bytes (what
#      OpenSSL enforces given salt_length=32), and each issuance left its
#      issued record in the audit chain with the UVCI as subject;
#   2c. a module without CKM_SHA256_RSA_PKCS_PSS (test/pkcs11_no_hash_pss.c
#      over SoftHSM2): PS256 falls back to CKM_RSA_PKCS_PSS over the digest,
#      once refused per backend, and the passes verify as PS256;
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

# no skip: test/deps.sh installs softhsm2, so a missing module is a broken
# environment, and it fails here
my $module = '/usr/lib/softhsm/libsofthsm2.so';
ok(-e $module, "SoftHSM2's PKCS#11 module is installed ($module)")
  or BAIL_OUT("SoftHSM2 is not installed ($module missing): install softhsm2 (apt-get install softhsm2, or run test/deps.sh)");

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

# 2b. issue() and issue_batch() with the token keys ----------------------
# fr (ES256, already trusted) and de (PS256, RSA-2048, trusted here); random
# payloads as in test/t/080: n % 4 picks the key and the function
#   0: fr issue()   1: de issue()   2: fr issue_batch()   3: de issue_batch()
my $NI = 40;
my $py = '/usr/bin/python3';
my $check = "$FindBin::RealBin/../issue_check.py";
my $payloads;
IPC::Run::run([ $py, $check, 'gen', '71', $NI ], '>', \$payloads) or die 'issue_check.py gen failed';
spew("$base/payloads.jsonl", $payloads);
$node->safe_psql('postgres', qq{
SELECT health_pass.trust_add(@{[cert('rsa')]});
CREATE ROLE registrar LOGIN;
GRANT USAGE ON SCHEMA health_pass TO registrar;
SELECT health_pass.grant_signing('registrar', 'fr');
SELECT health_pass.grant_signing('registrar', 'de');
CREATE TABLE payloads (n serial, p jsonb, key text, how text);
COPY payloads (p) FROM '$base/payloads.jsonl' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02');
UPDATE payloads SET key = CASE WHEN n % 2 = 0 THEN 'fr' ELSE 'de' END,
                    how = CASE WHEN n % 4 < 2 THEN 'issue' ELSE 'batch' END;
UPDATE payloads SET p = jsonb_set(p, ARRAY[k.k, '0', 'ci'], to_jsonb(health_pass.uvci(upper(key), 'HSM')))
  FROM (SELECT n AS nn, (SELECT k FROM unnest(ARRAY['v', 't', 'r']) k WHERE p ? k) AS k FROM payloads) k
 WHERE k.nn = n;
CREATE TABLE issued (n int, key text, how text, p health_pass.pass, at timestamptz);
GRANT SELECT ON payloads TO registrar;
GRANT INSERT ON issued TO registrar;
});
is($node->safe_psql('postgres', q{SELECT string_agg(key || ' ' || how || ' ' || c, ', ' ORDER BY key, how) FROM
	(SELECT key, how, count(*) c FROM payloads
	  WHERE (coalesce(p -> 'v', p -> 't', p -> 'r') -> 0 ->> 'ci') LIKE 'URN:UVCI:01:' || upper(key) || ':HSM/%'
	  GROUP BY 1, 2) s}),
	'de batch 10, de issue 10, fr batch 10, fr issue 10',
	"$NI random payloads (seed 71), each with a UVCI of its key's country");
is(sq(q{INSERT INTO issued
  SELECT n, key, how, health_pass.issue(p, key, '90 days', at), at
    FROM payloads, (SELECT date_trunc('second', now()) + interval '0.7 s' AS at) x
   WHERE how = 'issue'}, 'registrar'), '', 'registrar issues 10 passes with each token key through issue()');
is(sq(q{INSERT INTO issued
  SELECT s.ns[b.o], s.key, 'batch', b.p, s.at
    FROM (SELECT key, array_agg(p ORDER BY n) AS ps, array_agg(n ORDER BY n) AS ns,
                 date_trunc('second', now()) + interval '0.7 s' AS at
            FROM payloads WHERE how = 'batch' GROUP BY key) s,
         LATERAL health_pass.issue_batch(s.ps, s.key, '90 days', s.at) WITH ORDINALITY b(p, o)}, 'registrar'),
	'', '... and 10 with each through issue_batch()');
is($node->safe_psql('postgres', q{SELECT string_agg(key || ' ' || how || ' ' || a || ' ' || c, ', ' ORDER BY key, how) FROM
	(SELECT key, how, health_pass.alg(p) a, count(*) c FROM issued GROUP BY 1, 2, 3) s}),
	'de batch PS256 10, de issue PS256 10, fr batch ES256 10, fr issue ES256 10',
	'every pass issued: PS256 with the RSA token key, ES256 with the EC one');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT (health_pass.check(p)).reason::text, ', ') FROM issued}),
	'ok', 'check() of every pass issued with a token key: ok');
is($node->safe_psql('postgres', q{SELECT count(*) FROM issued i JOIN payloads pl USING (n, key)
	WHERE (health_pass.check(i.p)).reason = 'ok'
	  AND health_pass.issuer(i.p) = upper(key)
	  AND health_pass.kid(i.p) = (SELECT kid FROM health_pass.signing_key WHERE name = key)
	  AND health_pass.issued_at(i.p) = date_trunc('second', at)
	  AND health_pass.expires_at(i.p) = date_trunc('second', at) + interval '90 days'}),
	$NI, '... each with its key\'s country, kid, iat and exp');

# the independent verifier, over each key's passes with that key's DSC only:
# the kid names the DSC, the alg is -7 (EC) or -37 (RSA), and PS256 verifies
# only as RSASSA-PSS, SHA-256, MGF1-SHA256, salt exactly 32 bytes
# the output of issue_check.py verify over the passes of key in table
# issued (joined to payloads) with the DSC in $out/FILE.der
sub verify_issued
{
	my ($issued, $payloads, $key, $file) = @_;
	my $lines = $node->safe_psql('postgres', qq{
SELECT json_build_object('payload', pl.p, 'pass', i.p::text,
                         'iat', floor(extract(epoch FROM i.at))::bigint,
                         'exp', floor(extract(epoch FROM i.at + interval '90 days'))::bigint)
  FROM $issued i JOIN $payloads pl USING (n, key) WHERE key = '$key' ORDER BY n});
	spew("$base/$issued-$key.jsonl", "$lines\n");
	my $res = '';
	IPC::Run::run([ $py, $check, 'verify', "$base/$issued-$key.jsonl", "$out/$file.der" ], '>', \$res, '2>&1');
	return $res;
}
for my $k ([ 'fr', 'es', 'ES256' ], [ 'de', 'rsa', 'PS256' ])
{
	my ($key, $file, $alg) = @$k;
	my $res = verify_issued('issued', 'payloads', $key, $file);
	like($res, qr/^verified: $alg 20\nissue_check: 20 passed, 0 failed$/m,
		"$key: issue_check.py verifies its 20 passes, protected alg $alg"
		  . ($alg eq 'PS256' ? ' (-37, PSS salt 32, MGF1-SHA256)' : ' (-7, r||s)'))
	  or diag($res);
}

# each issuance in the audit chain, the UVCI as subject
$node->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM health_pass.audit_log a
  JOIN (SELECT health_pass.uvci(p) AS ci, key, p FROM issued) i ON a.subject = i.ci
 WHERE a.outcome = 'issued' AND a.relation = 'health_pass.signing_key'::regclass
   AND a.current_user_name = 'registrar'
   AND a.reason = format('signed with key "%s"; signature hash %s', i.key,
                         encode((health_pass.revocation_hashes(i.p)).signature, 'hex'))}),
	$NI, "each of the $NI issuances recorded: outcome issued, the UVCI as subject, the key, the signature hash");
is($node->safe_psql('postgres', q{SELECT count(DISTINCT health_pass.uvci(p)) FROM issued}), $NI, '... UVCIs all distinct');
is($node->safe_psql('postgres', 'SELECT bool_and(ok) FROM health_pass.audit_verify()'), 't', 'the chain verifies');

# 2c. a token without CKM_SHA256_RSA_PKCS_PSS: test/pkcs11_no_hash_pss.c, a
# module that passes every call to SoftHSM2 but refuses that mechanism in
# C_SignInit, as HSMs with only the raw CKM_RSA_PKCS_PSS do, and logs each
# RSA-PSS C_SignInit.  PS256 falls back to CKM_RSA_PKCS_PSS over the digest
# (salt 32), once refused per key and backend, and every pass still verifies
# as PS256; ES256 is untouched
my $shim = "$base/pkcs11_no_hash_pss.so";
my $p11cflags = `pkg-config --cflags p11-kit-1 2>/dev/null` || '-I/usr/include/p11-kit-1';
chomp $p11cflags;
run("cc -shared -fPIC -O2 -Wall -Wextra -Werror $p11cflags -DREAL_MODULE='\"$module\"' "
	. "-o $shim $FindBin::RealBin/../pkcs11_no_hash_pss.c -ldl");
reconf('health_pass.pkcs11_module', $shim);
my $log_at = -s $node->logfile;
my $more;
IPC::Run::run([ $py, $check, 'gen', '72', 12 ], '>', \$more) or die 'issue_check.py gen failed';
spew("$base/payloads2.jsonl", $more);
$node->safe_psql('postgres', qq{
CREATE TABLE payloads2 (n serial, p jsonb, key text);
COPY payloads2 (p) FROM '$base/payloads2.jsonl' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02');
UPDATE payloads2 SET key = CASE WHEN n <= 10 THEN 'de' ELSE 'fr' END;
UPDATE payloads2 SET p = jsonb_set(p, ARRAY[k.k, '0', 'ci'], to_jsonb(health_pass.uvci(upper(key), 'HSM')))
  FROM (SELECT n AS nn, (SELECT k FROM unnest(ARRAY['v', 't', 'r']) k WHERE p ? k) AS k FROM payloads2) k
 WHERE k.nn = n;
CREATE TABLE issued2 (n int, key text, p health_pass.pass, at timestamptz);
GRANT SELECT ON payloads2 TO registrar;
GRANT INSERT ON issued2 TO registrar;
});
is(sq(q{INSERT INTO issued2
  SELECT n, key, health_pass.issue(p, key, '90 days', at), at
    FROM payloads2, (SELECT date_trunc('second', now()) AS at) x WHERE n <= 4 OR n > 10}, 'registrar'), '',
	'through the module without CKM_SHA256_RSA_PKCS_PSS: 4 PS256 and 2 ES256 passes by issue() in one backend');
is(sq(q{INSERT INTO issued2
  SELECT s.ns[b.o], 'de', b.p, s.at
    FROM (SELECT array_agg(p ORDER BY n) AS ps, array_agg(n ORDER BY n) AS ns, date_trunc('second', now()) AS at
            FROM payloads2 WHERE n BETWEEN 5 AND 10) s,
         LATERAL health_pass.issue_batch(s.ps, 'de', '90 days', s.at) WITH ORDINALITY b(p, o)}, 'registrar'), '',
	'... and 6 PS256 passes by issue_batch() in another');
is($node->safe_psql('postgres', q{SELECT string_agg(key || ' ' || a || ' ' || c, ', ' ORDER BY key) FROM
	(SELECT key, health_pass.alg(p) a, count(*) c FROM issued2 GROUP BY 1, 2) s}),
	'de PS256 10, fr ES256 2', '... every one issued with its key\'s algorithm');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT (health_pass.check(p)).reason::text, ', ') FROM issued2}),
	'ok', '... check() ok');
my $shim_log = substr(slurp($node->logfile), $log_at);
my $refused = () = $shim_log =~ /pkcs11_no_hash_pss: refused CKM_SHA256_RSA_PKCS_PSS/g;
my $salt32 = () = $shim_log =~ /pkcs11_no_hash_pss: CKM_RSA_PKCS_PSS salt 32\n/g;
my $other = () = $shim_log =~ /pkcs11_no_hash_pss: CKM_RSA_PKCS_PSS salt (?!32\n)/g;
is($refused, 2, 'CKM_SHA256_RSA_PKCS_PSS was tried once in each of the two backends, refused, not tried again');
is("$salt32 $other", '12 0', 'every RSA signature fell back to CKM_RSA_PKCS_PSS with a salt of 32: the 10 passes and each backend\'s proof of the key');
{
	my $res = verify_issued('issued2', 'payloads2', 'de', 'rsa');
	like($res, qr/^verified: PS256 10\nissue_check: 10 passed, 0 failed$/m,
		'issue_check.py verifies the 10 fallback passes as PS256 (-37, PSS salt 32, MGF1-SHA256)')
	  or diag($res);
}
reconf('health_pass.pkcs11_module', $module);

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
