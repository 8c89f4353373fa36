# test/t/010_install_matches_update.pl: a fresh install and an update give the
# same extension.
#
# CREATE EXTENSION health_pass runs one script, sql/health_pass--<version>.sql,
# built from sql/health_pass.sql; a database made by an older version gets there
# through the upgrade scripts.  This test installs the extension both ways in
# one cluster and compares their catalogs as sorted text:
#   database fresh:   CREATE EXTENSION health_pass
#   database updated: CREATE EXTENSION health_pass VERSION '0.5.0';
#                     ALTER EXTENSION health_pass UPDATE
#   database from_0_1_0: the same from 0.1.0 (every upgrade script)
# It also checks that the fresh install ran the direct script and not the
# chain of upgrade scripts, and (negative control) that the comparison sees a
# changed comment, ACL or function setting.
#
# Not compared, because they are not part of an object's definition: OIDs and
# the order objects were made in, relfilenodes, statistics, and
# pg_attribute.atthasmissing/attmissingval (the update adds the two boolean
# columns of protected_table with ALTER TABLE ... ADD COLUMN ... DEFAULT false,
# which stores a "missing value" for rows that predate the column; a fresh
# CREATE TABLE has none; neither changes what a query returns).  Entries
# pg_attver=<number> in pg_attribute.attoptions are left out too: the server
# this was written on puts one on every column of every relation, system
# views included, with a different number per relation.
#
# Run from the repository root, as a user other than root, after make install:
#   prove -I $(pg_config --pkglibdir)/pgxs/src/test/perl test/t/010_install_matches_update.pl
# or through PGXS (TAP_TESTS = 1, PROVE_TESTS = test/t/*.pl): make installcheck
use strict;
use warnings;

use File::Temp ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# PGXS's prove_installcheck sets PG_REGRESS (the cluster's init runs it); a
# plain prove run finds it beside the pgxs.mk of the pg_config on the PATH
if (!$ENV{PG_REGRESS})
{
	my $pgxs = `pg_config --pgxs`;
	chomp $pgxs;
	($ENV{PG_REGRESS} = $pgxs) =~ s{makefiles/pgxs\.mk$}{test/regress/pg_regress};
}

my $node = PostgreSQL::Test::Cluster->new('install_matches_update');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'health_pass'");
$node->start;

# Every line describes one property of the extension, one of its members or a
# part of a member (column, constraint, index, trigger, comment, privilege,
# dependency).  Only names appear, never OIDs.
my $catalog_query = <<'SQL';
WITH ext AS (SELECT * FROM pg_catalog.pg_extension WHERE extname = 'health_pass'),
mem AS (SELECT d.classid, d.objid, d.objsubid,
               pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS what
        FROM pg_catalog.pg_depend d, ext
        WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
          AND d.refobjid = ext.oid AND d.deptype = 'e'),
fn AS (SELECT p.*, m.what FROM pg_catalog.pg_proc p JOIN mem m
       ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid),
rel AS (SELECT c.oid AS reloid, c.*, m.what FROM pg_catalog.pg_class c JOIN mem m
        ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.objid = c.oid),
typ AS (SELECT t.oid AS typoid, t.*, m.what FROM pg_catalog.pg_type t JOIN mem m
        ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = t.oid),
lines(line) AS (
  SELECT 'extension version ' || extversion || ' relocatable ' || extrelocatable
         || ' schema ' || extnamespace::pg_catalog.regnamespace::text
         || ' owner ' || pg_catalog.pg_get_userbyid(extowner) FROM ext
  UNION ALL
  SELECT 'extension config ' || c.rel::pg_catalog.regclass::text || ' condition '
         || pg_catalog.quote_literal(c.cond)
  FROM ext, LATERAL ROWS FROM (pg_catalog.unnest(ext.extconfig), pg_catalog.unnest(ext.extcondition)) AS c(rel, cond)
  UNION ALL
  SELECT 'schema ' || n.nspname || ' owner ' || pg_catalog.pg_get_userbyid(n.nspowner)
         || ' acl ' || coalesce(n.nspacl::text, 'NULL')
         || ' comment ' || coalesce(pg_catalog.quote_literal(pg_catalog.obj_description(n.oid, 'pg_namespace')), 'NULL')
  FROM pg_catalog.pg_namespace n, ext WHERE n.oid = ext.extnamespace
  UNION ALL
  SELECT 'default acl ' || coalesce(pg_catalog.pg_get_userbyid(a.defaclrole), '?') || ' '
         || coalesce(a.defaclnamespace::pg_catalog.regnamespace::text, '-') || ' '
         || a.defaclobjtype::text || ' ' || a.defaclacl::text
  FROM pg_catalog.pg_default_acl a
  UNION ALL
  SELECT 'member ' || what FROM mem
  UNION ALL
  -- comments on members, and on their columns
  SELECT 'comment on ' || m.what
         || CASE WHEN d.objsubid > 0 THEN ' column ' || pg_catalog.quote_ident(a.attname) ELSE '' END
         || ': ' || d.description
  FROM mem m JOIN pg_catalog.pg_description d
    ON d.classoid = m.classid AND d.objoid = m.objid
  LEFT JOIN pg_catalog.pg_attribute a
    ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND a.attrelid = d.objoid AND a.attnum = d.objsubid
  UNION ALL
  SELECT 'member without comment ' || m.what FROM mem m
  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_description d
                    WHERE d.classoid = m.classid AND d.objoid = m.objid AND d.objsubid = 0)
  UNION ALL
  -- security labels and initial privileges (what pg_dump treats as the extension's own)
  SELECT 'security label on ' || m.what || ' ' || s.provider || ': ' || s.label
  FROM mem m JOIN pg_catalog.pg_seclabel s ON s.classoid = m.classid AND s.objoid = m.objid
  UNION ALL
  SELECT 'initial privileges of ' || m.what
         || CASE WHEN i.objsubid > 0 THEN ' column ' || i.objsubid ELSE '' END
         || ' (' || i.privtype::text || '): ' || i.initprivs::text
  FROM mem m JOIN pg_catalog.pg_init_privs i ON i.classoid = m.classid AND i.objoid = m.objid
  UNION ALL
  -- functions
  SELECT what || ' kind ' || prokind::text || ' volatile ' || provolatile::text
         || ' leakproof ' || proleakproof || ' strict ' || proisstrict
         || ' security_definer ' || prosecdef || ' parallel ' || proparallel::text
         || ' cost ' || procost || ' rows ' || prorows || ' retset ' || proretset
         || ' support ' || prosupport::text || ' owner ' || pg_catalog.pg_get_userbyid(proowner)
         || ' config ' || coalesce(proconfig::text, 'NULL')
         || ' acl ' || coalesce(proacl::text, 'NULL')
  FROM fn
  UNION ALL
  SELECT what || ' definition' || E'\n'
         || CASE WHEN prokind::text = 'a' THEN 'aggregate' ELSE pg_catalog.pg_get_functiondef(oid) END
  FROM fn
  UNION ALL
  SELECT what || ' aggregate ' || a.aggkind::text || ' trans ' || a.aggtransfn::text
         || ' final ' || a.aggfinalfn::text || ' combine ' || a.aggcombinefn::text
         || ' serial ' || a.aggserialfn::text || ' deserial ' || a.aggdeserialfn::text
         || ' mtrans ' || a.aggmtransfn::text || ' minv ' || a.aggminvtransfn::text
         || ' mfinal ' || a.aggmfinalfn::text || ' sortop ' || a.aggsortop::pg_catalog.regoperator::text
         || ' stype ' || a.aggtranstype::pg_catalog.regtype::text
         || ' init ' || coalesce(a.agginitval, 'NULL')
  FROM fn JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = fn.oid
  UNION ALL
  -- relations
  SELECT what || ' kind ' || relkind::text || ' persistence ' || relpersistence::text
         || ' owner ' || pg_catalog.pg_get_userbyid(relowner)
         || ' acl ' || coalesce(relacl::text, 'NULL')
         || ' options ' || coalesce(reloptions::text, 'NULL')
         || ' rowsecurity ' || relrowsecurity || ' forcerowsecurity ' || relforcerowsecurity
         || ' replident ' || relreplident::text || ' ispartition ' || relispartition
         || ' am ' || coalesce((SELECT amname FROM pg_catalog.pg_am WHERE oid = relam), '-')
  FROM rel
  UNION ALL
  SELECT 'column ' || r.what || ' ' || a.attnum || ' ' || pg_catalog.quote_ident(a.attname)
         || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
         || ' notnull ' || a.attnotnull
         || ' default ' || coalesce(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), 'NULL')
         || ' collation ' || coalesce((SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                                       FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
                                       WHERE co.oid = a.attcollation), '-')
         || ' identity ' || pg_catalog.quote_literal(a.attidentity::text)
         || ' generated ' || pg_catalog.quote_literal(a.attgenerated::text)
         || ' storage ' || a.attstorage::text || ' compression ' || pg_catalog.quote_literal(a.attcompression::text)
         || ' statistics ' || a.attstattarget || ' acl ' || coalesce(a.attacl::text, 'NULL')
         || ' options ' || coalesce((SELECT pg_catalog.array_agg(o ORDER BY o)::text FROM pg_catalog.unnest(a.attoptions) o
                                     WHERE o NOT LIKE 'pg\_attver=%'), 'NULL')
  FROM rel r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.reloid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  UNION ALL
  SELECT 'dropped columns of ' || r.what || ': ' || count(*)
  FROM rel r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.reloid AND a.attisdropped
  GROUP BY r.what
  UNION ALL
  SELECT 'constraint ' || r.what || ' ' || pg_catalog.quote_ident(c.conname) || ' '
         || pg_catalog.pg_get_constraintdef(c.oid)
         || ' deferrable ' || c.condeferrable || ' deferred ' || c.condeferred
         || ' validated ' || c.convalidated
  FROM rel r JOIN pg_catalog.pg_constraint c ON c.conrelid = r.reloid
  UNION ALL
  SELECT 'index ' || r.what || ' ' || pg_catalog.pg_get_indexdef(i.indexrelid)
         || ' primary ' || i.indisprimary || ' clustered ' || i.indisclustered
         || ' replident ' || i.indisreplident
         || ' options ' || coalesce(ic.reloptions::text, 'NULL')
  FROM rel r JOIN pg_catalog.pg_index i ON i.indrelid = r.reloid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  UNION ALL
  SELECT 'comment on index ' || ic.relname || ': ' || d.description
  FROM rel r JOIN pg_catalog.pg_index i ON i.indrelid = r.reloid
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_description d ON d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
   AND d.objoid = i.indexrelid
  UNION ALL
  SELECT 'trigger ' || r.what || ' ' || pg_catalog.pg_get_triggerdef(t.oid)
         || ' enabled ' || t.tgenabled::text
  FROM rel r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.reloid AND NOT t.tgisinternal
  UNION ALL
  SELECT 'internal triggers of ' || r.what || ': '
         || pg_catalog.string_agg(t.tgfoid::pg_catalog.regproc::text || ' ' || t.tgtype, ', ' ORDER BY t.tgfoid::pg_catalog.regproc::text, t.tgtype)
  FROM rel r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.reloid AND t.tgisinternal
  GROUP BY r.what
  UNION ALL
  SELECT 'comment on trigger ' || r.what || ' ' || t.tgname || ': ' || d.description
  FROM rel r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.reloid
  JOIN pg_catalog.pg_description d ON d.classoid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND d.objoid = t.oid
  UNION ALL
  SELECT what || ' definition' || E'\n' || pg_catalog.pg_get_viewdef(reloid)
  FROM rel WHERE relkind::text IN ('v', 'm')
  UNION ALL
  SELECT 'rule ' || r.what || ' ' || pg_catalog.pg_get_ruledef(ru.oid)
  FROM rel r JOIN pg_catalog.pg_rewrite ru ON ru.ev_class = r.reloid AND ru.rulename <> '_RETURN'
  UNION ALL
  SELECT 'policy ' || r.what || ' ' || pg_catalog.quote_ident(p.polname) || ' ' || p.polcmd::text
         || ' permissive ' || p.polpermissive
         || ' roles ' || (SELECT pg_catalog.string_agg(CASE WHEN x = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(x) END, ',' ORDER BY 1)
                          FROM pg_catalog.unnest(p.polroles) x)
         || ' using ' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), 'NULL')
         || ' check ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), 'NULL')
  FROM rel r JOIN pg_catalog.pg_policy p ON p.polrelid = r.reloid
  UNION ALL
  SELECT r.what || ' type ' || s.seqtypid::pg_catalog.regtype::text
         || ' start ' || s.seqstart || ' increment ' || s.seqincrement || ' max ' || s.seqmax
         || ' min ' || s.seqmin || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle
         || ' owned by ' || coalesce((SELECT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
                                      FROM pg_catalog.pg_depend d
                                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                        AND d.objid = r.reloid AND d.deptype IN ('a', 'i')
                                        AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass), '-')
  FROM rel r JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.reloid
  UNION ALL
  -- types
  SELECT what || ' typtype ' || typtype::text || ' len ' || typlen || ' byval ' || typbyval
         || ' align ' || typalign::text || ' storage ' || typstorage::text || ' category ' || typcategory::text
         || ' preferred ' || typispreferred || ' delim ' || typdelim::text
         || ' in ' || typinput::text || ' out ' || typoutput::text
         || ' recv ' || typreceive::text || ' send ' || typsend::text
         || ' modin ' || typmodin::text || ' modout ' || typmodout::text
         || ' analyze ' || typanalyze::text || ' subscript ' || typsubscript::text
         || ' elem ' || typelem::pg_catalog.regtype::text
         || ' array ' || typarray::pg_catalog.regtype::text
         || ' base ' || typbasetype::pg_catalog.regtype::text
         || ' notnull ' || typnotnull || ' collation ' || typcollation
         || ' default ' || coalesce(typdefault, 'NULL')
         || ' owner ' || pg_catalog.pg_get_userbyid(typowner)
         || ' acl ' || coalesce(typacl::text, 'NULL')
  FROM typ
  UNION ALL
  SELECT 'type attribute ' || t.what || ' ' || a.attnum || ' ' || pg_catalog.quote_ident(a.attname)
         || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) || ' collation ' || a.attcollation
  FROM typ t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE t.typtype = 'c'
  UNION ALL
  SELECT 'domain constraint ' || t.what || ' ' || pg_catalog.quote_ident(c.conname) || ' '
         || pg_catalog.pg_get_constraintdef(c.oid)
  FROM typ t JOIN pg_catalog.pg_constraint c ON c.contypid = t.typoid
  UNION ALL
  SELECT 'enum ' || t.what || ' ' || e.enumsortorder || ' ' || e.enumlabel
  FROM typ t JOIN pg_catalog.pg_enum e ON e.enumtypid = t.typoid
  UNION ALL
  SELECT 'range ' || t.what || ' subtype ' || r.rngsubtype::pg_catalog.regtype::text
         || ' opclass ' || r.rngsubopc || ' canonical ' || r.rngcanonical::text
         || ' diff ' || r.rngsubdiff::text
  FROM typ t JOIN pg_catalog.pg_range r ON r.rngtypid = t.typoid
  UNION ALL
  -- operators
  SELECT m.what || ' kind ' || o.oprkind::text
         || ' result ' || o.oprresult::pg_catalog.regtype::text
         || ' code ' || o.oprcode::pg_catalog.regprocedure::text
         || ' commutator ' || o.oprcom::pg_catalog.regoperator::text
         || ' negator ' || o.oprnegate::pg_catalog.regoperator::text
         || ' restrict ' || o.oprrest::text || ' join ' || o.oprjoin::text
         || ' merges ' || o.oprcanmerge || ' hashes ' || o.oprcanhash
         || ' owner ' || pg_catalog.pg_get_userbyid(o.oprowner)
  FROM mem m JOIN pg_catalog.pg_operator o
    ON m.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND m.objid = o.oid
  UNION ALL
  SELECT m.what || ' type ' || c.opcintype::pg_catalog.regtype::text
         || ' default ' || c.opcdefault || ' key ' || c.opckeytype::pg_catalog.regtype::text
         || ' family ' || pg_catalog.pg_describe_object('pg_catalog.pg_opfamily'::pg_catalog.regclass, c.opcfamily, 0)
  FROM mem m JOIN pg_catalog.pg_opclass c
    ON m.classid = 'pg_catalog.pg_opclass'::pg_catalog.regclass AND m.objid = c.oid
  UNION ALL
  SELECT 'operator family member ' || m.what || ' '
         || pg_catalog.pg_describe_object('pg_catalog.pg_amop'::pg_catalog.regclass, o.oid, 0)
         || ' purpose ' || o.amoppurpose::text || ' sortfamily ' || o.amopsortfamily
  FROM mem m JOIN pg_catalog.pg_amop o
    ON m.classid = 'pg_catalog.pg_opfamily'::pg_catalog.regclass AND o.amopfamily = m.objid
  UNION ALL
  SELECT 'operator family member ' || m.what || ' '
         || pg_catalog.pg_describe_object('pg_catalog.pg_amproc'::pg_catalog.regclass, p.oid, 0)
  FROM mem m JOIN pg_catalog.pg_amproc p
    ON m.classid = 'pg_catalog.pg_opfamily'::pg_catalog.regclass AND p.amprocfamily = m.objid
  UNION ALL
  -- casts, event triggers
  SELECT m.what || ' function ' || c.castfunc::pg_catalog.regprocedure::text
         || ' context ' || c.castcontext::text || ' method ' || c.castmethod::text
  FROM mem m JOIN pg_catalog.pg_cast c
    ON m.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass AND m.objid = c.oid
  UNION ALL
  SELECT m.what || ' on ' || e.evtevent
         || ' function ' || e.evtfoid::pg_catalog.regprocedure::text
         || ' enabled ' || e.evtenabled::text || ' tags ' || coalesce(e.evttags::text, 'NULL')
         || ' owner ' || pg_catalog.pg_get_userbyid(e.evtowner)
  FROM mem m JOIN pg_catalog.pg_event_trigger e
    ON m.classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass AND m.objid = e.oid
  UNION ALL
  -- dependencies of and on members (and their parts), by description
  SELECT 'depends ' || d.deptype::text || ' ' ||
         regexp_replace(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), '\d{4,}', 'N', 'g')
         || ' -> ' ||
         regexp_replace(pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), '\d{4,}', 'N', 'g')
  FROM pg_catalog.pg_depend d
  WHERE d.deptype <> 'e'
    AND (EXISTS (SELECT 1 FROM mem m WHERE m.classid = d.classid AND m.objid = d.objid)
         OR EXISTS (SELECT 1 FROM mem m WHERE m.classid = d.refclassid AND m.objid = d.refobjid))
)
SELECT line FROM lines ORDER BY line COLLATE "C"
SQL

# Record what an install drops: a direct install script drops nothing, the
# chain of upgrade scripts does (0.4.0 -> 0.5.0 drops the old audit_log table).
my $drop_logger = <<'SQL';
CREATE TABLE public.dropped_by_install (what text);
CREATE FUNCTION public.log_dropped() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.dropped_by_install
    SELECT d.object_type || ' ' || d.object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() d;
END $$;
CREATE EVENT TRIGGER log_dropped ON sql_drop EXECUTE FUNCTION public.log_dropped();
SQL
my $drop_logger_off = <<'SQL';
DROP EVENT TRIGGER log_dropped;
DROP FUNCTION public.log_dropped();
SQL

for my $db ('fresh', 'updated')
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, $drop_logger);
}

my $default_version = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'health_pass'");
ok($default_version ne '', "health_pass is installed (default_version $default_version)");

# The upgrade chain must be available, so that the fresh install had a choice.
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM pg_catalog.pg_extension_update_paths('health_pass') "
		  . "WHERE source IN ('0.1.0', '0.5.0') AND target = '$default_version' AND path IS NOT NULL"),
	'2',
	"update paths from 0.1.0 and 0.5.0 to $default_version exist");

$node->safe_psql('fresh', 'CREATE EXTENSION health_pass');
$node->safe_psql('updated', "CREATE EXTENSION health_pass VERSION '0.5.0'");
my $dropped_by_050 = $node->safe_psql('updated',
	'SELECT what FROM public.dropped_by_install ORDER BY 1');
$node->safe_psql('updated', 'ALTER EXTENSION health_pass UPDATE');
$node->safe_psql('postgres', 'CREATE DATABASE from_0_1_0');
$node->safe_psql('from_0_1_0', "CREATE EXTENSION health_pass VERSION '0.1.0'");
$node->safe_psql('from_0_1_0', 'ALTER EXTENSION health_pass UPDATE');

is($node->safe_psql('fresh', "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'health_pass'"),
	$default_version, "fresh install is at $default_version");
is($node->safe_psql('updated', "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'health_pass'"),
	$default_version, "update from 0.5.0 reaches $default_version");

# The logger sees drops made inside an extension script (positive control)
# and the fresh install made none: it ran health_pass--<version>.sql, not
# 0.1.0 and the upgrade scripts.
like($dropped_by_050, qr/^table health_pass\.audit_log_0_4$/m,
	'the drop logger sees what an install through upgrade scripts drops');
is($node->safe_psql('fresh', 'SELECT count(*) FROM public.dropped_by_install'),
	'0', 'a plain CREATE EXTENSION runs the one install script (nothing made and dropped)');

for my $db ('fresh', 'updated')
{
	$node->safe_psql($db, $drop_logger_off);
}

sub catalog
{
	my ($db) = @_;
	return $node->safe_psql($db, $catalog_query);
}

# unified diff of two texts, for the diagnostics
sub unified_diff
{
	my ($a, $b, $label_a, $label_b) = @_;
	my $fa = File::Temp->new(DIR => $PostgreSQL::Test::Utils::tmp_check);
	my $fb = File::Temp->new(DIR => $PostgreSQL::Test::Utils::tmp_check);
	print $fa "$a\n";
	print $fb "$b\n";
	close $fa;
	close $fb;
	my ($out, $err) = run_command(
		[ 'diff', '-u', '-F', '^[a-z]', '--label', $label_a, '--label', $label_b, $fa->filename, $fb->filename ]);
	return $out;
}

# compare database fresh with another; returns the diff ('' when equal)
sub compare
{
	my ($db, $how) = @_;
	$db //= 'updated';
	$how //= '0.5.0, then ALTER EXTENSION UPDATE';
	my ($fresh, $other) = (catalog('fresh'), catalog($db));
	return ('', $fresh) if $fresh eq $other;
	return (unified_diff($fresh, $other, 'fresh (CREATE EXTENSION)', "$db ($how)"), $fresh);
}

my ($diff, $text) = compare();
my $lines = () = $text =~ /^(?:member|function|table|view|column|comment on) /mg;
cmp_ok($lines, '>', 200, "the comparison covers the catalog ($lines lines on members, functions, tables, views, columns and comments)");
like($text, qr/^member function health_pass\.subject_text\(anyelement\)$/m,
	'the comparison lists the members');
is($diff, '', 'fresh install and update from 0.5.0 give the same catalog')
  or diag("catalog differences:\n$diff");
($diff) = compare('from_0_1_0', '0.1.0, then ALTER EXTENSION UPDATE');
is($diff, '', 'fresh install and update from 0.1.0 give the same catalog')
  or diag("catalog differences:\n$diff");

# Negative control: change a comment, an ACL and a function setting in one
# database; the comparison must report exactly those, and nothing once they
# are reverted.
my $old_comment = $node->safe_psql('updated',
	"SELECT pg_catalog.quote_literal(pg_catalog.obj_description('health_pass.kid(health_pass.pass)'::pg_catalog.regprocedure, 'pg_proc'))");
$node->safe_psql('updated', <<'SQL');
COMMENT ON FUNCTION health_pass.kid(health_pass.pass) IS 'changed by the negative control';
GRANT EXECUTE ON FUNCTION health_pass.break_glass(text) TO PUBLIC;
ALTER FUNCTION health_pass.uvci(health_pass.pass) SET work_mem = '1MB';
SQL
($diff) = compare();
my @changed = grep { /^[-+][^-+]/ } split /\n/, $diff;
like($diff, qr/^\+comment on function health_pass\.kid\(health_pass\.pass\): changed by the negative control$/m,
	'negative control: a changed comment is reported');
like($diff, qr/^\+function health_pass\.break_glass\(text\) .* acl \{postgres=X\/postgres,=X\/postgres\}$/m,
	'negative control: a changed ACL is reported');
like($diff, qr/^\+function health_pass\.uvci\(health_pass\.pass\) .* config \{work_mem=1MB\}/m,
	'negative control: a changed function setting is reported');
like($diff, qr/^\+ SET work_mem TO '1MB'$/m,
	'negative control: the function definition shows it too');
ok(!(grep { !/kid|break_glass|uvci|work_mem/ } @changed),
	'negative control: nothing else is reported') or diag($diff);

$node->safe_psql('updated', <<"SQL");
COMMENT ON FUNCTION health_pass.kid(health_pass.pass) IS $old_comment;
REVOKE EXECUTE ON FUNCTION health_pass.break_glass(text) FROM PUBLIC;
ALTER FUNCTION health_pass.uvci(health_pass.pass) RESET work_mem;
SQL
($diff) = compare();
is($diff, '', 'negative control reverted: the catalogs are the same again')
  or diag("catalog differences:\n$diff");

$node->stop;
done_testing();
