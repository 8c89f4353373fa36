/*
 * catalog.c
 *    The health_pass extension's own catalog objects: its schema, its owner
 *    and its relations, found through pg_extension.extnamespace by OID, not
 *    by schema name (docs/design/ddl.md).  Used by the verifier (trust
 *    list), the access gate (policy tables) and the audit writer (its log).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "common/hp_common.h"

/*
 * The extension's schema as last read: a hint, forgotten at the end of
 * every transaction and whenever a relation or schema name changes (a DROP
 * EXTENSION drops its relations), so a schema it left behind is never
 * taken for its own
 */
static Oid	extension_nsp_seen = InvalidOid;
static bool extension_hint_watched = false;

static void
hp_extension_hint_forget(Datum arg, int cacheid, uint32 hashvalue)
{
	extension_nsp_seen = InvalidOid;
}

static void
hp_extension_hint_xact(XactEvent event, void *arg)
{
	extension_nsp_seen = InvalidOid;
}

/*
 * Read the health_pass row of pg_extension: its schema and its owner
 * (InvalidOid for both when this database does not have it)
 */
static void
hp_extension_read(Oid *nsp, Oid *owner)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	*nsp = *owner = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("health_pass"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		*nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
		*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!extension_hint_watched)
	{
		/* in every process that uses the hint, preloaded or not */
		CacheRegisterSyscacheCallback(RELNAMENSP, hp_extension_hint_forget, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, hp_extension_hint_forget, (Datum) 0);
		RegisterXactCallback(hp_extension_hint_xact, NULL);
		extension_hint_watched = true;
	}
	extension_nsp_seen = *nsp;
}

/*
 * The schema the health_pass extension lives in (pg_extension.extnamespace),
 * or InvalidOid when this database does not have it.  By OID, not by name:
 * a renamed schema is still found (docs/design/ddl.md).
 */
Oid
hp_extension_namespace(void)
{
	Oid			nsp,
				owner;

	hp_extension_read(&nsp, &owner);
	return nsp;
}

/* The owner of the health_pass extension, or InvalidOid */
Oid
hp_extension_owner(void)
{
	Oid			nsp,
				owner;

	hp_extension_read(&nsp, &owner);
	return owner;
}

/*
 * Relation relname of the extension's schema, or InvalidOid.  Within a
 * transaction the schema last read is tried first (a syscache lookup, no
 * catalog scan: the DDL hook asks several times a statement, the writer
 * several times a batch); when there is none, or it lacks the relation,
 * pg_extension is read again.  The hint does not outlive the transaction
 * or any change of relation or schema names (above).
 */
Oid
hp_extension_relation_oid(const char *relname)
{
	Oid			nsp = extension_nsp_seen;

	if (OidIsValid(nsp) && SearchSysCacheExists1(NAMESPACEOID, ObjectIdGetDatum(nsp)))
	{
		Oid			relid = get_relname_relid(relname, nsp);

		if (OidIsValid(relid))
			return relid;
	}
	nsp = hp_extension_namespace();
	return OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
}
