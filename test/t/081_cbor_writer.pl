# The CBOR writer and the COSE assembly of issued passes (src/codec/
# cbor_write.c), checked against the reader by test/fuzz/check_cbor_write.c
# from a fixed seed, built with AddressSanitizer and UndefinedBehaviorSanitizer:
# random items read back as written (heads and floats in their shortest
# exact form), every too-small buffer reported as overflow with nothing
# written past it, and whole passes that hp_cose_parse reads back.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;

my $top = "$FindBin::RealBin/../..";
my $bin = PostgreSQL::Test::Utils::tempdir() . '/check_cbor_write';
my @src = ("$top/test/fuzz/check_cbor_write.c", glob("$top/src/codec/*.c"));
my $cc = $ENV{CC} // 'cc';
my @san = ('-fsanitize=address,undefined', '-fno-sanitize-recover=undefined');
my $built = system($cc, '-std=gnu99', '-g', '-O1', @san, "-I$top/src", '-o', $bin, @src, '-lz', '-lm') == 0;
unless ($built)
{
	note('no sanitizers here: building without them');
	$built = system($cc, '-std=gnu99', '-g', '-O1', "-I$top/src", '-o', $bin, @src, '-lz', '-lm') == 0;
}
ok($built, 'check_cbor_write builds');
my ($out, $err) = run_command([ $bin, $ENV{HP_CBOR_ITERATIONS} // 50000, 14 ]);
like($out, qr/^check_cbor_write: \d+ passed, 0 failed$/m, 'the writer agrees with the reader (seed 14)');
is($err, '', 'no sanitizer report') or diag($err);
done_testing();
