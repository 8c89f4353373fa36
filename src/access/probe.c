/*
 * probe.c
 *    Existence probes through writes (docs/design/write_probes.md).
 *
 *    A write into a protected table whose key matches an existing row
 *    fails with a unique or exclusion violation, or inserts nothing under
 *    ON CONFLICT DO NOTHING: either way the writer learns that the row
 *    exists.  So the row is read, and it goes through the gate as a scan's
 *    row does (hp_gate_probe(): the statement's decision, the quota, an
 *    audit record naming that row's subject; a denied statement gets an
 *    error).
 *
 *    Where.  An internal BEFORE ROW INSERT OR UPDATE trigger on every
 *    protected table that holds rows (health_pass._write_probe(), put there
 *    by protect() and by the event trigger that protects new partitions,
 *    through health_pass._write_probe_trigger()).  ExecInsert() fires BEFORE
 *    ROW triggers before the ON CONFLICT pre-check and before the index
 *    insertions that raise unique violations, on the leaf partition after
 *    routing; COPY FROM fires them too.  protect() refuses user triggers, so
 *    no later BEFORE trigger changes the row after this one looked.  Being
 *    internal, it is not dumped, not a blocker of protect(), and PostgreSQL
 *    lets only superusers disable it; ddl.c refuses DROP and ALTER TRIGGER
 *    on protected tables.
 *
 *    The search.  For each unique or exclusion index that is ready (one
 *    being built concurrently counts: PostgreSQL checks it too): the new
 *    row's index values (expressions and predicates of indexes on a
 *    protected table are leakproof: protect() and ddl.c see to it), skipped
 *    when the predicate of a partial index is false for the row or a value
 *    is NULL (unless the index says NULLS NOT DISTINCT); then an index scan
 *    under a dirty snapshot, as PostgreSQL's own conflict check, so rows of
 *    transactions in progress count; the row being updated is not a
 *    conflict with itself.  Each row found is rechecked with the operators
 *    when the index is lossy.  The index list and each index's IndexInfo
 *    are built once per statement (the trigger's FmgrInfo lives in the
 *    query's memory).
 *
 *    Stored generated columns are computed after BEFORE triggers; a unique
 *    index that uses one is probed with the value the row will get, computed
 *    here the same way.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_am.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "storage/lmgr.h"

#include "access/hp_access.h"

#define HP_PROBE_TRIGGER_NAME "health_pass_write_probe"

/* One unique or exclusion index of the table, ready to probe */
typedef struct ProbeIndex
{
	Oid			indexoid;
	IndexInfo  *ii;
	int			nkeys;			/* key columns */
	Oid		   *procs;			/* the conflict operator's function per key column */
	uint16	   *strats;			/* and its strategy in the index */
	ExprState  *predicate;		/* of a partial index, or NULL */
	bool		deferrable;		/* checked at commit by PostgreSQL: no wait */
} ProbeIndex;

/* Per statement and table: the trigger's fn_extra, in the query's memory */
typedef struct ProbeState
{
	Oid			relid;
	EState	   *estate;			/* for index expressions and predicates */
	List	   *indexes;		/* ProbeIndex */
	TupleTableSlot *existing;	/* a row found */
	TupleTableSlot *gen;		/* the new row with its stored generated columns */
	ResultRelInfo *rri;			/* to compute them, and the partition check */
} ProbeState;

/*
 * The oid of health_pass._write_probe(); InvalidOid when missing_ok and an
 * install of a version before 0.12.0 has none (the policy cache asks so)
 */
Oid
hp_probe_function_oid(bool missing_ok)
{
	List	   *name = list_make2(makeString("health_pass"), makeString("_write_probe"));

	return LookupFuncName(name, 0, NULL, missing_ok);
}

/* The unique and exclusion indexes of rel, with what a probe needs */
static List *
probe_indexes(Relation rel, EState *estate)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, RelationGetIndexList(rel))
	{
		Oid			indexoid = lfirst_oid(lc);
		Relation	irel = index_open(indexoid, AccessShareLock);
		Form_pg_index ind = irel->rd_index;
		ProbeIndex *pi;

		/*
		 * Unique indexes of PostgreSQL are btrees (amcanunique); a unique
		 * index of another access method is not probed (docs/design/write_probes.md)
		 */
		if (!ind->indisready || (!ind->indisunique && !ind->indisexclusion) ||
			(ind->indisunique && !ind->indisexclusion && irel->rd_rel->relam != BTREE_AM_OID))
		{
			index_close(irel, AccessShareLock);
			continue;
		}
		pi = palloc0(sizeof(ProbeIndex));
		pi->indexoid = indexoid;
		pi->ii = BuildIndexInfo(irel);
		pi->nkeys = IndexRelationGetNumberOfKeyAttributes(irel);
		pi->deferrable = !ind->indimmediate;
		if (pi->ii->ii_ExclusionOps != NULL)
		{
			pi->procs = pi->ii->ii_ExclusionProcs;
			pi->strats = pi->ii->ii_ExclusionStrats;
		}
		else
		{
			/* a unique index: its equality operators, as ON CONFLICT uses them */
			BuildSpeculativeIndexInfo(irel, pi->ii);
			pi->procs = pi->ii->ii_UniqueProcs;
			pi->strats = pi->ii->ii_UniqueStrats;
		}
		if (pi->ii->ii_Predicate != NIL)
			pi->predicate = ExecPrepareQual(pi->ii->ii_Predicate, estate);
		index_close(irel, AccessShareLock);
		result = lappend(result, pi);
	}
	return result;
}

/* Does existing (found through a lossy index) really conflict? */
static bool
probe_recheck(ProbeIndex *pi, Relation irel, EState *estate, TupleTableSlot *existing,
			  Datum *values)
{
	Datum		ex_values[INDEX_MAX_KEYS];
	bool		ex_isnull[INDEX_MAX_KEYS];

	GetPerTupleExprContext(estate)->ecxt_scantuple = existing;
	FormIndexDatum(pi->ii, existing, estate, ex_values, ex_isnull);
	for (int i = 0; i < pi->nkeys; i++)
	{
		if (ex_isnull[i])
			return false;
		if (!DatumGetBool(OidFunctionCall2Coll(pi->procs[i], irel->rd_indcollation[i],
											   ex_values[i], values[i])))
			return false;
	}
	return true;
}

/*
 * Probe one index for rows new would conflict with; each is gated.  self:
 * the row an UPDATE replaces, or NULL.
 */
static void
probe_index(ProbeState *ps, ProbeIndex *pi, Relation rel, AttrNumber attnum,
			TupleTableSlot *new, ItemPointer self)
{
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	ScanKeyData keys[INDEX_MAX_KEYS];
	SnapshotData dirty;
	Relation	irel;
	IndexScanDesc scan;
	ExprContext *econtext = GetPerTupleExprContext(ps->estate);

	econtext->ecxt_scantuple = new;
	if (pi->predicate != NULL && !ExecQual(pi->predicate, econtext))
		return;
	FormIndexDatum(pi->ii, new, ps->estate, values, isnull);
	irel = index_open(pi->indexoid, AccessShareLock);
	for (int i = 0; i < pi->nkeys; i++)
	{
		if (isnull[i] && (pi->ii->ii_ExclusionOps != NULL || !pi->ii->ii_NullsNotDistinct))
		{
			index_close(irel, AccessShareLock);
			return;				/* NULL conflicts with nothing */
		}
		ScanKeyEntryInitialize(&keys[i],
							   isnull[i] ? SK_ISNULL | SK_SEARCHNULL : 0,
							   i + 1, pi->strats[i], InvalidOid,
							   irel->rd_indcollation[i], pi->procs[i],
							   isnull[i] ? (Datum) 0 : values[i]);
	}
restart:
	InitDirtySnapshot(dirty);
	scan = index_beginscan(rel, irel, &dirty, pi->nkeys, 0);
	index_rescan(scan, keys, pi->nkeys, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, ps->existing))
	{
		TransactionId xwait;

		CHECK_FOR_INTERRUPTS();
		if (self != NULL && ItemPointerEquals(&ps->existing->tts_tid, self))
			continue;
		if (scan->xs_recheck &&
			!probe_recheck(pi, irel, ps->estate, ps->existing, values))
			continue;

		/*
		 * A row another transaction is inserting or deleting: wait for it
		 * to end and look again, as PostgreSQL's own check does (a row that
		 * is rolled back was never there: a legitimate write must not be
		 * refused for it, nor its subject recorded)
		 */
		xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;

		/*
		 * A deferrable constraint: PostgreSQL does not wait here (it checks
		 * at commit), so neither do we; but skipping the row let a writer
		 * learn at commit, unrecorded, that a key another session was
		 * writing exists (a reviewer's).  So it is gated as it stands.
		 */
		if (TransactionIdIsValid(xwait) && !pi->deferrable)
		{
			ItemPointerData ctid = ps->existing->tts_tid;
			uint32		token = dirty.speculativeToken;

			index_endscan(scan);
			ExecClearTuple(ps->existing);
			if (token != 0)
				SpeculativeInsertionWait(dirty.xmin, token);
			else
				XactLockTableWait(xwait, rel, &ctid, XLTW_InsertIndex);
			goto restart;
		}
		hp_gate_probe(ps->estate, rel, attnum, ps->existing);
	}
	index_endscan(scan);
	ExecClearTuple(ps->existing);
	index_close(irel, AccessShareLock);
}

/* The state of this statement's trigger calls on rel, made on first call */
static ProbeState *
probe_state(FunctionCallInfo fcinfo, Relation rel)
{
	ProbeState *ps = fcinfo->flinfo->fn_extra;
	MemoryContext old;
	TupleDesc	desc;

	if (ps != NULL && ps->relid == RelationGetRelid(rel))
		return ps;
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	ps = palloc0(sizeof(ProbeState));
	ps->relid = RelationGetRelid(rel);
	ps->estate = CreateExecutorState();
	/* freed with the query's memory, where this state lives */
	MemoryContextSwitchTo(ps->estate->es_query_cxt);
	ps->indexes = probe_indexes(rel, ps->estate);

	/*
	 * Slots over a copy of the row type: one over the relation's own would
	 * pin it, and nothing drops these slots but the end of the query's
	 * memory (the pin would outlive it)
	 */
	desc = CreateTupleDescCopy(RelationGetDescr(rel));
	ps->existing = MakeSingleTupleTableSlot(desc, table_slot_callbacks(rel));
	ps->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ps->rri, rel, 1, NULL, 0);
	if (rel->rd_att->constr && rel->rd_att->constr->has_generated_stored)
		ps->gen = MakeSingleTupleTableSlot(desc, table_slot_callbacks(rel));
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = ps;
	return ps;
}

PG_FUNCTION_INFO_V1(hp_write_probe);
/*
 * health_pass._write_probe() RETURNS trigger: BEFORE ROW INSERT OR UPDATE
 * on a protected table.  Returns the row unchanged.
 */
Datum
hp_write_probe(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleTableSlot *new;
	HeapTuple	result;
	ItemPointer self = NULL;
	AttrNumber	attnum;
	ProbeState *ps;
	ListCell   *lc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("health_pass._write_probe() must be a BEFORE ROW INSERT OR UPDATE trigger")));
	rel = td->tg_relation;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		new = td->tg_newslot;
		result = td->tg_newtuple;
		self = &td->tg_trigtuple->t_self;
	}
	else
	{
		new = td->tg_trigslot;
		result = td->tg_trigtuple;
	}
	attnum = hp_protected_attnum(RelationGetRelid(rel));
	if (attnum <= 0)
		return PointerGetDatum(result);	/* unprotected meanwhile */
	/*
	 * Without its subject column no row can be gated: every write fails,
	 * not only one whose key matches a row (which would tell that it does;
	 * ddl.c refuses to drop it, a superuser may)
	 */
	if (attnum > RelationGetDescr(rel)->natts ||
		TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attisdropped)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("subject column %d of protected table \"%s\" no longer exists",
						attnum, RelationGetRelationName(rel)),
				 errhint("Call health_pass.protect() again with the new subject column.")));
	ps = probe_state(fcinfo, rel);
	if (ps->indexes == NIL)
		return PointerGetDatum(result);

	/*
	 * An update that moves the row to another partition deletes it here and
	 * inserts it there, where this trigger probes it as an insert: its key
	 * is no conflict with this partition's rows
	 */
	if (self != NULL && rel->rd_rel->relispartition &&
		!ExecPartitionCheck(ps->rri, new, ps->estate, false))
		return PointerGetDatum(result);

	/* the row as it will be stored: its stored generated columns too */
	if (ps->gen != NULL)
	{
		/* all of them, as for an insert: an update's are the same function of the row */
		ExecCopySlot(ps->gen, new);
		ExecComputeStoredGenerated(ps->rri, ps->estate, ps->gen, CMD_INSERT);
		new = ps->gen;
	}
	foreach(lc, ps->indexes)
	{
		probe_index(ps, lfirst(lc), rel, attnum, new, self);
		ResetPerTupleExprContext(ps->estate);
	}
	if (new == ps->gen)
		ExecClearTuple(ps->gen);
	return PointerGetDatum(result);
}

/*
 * The write-probe trigger on relid (internal, running function funcoid), or
 * InvalidOid; *enabled gets its tgenabled when not NULL.  Also the policy
 * cache's test (policy.c).
 */
Oid
hp_probe_trigger(Oid relid, Oid funcoid, char *enabled)
{
	Relation	cat = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			found = InvalidOid;

	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(cat, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);

		if (t->tgfoid == funcoid && t->tgisinternal)
		{
			found = t->oid;
			if (enabled)
				*enabled = t->tgenabled;
		}
	}
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
	return found;
}

PG_FUNCTION_INFO_V1(hp_write_probe_trigger);
/*
 * health_pass._write_probe_trigger(tbl regclass, present boolean): put the
 * write-probe trigger on tbl (an ordinary table; other kinds hold no rows
 * of their own or are not gated) or take it off.  Called by protect(),
 * unprotect() and the event trigger that protects new partitions.
 */
Datum
hp_write_probe_trigger(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		present = PG_GETARG_BOOL(1);
	Oid			funcoid = hp_probe_function_oid(false);
	Oid			trig;

	if (get_rel_relkind(relid) != RELKIND_RELATION)
		PG_RETURN_VOID();
	trig = hp_probe_trigger(relid, funcoid, NULL);
	if (present && !OidIsValid(trig))
	{
		CreateTrigStmt *stmt = makeNode(CreateTrigStmt);

		stmt->trigname = HP_PROBE_TRIGGER_NAME;
		stmt->funcname = list_make2(makeString("health_pass"), makeString("_write_probe"));
		stmt->row = true;
		stmt->timing = TRIGGER_TYPE_BEFORE;
		stmt->events = TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE;
		(void) CreateTrigger(stmt, NULL, relid, InvalidOid, InvalidOid, InvalidOid,
							 funcoid, InvalidOid, NULL, true, false);
		CommandCounterIncrement();
	}
	else if (!present && OidIsValid(trig))
	{
		ObjectAddress addr;

		ObjectAddressSet(addr, TriggerRelationId, trig);
		performDeletion(&addr, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
		CommandCounterIncrement();
	}
	PG_RETURN_VOID();
}
