# The source layout keeps its promises (docs/architecture.md):
#   - every C file lives in a subsystem folder (or is the module entry
#     src/health_pass.c), and includes project headers by folder;
#   - no file includes a header of a subsystem it may not depend on
#     (codec <- pass <- verify <- issue; audit <- access, audit <- issue;
#     common <- all but codec);
#   - the built objects agree: no object calls a function defined in a
#     subsystem it may not depend on (a declaration copied by hand would
#     pass the include check, not this one);
#   - the codec and the block codec stay pure: no PostgreSQL header.
# Needs the tree built (make) in the directory prove runs from.
use strict;
use warnings;
use File::Find;
use Test::More;

my %may_use = (
	common => [qw(common)],
	codec  => [qw(codec)],
	pass   => [qw(pass codec common)],
	verify => [qw(verify pass codec common)],
	audit  => [qw(audit common)],
	access => [qw(access audit common)],
	issue  => [qw(issue verify pass codec audit common)],
	module => [qw(module common codec pass verify audit access issue)],);

sub subsystem_of
{
	my ($path) = @_;
	return 'module' if $path eq 'src/health_pass.c' || $path eq 'src/health_pass.o';
	return $1 if $path =~ m{^src/([a-z]+)/[^/]+$} && exists $may_use{$1};
	return undef;
}

my (@sources, @objects);
find(
	{
		no_chdir => 1,
		wanted   => sub {
			my $f = $File::Find::name;
			$f =~ s{^\./}{};
			push @sources, $f if $f =~ /\.[ch]$/;
			push @objects, $f if $f =~ /\.o$/;
		}
	},
	'src');
@sources = sort @sources;
ok(@sources > 20, 'found the sources (' . scalar(@sources) . ' files)');

# 1. every file is in a subsystem
my @stray = grep { !defined subsystem_of($_) } @sources;
is_deeply(\@stray, [], 'every source file is in a subsystem folder')
  or diag("not in a subsystem: @stray");

# 2. includes point one way, by folder
my (@bad_dir, @bare, @impure);
for my $f (@sources)
{
	my $sub = subsystem_of($f) // next;
	open my $fh, '<', $f or die "$f: $!";
	while (my $line = <$fh>)
	{
		next unless $line =~ /^\s*#\s*include\s*"([^"]+)"/;
		my $inc = $1;
		if ($inc =~ m{^([a-z]+)/(hp_[a-z_]+\.h)$} && -e "src/$1/$2")
		{
			push @bad_dir, "$f includes $inc"
			  unless grep { $_ eq $1 } @{ $may_use{$sub} };
		}
		elsif ($inc =~ /^hp_/)
		{
			push @bare, "$f includes $inc";
		}
		# the pure layers compile without PostgreSQL (libFuzzer, check_records)
		push @impure, "$f includes $inc"
		  if ($sub eq 'codec' || $f =~ m{^src/audit/(block\.c|hp_block\.h)$})
		  && $inc !~ m{^(codec|audit)/hp_};
	}
	close $fh;
}
is_deeply(\@bad_dir, [], 'no file includes a header of a subsystem it may not depend on')
  or diag(join("\n", @bad_dir));
is_deeply(\@bare, [], 'project headers are included by their folder')
  or diag(join("\n", @bare));
is_deeply(\@impure, [], 'the codec and the block codec include no PostgreSQL header')
  or diag(join("\n", @impure));

# 3. the objects: who calls whom
ok(@objects >= @sources / 2, 'the tree is built (' . scalar(@objects) . ' objects)');
my (%defined_in, %undefined);
for my $o (@objects)
{
	for (`nm $o`)
	{
		if (/^[0-9a-f]+ [TDBR] (\S+)$/) { $defined_in{$1} = $o; }
		elsif (/^\s+U (hp_\S+)$/) { push @{ $undefined{$o} }, $1; }
	}
}
sub check_calls
{
	my ($undef) = @_;
	my (@bad, @unresolved);
	for my $o (sort keys %$undef)
	{
		my $from = subsystem_of($o) // next;
		for my $sym (@{ $undef->{$o} })
		{
			my $def = $defined_in{$sym};
			if (!defined $def) { push @unresolved, "$o: $sym"; next; }
			my $to = subsystem_of($def);
			push @bad, "$o calls $sym of $def"
			  unless grep { $_ eq $to } @{ $may_use{$from} };
		}
	}
	return (\@bad, \@unresolved);
}
my ($bad_call, $unresolved) = check_calls(\%undefined);
is_deeply($bad_call, [], 'no object calls into a subsystem it may not depend on')
  or diag(join("\n", @$bad_call));
is_deeply($unresolved, [], 'every hp_ symbol an object uses is defined in the tree')
  or diag(join("\n", @$unresolved));

# 4. negative control: the same check reports an audit object that calls
#    the quota code (access), as queue.c did in 0.7.0
my ($control) = check_calls({ 'src/audit/queue.o' => ['hp_quota_forget'] });
is_deeply($control, ['src/audit/queue.o calls hp_quota_forget of src/access/quota.o'],
	'an audit object calling into access would be reported');

done_testing();
