# The French case, end to end (issue 14, section 4; README "The French case"):
# a registry issues a pass; a health worker reads it (audited); it leaks; the
# DBA finds who read it with who_read(), revokes it and issues a new one for
# the same person.  check(old) is revoked, check(new) is ok, and the chain
# shows the issuance, the read, the revocation and the reissue, in order,
# each by the role that did it, and verifies.  The README's walk-through makes
# the same calls in the same order (some are wrapped here to check their
# results); as there, a superuser's session takes each role with SET ROLE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use HealthPass::Test;
use File::Path qw(make_path);

my $node = hp_node('french_case');
my $keys = $node->basedir . '/keys';
make_path($keys);
chmod 0700, $keys;
system('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
	'-out', "$keys/fr.pem", '-quiet') == 0 or die 'openssl genpkey failed';
chmod 0600, "$keys/fr.pem";
# a DSC of France for vaccination passes (the DCC extended key usage)
system('openssl', 'req', '-new', '-x509', '-key', "$keys/fr.pem", '-subj', '/C=FR/CN=DSC FR',
	'-days', '365', '-outform', 'DER', '-out', $node->basedir . '/fr.der',
	'-addext', 'extendedKeyUsage=1.3.6.1.4.1.1847.2021.1.2') == 0 or die 'openssl req failed';
my $cert = "pg_read_binary_file('" . $node->basedir . "/fr.der')";

$node->safe_psql('postgres', qq{
ALTER SYSTEM SET health_pass.key_directory = '$keys';
SELECT pg_reload_conf();
});
$node->poll_query_until('postgres', 'SHOW health_pass.key_directory', $keys)
  or die 'key_directory not set';

$node->safe_psql('postgres', qq{
CREATE EXTENSION health_pass;
SELECT health_pass.signing_key_add('fr-dsc', $cert, 'file:fr.pem');
SELECT health_pass.trust_add($cert);
CREATE ROLE registry LOGIN;
CREATE ROLE nurse LOGIN;
GRANT USAGE ON SCHEMA health_pass TO registry, nurse;
SELECT health_pass.grant_signing('registry', 'fr-dsc');
CREATE TABLE public.registry (person_id text PRIMARY KEY, uvci text, pass health_pass.pass);
GRANT SELECT, INSERT, UPDATE ON public.registry TO registry;
GRANT SELECT ON public.registry TO nurse;
SELECT health_pass.protect('public.registry', 'person_id');
SELECT health_pass.allow('nurse', 'public.registry', 'care');
SELECT health_pass.allow('registry', 'public.registry', 'registry');
});

# the vaccination entry of one person; the registry fills in a new UVCI
my $payload = q{'{"ver": "1.3.0",
  "nam": {"fn": "Dupont", "gn": "Jean", "fnt": "DUPONT", "gnt": "JEAN"},
  "dob": "1977-12-21",
  "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
         "dn": 2, "sd": 2, "dt": "2021-06-01", "co": "FR", "is": "CNAM", "ci": ""}]}'::jsonb};
sub issue_for
{
	my ($what, $sql_verb) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', qq{
SET ROLE registry; SET health_pass.purpose = 'registry';
WITH u AS (SELECT health_pass.uvci('FR', 'CNAM') AS uvci)
$sql_verb;});
	is($ret, 0, "the registry issues $what") or diag($err);
	return $out;
}

# 1. the registry issues the pass
my $old_uvci = issue_for('a pass', q{INSERT INTO public.registry
SELECT 'P1', u.uvci, health_pass.issue(jsonb_set(} . $payload . q{, '{v,0,ci}', to_jsonb(u.uvci)), 'fr-dsc')
  FROM u RETURNING uvci});
like($old_uvci, qr{^URN:UVCI:01:FR:}, "the pass carries a new French UVCI ($old_uvci)");

# 2. a health worker reads it: audited
my ($ret, $leaked, $err) = $node->psql('postgres',
	"SET ROLE nurse; SET health_pass.purpose = 'care'; SELECT pass FROM public.registry WHERE person_id = 'P1'");
is($ret, 0, 'the nurse reads the pass') or diag($err);
like($leaked, qr/^HC1:/, 'and gets its HC1 text: the text that leaks');

# 3. it leaks; the DBA finds who read it
$node->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
is($node->safe_psql('postgres', q{
SELECT string_agg(current_user_name || ' ' || outcome || ' ' || purpose, ',')
  FROM health_pass.who_read('public.registry', 'P1') WHERE outcome = 'allowed'}),
	'nurse allowed care', 'who_read() names the nurse, the purpose and the outcome');

# 4. the DBA revokes the leaked pass (by its text, as it leaked)
is($node->safe_psql('postgres',
	"SELECT health_pass.revoke('$leaked'::health_pass.pass, 'leaked: published on social media') > 0"),
	't', 'the leaked pass is revoked');
is($node->safe_psql('postgres', "SELECT (health_pass.check('$leaked'::health_pass.pass)).reason"),
	'revoked', 'check() of the leaked pass: revoked');
is($node->safe_psql('postgres', "SELECT '$leaked'::health_pass.pass OPERATOR(health_pass.\@\@) now()"),
	'f', '@@ of the leaked pass is false');

# 5. a new pass for the same person; the leaked pass's UVCI is not issued
# again (such a pass would be revoked from the start)
{
	my ($r, $o, $e) = $node->psql('postgres', qq{SET ROLE registry;
SELECT health_pass.issue(jsonb_set($payload, '{v,0,ci}', to_jsonb('$old_uvci'::text)), 'fr-dsc')});
	like($e, qr/cannot issue pass: revocation: its ci "\Q$old_uvci\E" is revoked/,
		'reissuing with the leaked pass\'s UVCI is refused');
}
my $new_uvci = issue_for('a new pass for the same person', q{UPDATE public.registry r
   SET uvci = u.uvci,
       pass = health_pass.issue(jsonb_set(} . $payload . q{, '{v,0,ci}', to_jsonb(u.uvci)), 'fr-dsc')
  FROM u WHERE r.person_id = 'P1' RETURNING r.uvci});
isnt($new_uvci, $old_uvci, 'the new pass has a new UVCI');
is($node->safe_psql('postgres', q{
SELECT (health_pass.check(pass)).reason || ' ' || (pass OPERATOR(health_pass.@@) now())
  FROM public.registry WHERE person_id = 'P1'}), 'ok true', 'check() of the new pass: ok, and @@ true');
is($node->safe_psql('postgres', "SELECT (health_pass.check('$leaked'::health_pass.pass)).reason"),
	'revoked', 'the old one stays revoked');

# 6. the chain tells the story, in order, and verifies
$node->safe_psql('postgres', 'SELECT health_pass.audit_flush()');
my $story = $node->safe_psql('postgres', qq{
SELECT string_agg(outcome || ' by ' || current_user_name || ' of ' ||
                  CASE subject WHEN '$old_uvci' THEN 'old' WHEN '$new_uvci' THEN 'new'
                               WHEN 'P1' THEN 'P1' ELSE coalesce(subject, '-') END, '; ' ORDER BY id)
  FROM health_pass.audit_log
 WHERE outcome IN ('issued', 'revoked') OR (outcome = 'allowed' AND current_user_name = 'nurse')});
is($story, 'issued by registry of old; allowed by nurse of P1; revoked by postgres of old; issued by registry of new',
	'the chain: issuance, read, revocation, reissue');
like($node->safe_psql('postgres', qq{
SELECT reason FROM health_pass.audit_log WHERE outcome = 'revoked' AND subject = '$old_uvci'}),
	qr/leaked: published on social media/, 'the revocation record says why');
is($node->safe_psql('postgres', 'SELECT ok FROM health_pass.audit_verify()'), 't',
	'audit_verify(): the chain is intact');

ok(!$node->log_contains(qr/terminated by signal|PANIC/), 'no backend crashed (server log)');
$node->stop;
done_testing();
