/*
 * policy.c
 *    Per-backend cache of health_pass.protected_table and
 *    health_pass.access_rule.  Invalidation rule: the triggers on both
 *    tables send a relcache invalidation for the table changed (at commit,
 *    to every backend); our relcache callback then counts a new generation
 *    and the next lookup reloads the cache.  A changed table OID (extension
 *    dropped and created again) reloads it too: the OIDs are looked up by
 *    name again after any change to pg_class or pg_namespace (syscache
 *    callbacks).
 *
 *    Fail closed: a load builds the new cache in a context of its own and
 *    installs it only when it finished and no invalidation arrived while it
 *    ran (opening the tables and reading them accept invalidations); else it
 *    loads again.  An error during a load leaves the cache stale, never half
 *    built.  Every lookup reloads a stale cache first, so a table is never
 *    reported unprotected because the cache was being rebuilt.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access/hp_access.h"

typedef struct HpProtected
{
	Oid			relid;
	AttrNumber	attnum;
	bool		needs_policy;	/* no row security of its own: ddl.c's policy */
	Oid			through;		/* protected as a partition or child of this */
	char		probe_enabled;	/* its write-probe trigger's tgenabled, '\0' when
								 * it has none; 'A' when it holds no rows */
	bool		probed_known;	/* probe_enabled is current: cleared by a relcache
								 * invalidation of the table (a trigger change) */
} HpProtected;

static MemoryContext policy_cxt = NULL;
static HTAB *protected_cache = NULL;
static HpRule *rules = NULL;
static int	nrules = 0;
static bool cache_valid = false;

/*
 * The cache was read by a parallel leader with the query's snapshot, which
 * under REPEATABLE READ is the transaction's: a rule deleted since would be
 * in it (a red-team pass read under one, and the stale cache outlived the
 * transaction).  It still says which tables are protected, but no rule is
 * taken from it (hp_rule_for() fails with 40001: only statements that read
 * a protected table in that window are refused), and it is read again as
 * soon as the parallel plan is over.
 */
static bool cache_provisional = false;
static uint64 inval_generation = 0;	/* bumped by every invalidation */

/* OIDs of our two tables, looked up by name; the cache is of these */
static bool oids_known = false;
static Oid	protected_oid = InvalidOid;
static Oid	rule_oid = InvalidOid;

/* Syscache callback: a change to pg_class or pg_namespace names */
static void
hp_names_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	oids_known = false;
	inval_generation++;
}

/* The write-probe trigger function of the loaded policy, or InvalidOid */
static Oid	probe_fn = InvalidOid;

/*
 * Relcache callback: any change to our two tables makes the cache stale.
 * One to a protected table (a trigger created, dropped, enabled, disabled;
 * also ANALYZE and VACUUM) makes only its probed flag unknown: the rules do
 * not change, and reloading them for every ANALYZE would fail parallel
 * plans (policy reads are refused while one runs).
 */
static void
hp_policy_inval(Datum arg, Oid relid)
{
	HpProtected *p;

	if (relid == InvalidOid || relid == protected_oid || relid == rule_oid)
	{
		cache_valid = false;
		inval_generation++;
	}
	else if (protected_cache != NULL &&
			 (p = hash_search(protected_cache, &relid, HASH_FIND, NULL)) != NULL)
		p->probed_known = false;
}

/*
 * The tgenabled of relid's write-probe trigger (function probe_fn), '\0'
 * when it has none; a relation that holds no rows of its own
 * (partitioned) needs none: 'A'
 */
static char
hp_probe_enabled(Oid relid, Oid probe_fn)
{
	char		enabled = '\0';

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return TRIGGER_FIRES_ALWAYS;
	if (!OidIsValid(hp_probe_trigger(relid, probe_fn, &enabled)))
		return '\0';
	return enabled;
}

/* Register the invalidation callback; once per backend */
void
hp_policy_init(void)
{
	CacheRegisterRelcacheCallback(hp_policy_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(RELNAMENSP, hp_names_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACENAME, hp_names_inval, (Datum) 0);
}

/* Interval to microseconds, a month counted as 30 days */
static int64
hp_interval_us(Interval *iv)
{
	/* in floating point, then bounded: no interval wraps a quota around */
	double		us = (double) iv->time + (double) iv->day * USECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;

	if (us > (double) HP_MAX_PER_US)
		return HP_MAX_PER_US;
	return us < 1 ? 1 : (int64) us;
}

/*
 * Read both tables into a new context, made a child of the current one
 * (freed with it on error) and moved under CacheMemoryContext once the
 * cache is installed.
 */
static void
hp_policy_read(MemoryContext cxt, HTAB **protected_out, HpRule **rules_out, int *nrules_out)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	HASHCTL		ctl;
	int			cap = 16;
	HTAB	   *prot;
	HpRule	   *rs;
	int			n = 0;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(HpProtected);
	ctl.hcxt = cxt;
	prot = hash_create("health_pass protected tables", 64, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	/*
	 * A parallel worker may not take a new snapshot: it reads the leader's
	 * (it never gates a protected table: gate.c refuses that).  Neither may
	 * the leader while a parallel plan runs; what it reads with the query's
	 * snapshot is provisional (hp_policy_load()).
	 */
	snap = RegisterSnapshot(IsInParallelMode() && ActiveSnapshotSet() ?
							GetActiveSnapshot() : GetLatestSnapshot());

	/*
	 * The write-probe trigger function; an install of a version before
	 * 0.12.0 (library updated, ALTER EXTENSION UPDATE not yet run) has none,
	 * and its tables are written as that version wrote them
	 */
	probe_fn = hp_probe_function_oid(true);
	rel = table_open(protected_oid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull1,
					isnull2,
					isnull;
		Oid			relid = DatumGetObjectId(heap_getattr(tup, 1, RelationGetDescr(rel), &isnull1));
		int16		attnum = DatumGetInt16(heap_getattr(tup, 2, RelationGetDescr(rel), &isnull2));
		HpProtected *p;
		Datum		d;

		if (isnull1 || isnull2)
			continue;			/* the table's constraints forbid both */
		p = hash_search(prot, &relid, HASH_ENTER, NULL);
		p->attnum = attnum;
		/* 0.6.0 columns: 5 rls_enabled_before, 7 protected_through */
		p->needs_policy = true;
		p->through = InvalidOid;
		p->probe_enabled = '\0';
		p->probed_known = false;	/* looked up at the first write */
		if (RelationGetDescr(rel)->natts >= 7)
		{
			d = heap_getattr(tup, 5, RelationGetDescr(rel), &isnull);
			p->needs_policy = isnull || !DatumGetBool(d);
			d = heap_getattr(tup, 7, RelationGetDescr(rel), &isnull);
			if (!isnull)
				p->through = DatumGetObjectId(d);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	rs = MemoryContextAlloc(cxt, sizeof(HpRule) * cap);
	rel = table_open(rule_oid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull[5];
		Datum		v[5];
		HpRule	   *r;
		char	   *purpose;

		for (int i = 0; i < 5; i++)
			v[i] = heap_getattr(tup, i + 1, desc, &isnull[i]);
		if (isnull[0] || isnull[1] || isnull[2])
			continue;
		if (n == cap)
		{
			cap *= 2;
			rs = repalloc(rs, sizeof(HpRule) * cap);
		}
		r = &rs[n++];
		r->grantee = DatumGetObjectId(v[0]);
		r->relid = DatumGetObjectId(v[1]);
		purpose = TextDatumGetCString(v[2]);
		strlcpy(r->purpose, purpose, HP_PURPOSE_LEN);
		pfree(purpose);
		r->max_subjects = isnull[3] ? 0 : DatumGetInt32(v[3]);
		r->per_us = isnull[4] ? USECS_PER_HOUR : hp_interval_us(DatumGetIntervalP(v[4]));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);
	*protected_out = prot;
	*rules_out = rs;
	*nrules_out = n;
}

/*
 * Make the cache valid: load until a load completes with no invalidation
 * arriving during it.  Only then is the new cache installed.
 */
static void
hp_policy_load(void)
{
	while (!cache_valid)
	{
		uint64		gen = inval_generation;
		MemoryContext cxt;
		HTAB	   *prot;
		HpRule	   *rs;
		int			n;

		CHECK_FOR_INTERRUPTS();
		cxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass policy",
									ALLOCSET_SMALL_SIZES);
		hp_policy_read(cxt, &prot, &rs, &n);
		if (gen != inval_generation)
		{
			/* changed while we read it: what we read may be stale */
			MemoryContextDelete(cxt);
			continue;
		}
		MemoryContextSetParent(cxt, CacheMemoryContext);
		if (policy_cxt)
			MemoryContextDelete(policy_cxt);
		policy_cxt = cxt;
		protected_cache = prot;
		rules = rs;
		nrules = n;
		cache_provisional = IsInParallelMode() && !IsParallelWorker();
		cache_valid = true;
	}
}

/*
 * Look the OIDs of our tables up again after a name change, and make the
 * cache valid.  False when this database does not have the extension.
 * Fails closed: when it has the extension but one of the two tables is not
 * in its schema (renamed, moved), no read of a protected table may go on as
 * if nothing were protected (row security alone would return no rows,
 * unaudited).
 */
static bool
hp_policy_ready(void)
{
	if (!oids_known)
	{
		Oid			nsp,
					p = InvalidOid,
					r = InvalidOid;
		uint64		gen = inval_generation;

		nsp = hp_extension_namespace();
		if (OidIsValid(nsp))
		{
			p = get_relname_relid("protected_table", nsp);
			r = get_relname_relid("access_rule", nsp);
			/* CREATE EXTENSION makes them after the extension */
			if ((!OidIsValid(p) || !OidIsValid(r)) && !creating_extension)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("health_pass cannot find its access policy"),
						 errdetail("The extension's schema \"%s\" has no table %s.",
								   get_namespace_name(nsp),
								   OidIsValid(p) ? "access_rule" : "protected_table"),
						 errhint("A superuser must restore the extension's objects; until then no protected table can be read.")));
		}
		if (p != protected_oid || r != rule_oid)
			cache_valid = false;	/* the extension was dropped and created again */
		protected_oid = p;
		rule_oid = r;
		/* a name change during the lookups: look again next time */
		oids_known = (gen == inval_generation);
	}
	if (!OidIsValid(protected_oid) || !OidIsValid(rule_oid))
		return false;
	if (cache_valid && cache_provisional && !IsInParallelMode())
		cache_valid = false;	/* read with an old snapshot: read it again */
	hp_policy_load();
	return true;
}

/*
 * True when this database has the extension with at least one protected
 * table; (re)loads the cache when stale.  No catalog lookup unless names
 * changed.
 */
bool
hp_any_protected(void)
{
	if (!IsTransactionState())
		return false;
	if (!hp_policy_ready())
		return false;
	return hash_get_num_entries(protected_cache) > 0;
}

/*
 * Subject column of relid, or InvalidAttrNumber when it is not protected.  A stale cache
 * is reloaded first; outside a transaction, where it cannot be, this
 * fails rather than guess.
 */
AttrNumber
hp_protected_attnum(Oid relid)
{
	HpProtected *p;

	if (!cache_valid || !oids_known || (cache_provisional && !IsInParallelMode()))
	{
		if (!IsTransactionState())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
					 errmsg("health_pass cannot read its access policy outside a transaction")));
		if (!hp_policy_ready())
			return InvalidAttrNumber;
	}
	if (protected_cache == NULL)
		return InvalidAttrNumber;
	p = hash_search(protected_cache, &relid, HASH_FIND, NULL);
	return p ? p->attnum : InvalidAttrNumber;
}

/*
 * May relid be written past the write-probe check: not protected, holding
 * no rows of its own, or with its trigger in place (false: a protected
 * table whose trigger a restore without triggers left out, or a superuser
 * dropped or disabled)
 */
bool
hp_protected_probed(Oid relid)
{
	HpProtected *p;

	if (hp_protected_attnum(relid) <= 0 || protected_cache == NULL || !OidIsValid(probe_fn))
		return true;
	p = hash_search(protected_cache, &relid, HASH_FIND, NULL);
	if (p == NULL)
		return true;
	/* known again, unless an invalidation arrives during the lookup */
	while (!p->probed_known)
	{
		char		enabled;

		p->probed_known = true;
		enabled = hp_probe_enabled(relid, probe_fn);
		if (!cache_valid || protected_cache == NULL)
			return hp_protected_probed(relid);	/* the whole cache went meanwhile */
		p = hash_search(protected_cache, &relid, HASH_FIND, NULL);
		if (p == NULL)
			return true;
		p->probe_enabled = enabled;
	}

	/*
	 * Whether it fires in this session: an ORIGIN trigger not under
	 * session_replication_role = replica (a role a superuser let set it
	 * would switch the probe off), a REPLICA one only under it
	 */
	switch (p->probe_enabled)
	{
		case TRIGGER_FIRES_ALWAYS:
			return true;
		case TRIGGER_FIRES_ON_ORIGIN:
			return SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA;
		case TRIGGER_FIRES_ON_REPLICA:
			return SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA;
		default:
			return false;
	}
}

/*
 * Does protected table relid need health_pass's permissive row security
 * policy (it had no row security of its own)?  False when not protected.
 */
bool
hp_protected_needs_policy(Oid relid)
{
	HpProtected *p;

	if (hp_protected_attnum(relid) <= 0 || protected_cache == NULL)
		return false;
	p = hash_search(protected_cache, &relid, HASH_FIND, NULL);
	return p && p->needs_policy;
}

/* Every protected table, in a list allocated in the current context */
List *
hp_protected_relids(void)
{
	List	   *out = NIL;
	HASH_SEQ_STATUS seq;
	HpProtected *p;

	if (!hp_any_protected())
		return NIL;
	hash_seq_init(&seq, protected_cache);
	while ((p = hash_seq_search(&seq)) != NULL)
		out = lappend_oid(out, p->relid);
	return out;
}

/*
 * The rule letting roleid (directly or through a role it has the privileges
 * of) read relid for purpose, or NULL.  A rule without quota wins over one
 * with; among quotas the largest wins.  A partition or inheritance child
 * protected through a parent follows that parent's rules as well as its own.
 */
const HpRule *
hp_rule_for(Oid roleid, Oid relid, const char *purpose)
{
	const HpRule *best = NULL;
	Oid			through = InvalidOid;

	if (!cache_valid || !oids_known || cache_provisional)
		(void) hp_policy_ready();
	if (cache_provisional && !IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("health_pass cannot decide a read of protected table \"%s\" while a parallel plan runs: its access policy changed meanwhile",
						get_rel_name(relid)),
				 errdetail("Only an earlier snapshot of the rules could be read now."),
				 errhint("Run the statement again.")));
	if (protected_cache != NULL)
	{
		HpProtected *p = hash_search(protected_cache, &relid, HASH_FIND, NULL);

		if (p)
			through = p->through;
	}
	for (int i = 0; i < nrules; i++)
	{
		const HpRule *r = &rules[i];

		if ((r->relid != relid && (r->relid != through || !OidIsValid(through))) ||
			strcmp(r->purpose, purpose) != 0)
			continue;
		if (r->grantee != roleid && !has_privs_of_role(roleid, r->grantee))
			continue;
		/*
		 * No quota wins, then the largest; among equals the lowest grantee
		 * and table oid, whatever order the rules were loaded in (so
		 * rewriting a rule cannot move a role to another rule's budget)
		 */
		if (best == NULL || r->max_subjects == 0 ||
			(best->max_subjects != 0 && r->max_subjects > best->max_subjects) ||
			(r->max_subjects == best->max_subjects &&
			 (r->grantee < best->grantee ||
			  (r->grantee == best->grantee && r->relid < best->relid))))
			best = r;
		if (best->max_subjects == 0)
			break;
	}
	return best;
}

/* The rule (grantee, relid, purpose) itself, or NULL when there is none */
const HpRule *
hp_rule_exact(Oid grantee, Oid relid, const char *purpose)
{
	if (!cache_valid || !oids_known)
		(void) hp_policy_ready();
	for (int i = 0; i < nrules; i++)
		if (rules[i].grantee == grantee && rules[i].relid == relid &&
			strcmp(rules[i].purpose, purpose) == 0)
			return &rules[i];
	return NULL;
}

/* The longest per of a rule with a quota, in microseconds; 0 if none */
int64
hp_quota_longest_period(void)
{
	int64		longest = 0;

	if (!cache_valid || !oids_known)
		(void) hp_policy_ready();
	for (int i = 0; i < nrules; i++)
		if (rules[i].max_subjects > 0 && rules[i].per_us > longest)
			longest = rules[i].per_us;
	return longest;
}

PG_FUNCTION_INFO_V1(hp_policy_changed);

/*
 * Trigger on protected_table and access_rule: invalidate every backend's
 * policy cache and, for a protected table row, that table's cached plans.
 */
Datum
hp_policy_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hp_policy_changed must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
	{
		HeapTuple	tuples[2] = {td->tg_trigtuple, td->tg_newtuple};

		for (int i = 0; i < 2; i++)
		{
			bool		isnull;
			Oid			relid;

			if (tuples[i] == NULL)
				continue;
			relid = DatumGetObjectId(heap_getattr(tuples[i], 1,
												  RelationGetDescr(td->tg_relation), &isnull));
			if (!isnull && get_rel_relkind(relid) != '\0')
				CacheInvalidateRelcacheByRelid(relid);
		}
	}
	return PointerGetDatum(NULL);
}
