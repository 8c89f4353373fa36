# Every symbol the installed health_pass.so exports carries the project prefix
# hp_: the module shares one symbol namespace with the server and every other
# loaded library, so an unprefixed global (cbor_head, base45_decode, ...) can
# bind to, or be bound by, someone else's symbol of the same name.
# Allowed besides hp_*: the fmgr entry points (_PG_init, Pg_magic_func,
# pg_finfo_hp_*) and the linker's own symbols (_init, _fini, _edata, _end,
# __bss_start).  And no hp_ symbol is left undefined.  Needs no server: reads
# the library with nm -D.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;

# make installcheck puts the bindir of the pg_config it used first in PATH
my ($pkglibdir, $err) = run_command([ 'pg_config', '--pkglibdir' ]);
chomp $pkglibdir;
my $so = "$pkglibdir/health_pass.so";
ok(-f $so, "installed library found: $so") or BAIL_OUT("no $so: make install first");

my ($nm, $nm_err) = run_command([ 'nm', '-D', '--defined-only', $so ]);
my @symbols;
for my $line (split /\n/, $nm)
{
	# "address type name"; absolute symbols may have no address
	my @f = split ' ', $line;
	next if @f < 2;
	push @symbols, { type => $f[-2], name => $f[-1] };
}
cmp_ok(scalar @symbols, '>', 0, 'nm -D lists the exported symbols')
  or diag("nm said: $nm_err");

my %linker = map { $_ => 1 } qw(_init _fini _edata _end __bss_start);
my @bad;
for my $s (@symbols)
{
	my $n = $s->{name};
	next if $n =~ /^hp_/;
	next if $n eq '_PG_init' || $n eq 'Pg_magic_func';
	next if $n =~ /^pg_finfo_hp_/;
	next if $linker{$n};
	push @bad, "$s->{type} $n";
}
my @entry = grep { $_->{name} =~ /^(_PG_init|Pg_magic_func)$/ } @symbols;
is(scalar @entry, 2, '_PG_init and Pg_magic_func are exported');

is(scalar @bad, 0,
	sprintf('all %d exported symbols are hp_*, fmgr entry points or linker symbols',
		scalar @symbols))
  or diag("exported without the hp_ prefix (nm type, name):\n"
	  . join("\n", map { "  $_" } @bad));

# An hp_ symbol the library uses must be defined in it: a shared library
# links with undefined symbols, and the server would only refuse it when
# shared_preload_libraries loads it (a function lost in an edit once got as
# far as that)
my ($undef) = run_command([ 'nm', '-D', '--undefined-only', $so ]);
my @missing = grep { /\bhp_/ } split /\n/, $undef;
is(scalar @missing, 0, 'every hp_ symbol the library uses is defined in it')
  or diag(join("\n", @missing));

done_testing();
