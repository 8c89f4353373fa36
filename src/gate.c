/*
 * gate.c
 *    The read gate.  After the executor starts a query, every scan node of a
 *    protected table gets its ExecProcNode wrapped: each row it produces,
 *    after the query's own quals, is checked against the statement's
 *    decision (allowed, denied, break glass), the role's quota, and queued
 *    for the audit log before it can travel further up the plan.  Nothing
 *    here applies to superusers or to plans that are only explained.
 *    The recheck plans that EvalPlanQual runs after a concurrent update
 *    (FOR UPDATE/SHARE, UPDATE/DELETE ... RETURNING) are gated the same way.
 *
 *    A "statement" is a top-level execution (a query, a cursor, one
 *    statement of a procedure); queries run inside it (functions, views of
 *    functions) share its statement id, decisions and seen subjects.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hp_access.h"

/* Per statement: who reads, why, and what was decided per table */
typedef struct HpStmt
{
	int64		id;
	Oid			reader;
	char		purpose[HP_PURPOSE_LEN];
	bool		break_glass;
	char		reason[HP_REASON_LEN];
	HpRecord	tmpl;			/* session fields, filled once */
	List	   *gates;			/* HpGate per protected table */
	MemoryContext cxt;
} HpStmt;

/* Per (statement, protected table) */
typedef struct HpGate
{
	Oid			relid;
	AttrNumber	attnum;
	HpOutcome	mode;			/* allowed, denied or break_glass */
	int			max_subjects;	/* 0: no quota */
	int64		per_us;
	FmgrInfo	out;			/* subject column output function */
	bool		have_first;		/* the first subject audited, kept inline */
	bool		first_null;
	uint64		first_hash;
	char	   *first;
	HTAB	   *seen;			/* from the second subject on: hash -> subject */
	MemoryContext rowcxt;		/* reset per row */
	HpStmt	   *stmt;
} HpGate;

typedef struct HpSeen
{
	uint64		hash;
	char	   *subject;		/* NULL for a NULL subject */
} HpSeen;

/*
 * A wrapped node: a scan of a protected table (gate set), or a node that
 * may run an EvalPlanQual recheck (epq set: LockRows, or ModifyTable with
 * RETURNING), wrapped until its first call builds and gates the recheck plan
 */
typedef struct HpScan
{
	PlanState  *ps;
	ExecProcNodeMtd real;
	HpGate	   *gate;
	AttrNumber	slot_attnum;	/* attribute in the node's scan slot */
	EPQState   *epq;
	HpStmt	   *stmt;
	MemoryContext owner;
} HpScan;

/* A wrapped ON CONFLICT DO UPDATE expression: its SET list or its WHERE */
typedef struct HpUpsert
{
	ExprState  *state;
	ExprStateEvalFunc real;
	HpGate	   *gate;
	MemoryContext owner;
} HpUpsert;

/* A statement bound to the executor state that owns it */
typedef struct HpOwner
{
	EState	   *estate;
	HpStmt	   *stmt;
} HpOwner;

static ExecutorStart_hook_type prev_start = NULL;
static ExecutorRun_hook_type prev_run = NULL;
static ExecutorFinish_hook_type prev_finish = NULL;

static List *scans = NIL;		/* HpScan *, in TopMemoryContext */
static List *upserts = NIL;		/* HpUpsert *, in TopMemoryContext */
static List *owners = NIL;		/* HpOwner *, in TopMemoryContext */
static int	depth = 0;
static EState *top_estate = NULL;

/* Break glass: role, reason; cleared at the end of the transaction */
static Oid	bg_role = InvalidOid;
static char bg_reason[HP_REASON_LEN];

/* Break glass in force for roleid in this transaction? */
bool
hp_break_glass_active(Oid roleid, const char **reason)
{
	if (!OidIsValid(bg_role) || bg_role != roleid)
		return false;
	*reason = bg_reason;
	return true;
}

/* Forget the scans and statement of an executor state being freed */
static void
hp_forget(void *arg)
{
	MemoryContext cxt = (MemoryContext) arg;
	ListCell   *lc;

	foreach(lc, scans)
	{
		HpScan	   *s = lfirst(lc);

		if (s->owner == cxt)
		{
			scans = foreach_delete_current(scans, lc);
			pfree(s);
		}
	}
	foreach(lc, upserts)
	{
		HpUpsert   *u = lfirst(lc);

		if (u->owner == cxt)
		{
			upserts = foreach_delete_current(upserts, lc);
			pfree(u);
		}
	}
	foreach(lc, owners)
	{
		HpOwner    *o = lfirst(lc);

		if (o->estate->es_query_cxt == cxt)
		{
			owners = foreach_delete_current(owners, lc);
			pfree(o);
		}
	}
}

/* Arrange for hp_forget when estate's memory goes away */
static void
hp_watch(EState *estate)
{
	MemoryContextCallback *cb = MemoryContextAlloc(estate->es_query_cxt, sizeof(*cb));

	cb->func = hp_forget;
	cb->arg = estate->es_query_cxt;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, cb);
}

/* The statement owned by estate, if any */
static HpStmt *
hp_stmt_of(EState *estate)
{
	ListCell   *lc;

	foreach(lc, owners)
	{
		HpOwner    *o = lfirst(lc);

		if (o->estate == estate)
			return o->stmt;
	}
	return NULL;
}

/*
 * Fill st->tmpl, the fields every record of the statement shares.  The
 * session part (users, address, application) is computed once and reused
 * while the roles and application_name stay the same.
 */
static void
hp_stmt_template(HpStmt *st)
{
	static HpRecord cached;
	static bool valid = false;
	static Oid	cached_outer = InvalidOid;
	static Oid	cached_session = InvalidOid;

	if (!valid || cached_outer != GetOuterUserId() || cached_session != GetSessionUserId() ||
		strncmp(cached.application_name, application_name ? application_name : "",
				HP_APPNAME_LEN - 1) != 0)
	{
		hp_record_session(&cached);
		cached_outer = GetOuterUserId();
		cached_session = GetSessionUserId();
		valid = true;
	}
	st->tmpl = cached;
	st->tmpl.statement_id = st->id;
	strlcpy(st->tmpl.purpose, st->purpose, HP_PURPOSE_LEN);
}

/* A new statement owned by estate */
static HpStmt *
hp_stmt_new(EState *estate, Oid reader)
{
	HpStmt	   *st = MemoryContextAllocZero(estate->es_query_cxt, sizeof(HpStmt));
	HpOwner    *o = MemoryContextAlloc(TopMemoryContext, sizeof(HpOwner));
	const char *reason;

	st->cxt = estate->es_query_cxt;
	st->id = hp_next_statement_id();
	st->reader = reader;
	strlcpy(st->purpose, hp_purpose ? hp_purpose : "", HP_PURPOSE_LEN);
	st->break_glass = hp_break_glass_active(reader, &reason);
	if (st->break_glass)
		strlcpy(st->reason, reason, HP_REASON_LEN);
	hp_stmt_template(st);

	o->estate = estate;
	o->stmt = st;
	owners = lappend(owners, o);
	hp_watch(estate);
	return st;
}

/* Queue one record of st for relid */
static void
hp_audit(HpStmt *st, Oid relid, HpOutcome outcome, const char *subject, const char *reason)
{
	HpRecord	rec = st->tmpl;

	rec.logged_at = GetCurrentTimestamp();
	rec.relid = relid;
	rec.outcome = (uint8) outcome;
	rec.subject_null = (subject == NULL);
	strlcpy(rec.subject, subject ? subject : "", HP_SUBJECT_LEN);
	strlcpy(rec.reason, reason ? reason : "", HP_REASON_LEN);
	hp_enqueue(&rec);
}

/* The gate of st for relid, deciding (and auditing a denial) on first use */
static HpGate *
hp_gate_get(HpStmt *st, Oid relid, AttrNumber attnum)
{
	ListCell   *lc;
	HpGate	   *g;
	Oid			typoid,
				outfn;
	bool		varlena;

	foreach(lc, st->gates)
	{
		g = lfirst(lc);
		if (g->relid == relid)
			return g;
	}

	g = MemoryContextAllocZero(st->cxt, sizeof(HpGate));
	g->relid = relid;
	g->attnum = attnum;
	g->stmt = st;
	typoid = get_atttype(relid, attnum);
	if (!OidIsValid(typoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("subject column %d of protected table \"%s\" no longer exists",
						attnum, get_rel_name(relid)),
				 errhint("Call health_pass.protect() again with the new subject column.")));
	getTypeOutputInfo(typoid, &outfn, &varlena);
	fmgr_info_cxt(outfn, &g->out, st->cxt);
	g->rowcxt = AllocSetContextCreate(st->cxt, "health_pass row", ALLOCSET_SMALL_SIZES);
	st->gates = lappend(st->gates, g);

	if (st->break_glass)
		g->mode = HP_BREAK_GLASS;
	else if (st->purpose[0] == '\0')
	{
		g->mode = HP_DENIED;
		hp_audit(st, relid, HP_DENIED, NULL, "no purpose declared (SET health_pass.purpose)");
	}
	else
	{
		const HpRule *r = hp_rule_for(st->reader, relid, st->purpose);

		if (r == NULL)
		{
			g->mode = HP_DENIED;
			hp_audit(st, relid, HP_DENIED, NULL, "no rule allows this role and purpose");
		}
		else
		{
			g->mode = HP_ALLOWED;
			g->max_subjects = r->max_subjects;
			g->per_us = r->per_us;
		}
	}
	return g;
}

/* Refuse the row of a subject beyond the quota, after auditing it */
static void
hp_quota_refuse(HpGate *g, const char *subject, int count)
{
	char		reason[HP_REASON_LEN];

	snprintf(reason, sizeof(reason), "read %d distinct subjects within the last %lld s (max %d)",
			 count, (long long) (g->per_us / USECS_PER_SEC), g->max_subjects);
	hp_audit(g->stmt, g->relid, HP_QUOTA_EXCEEDED, subject, reason);
	ereport(ERROR,
			(errcode(ERRCODE_HP_QUOTA_EXCEEDED),
			 errmsg("health_pass quota exceeded for \"%s\"", get_rel_name(g->relid)),
			 errdetail("This role already read %d distinct subjects of this table within the rule's period; its rule allows %d.",
					   count, g->max_subjects),
			 errhint("Wait for the period to pass, or ask for a rule with a larger max_subjects.")));
}

/* Audit one row's subject unless this statement already did */
static void
hp_gate_row(HpGate *g, TupleTableSlot *slot, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attnum, &isnull);
	MemoryContext old = MemoryContextSwitchTo(g->rowcxt);
	char	   *subject = isnull ? NULL : OutputFunctionCall(&g->out, d);
	size_t		len = subject ? strlen(subject) : 0;
	uint64		h;
	HpSeen	   *seen;
	bool		found;

	if (len >= HP_SUBJECT_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("subject value of protected table \"%s\" is longer than %d bytes and cannot be audited",
						get_rel_name(g->relid), HP_SUBJECT_LEN - 1)));
	h = subject ? hash_bytes_extended((const unsigned char *) subject, len, 1) : 0;
	if (!g->have_first)
	{
		/* most statements read one subject: no hash table for them */
		found = false;
		seen = NULL;
	}
	else if (g->first_hash == h && g->first_null == (subject == NULL) &&
			 (subject == NULL || strcmp(g->first, subject) == 0))
		found = true;
	else
	{
		if (g->seen == NULL)
		{
			HASHCTL		ctl;
			HpSeen	   *f;

			ctl.keysize = sizeof(uint64);
			ctl.entrysize = sizeof(HpSeen);
			ctl.hcxt = g->stmt->cxt;
			g->seen = hash_create("health_pass seen subjects", 256, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
			f = hash_search(g->seen, &g->first_hash, HASH_ENTER, NULL);
			f->subject = g->first;
		}
		seen = hash_search(g->seen, &h, HASH_ENTER, &found);
		if (found && !((seen->subject == NULL) == (subject == NULL) &&
					   (subject == NULL || strcmp(seen->subject, subject) == 0)))
			found = false;		/* a 64-bit collision: audit it again */
		else if (!found)
			seen->subject = NULL;
	}
	if (found)
	{
		MemoryContextSwitchTo(old);
		MemoryContextReset(g->rowcxt);
		return;
	}

	if (g->mode == HP_ALLOWED && g->max_subjects > 0)
	{
		int			count;

		if (!hp_quota_admit(g->stmt->reader, g->relid, h,
							g->max_subjects, g->per_us, &count))
		{
			if (seen)
				hash_search(g->seen, &h, HASH_REMOVE, NULL);
			hp_quota_refuse(g, subject, count);
		}
	}
	hp_audit(g->stmt, g->relid, g->mode, subject,
			 g->mode == HP_BREAK_GLASS ? g->stmt->reason : NULL);
	if (!g->have_first)
	{
		g->have_first = true;
		g->first_hash = h;
		g->first_null = (subject == NULL);
		g->first = subject ? MemoryContextStrdup(g->stmt->cxt, subject) : NULL;
	}
	else if (seen && subject)
		seen->subject = MemoryContextStrdup(g->stmt->cxt, subject);
	MemoryContextSwitchTo(old);
	MemoryContextReset(g->rowcxt);
}

/* The wrapping of node ps */
static HpScan *
hp_scan_of(PlanState *ps)
{
	ListCell   *lc;

	foreach(lc, scans)
	{
		HpScan	   *c = lfirst(lc);

		if (c->ps == ps)
			return c;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("health_pass lost track of a protected scan")));
	return NULL;				/* not reached */
}

/*
 * The row a scan node just produced, as read from the table.  Normally its
 * scan slot; in an EvalPlanQual recheck the executor hands the node the
 * row version under test instead, which ExecScan leaves in the expression
 * context when it projects and returns itself when it does not.
 */
static TupleTableSlot *
hp_scanned_row(PlanState *ps, TupleTableSlot *out)
{
	if (ps->state->es_epq_active == NULL)
		return ((ScanState *) ps)->ss_ScanTupleSlot;
	return ps->ps_ProjInfo ? ps->ps_ExprContext->ecxt_scantuple : out;
}

/* Wrapped ExecProcNode of a protected scan */
static TupleTableSlot *
hp_scan_exec(PlanState *ps)
{
	HpScan	   *s = hp_scan_of(ps);
	TupleTableSlot *slot;

	if (s->gate->mode == HP_DENIED)
	{
		/*
		 * A foreign-key check or cascade (they run with NOFORCE_RLS) would
		 * take a hidden row for a missing one: let an orphan in, a parent
		 * go, or a cascade skip its rows.  Fail instead.
		 */
		if (InNoForceRLSOperation())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("no health_pass rule lets this role read protected table \"%s\" for a foreign-key check or action",
							get_rel_name(s->gate->relid)),
					 errdetail("Rows the rules hide would look missing to the constraint."),
					 errhint("Declare a purpose a rule allows (SET health_pass.purpose) before changing rows that reference, or are referenced by, this table.")));
		return NULL;			/* the query sees an empty table */
	}

	slot = s->real(ps);
	if (!TupIsNull(slot))
		hp_gate_row(s->gate, hp_scanned_row(ps, slot), s->slot_attnum);
	return slot;
}

/* Attribute number of the subject in an index-only scan's slot, or 0 */
static AttrNumber
hp_index_only_attnum(IndexOnlyScanState *ios, AttrNumber attnum)
{
	Relation	index = ios->ioss_RelationDesc;

	for (int i = 0; index && i < index->rd_index->indnatts; i++)
		if (index->rd_index->indkey.values[i] == attnum)
			return i + 1;
	return InvalidAttrNumber;
}

typedef struct HpWalk
{
	HpStmt	   *stmt;
	EState	   *owner;
	Oid			reader;
	bool		wrapped;		/* some scan of this plan was wrapped */
	List	   *epq;			/* nodes that may recheck rows (EvalPlanQual) */
} HpWalk;

/* The statement the walked plan belongs to, created on first need */
static void
hp_walk_stmt(HpWalk *w)
{
	if (w->stmt == NULL)
	{
		w->stmt = hp_stmt_of(w->owner);
		if (w->stmt == NULL)
			w->stmt = hp_stmt_new(w->owner, w->reader);
	}
}

/*
 * Wrapped evaluation of an ON CONFLICT DO UPDATE expression.  The executor
 * puts the existing row, which the update reads, in the scan tuple: it is
 * gated and audited like a row from a scan, and a denied role gets an
 * error (the row exists; hiding it would turn the upsert into a failed
 * insert).  The executor may replace evalfunc after a first call; the
 * wrapper puts itself back.
 */
static Datum
hp_upsert_eval(ExprState *state, ExprContext *econtext, bool *isnull)
{
	HpUpsert   *u = NULL;
	ListCell   *lc;
	Datum		d;

	foreach(lc, upserts)
	{
		HpUpsert   *c = lfirst(lc);

		if (c->state == state)
		{
			u = c;
			break;
		}
	}
	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("health_pass lost track of an ON CONFLICT DO UPDATE")));
	if (u->gate->mode == HP_DENIED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no health_pass rule lets this role read the row of protected table \"%s\" that ON CONFLICT DO UPDATE would change",
						get_rel_name(u->gate->relid)),
				 errhint("Declare a purpose a rule allows (SET health_pass.purpose).")));
	hp_gate_row(u->gate, econtext->ecxt_scantuple, u->gate->attnum);
	d = u->real(state, econtext, isnull);
	if (state->evalfunc != hp_upsert_eval)
	{
		u->real = state->evalfunc;
		state->evalfunc = hp_upsert_eval;
	}
	return d;
}

/* Wrap one ON CONFLICT DO UPDATE expression of a protected table */
static void
hp_wrap_upsert_expr(ExprState *state, HpGate *gate, MemoryContext owner)
{
	HpUpsert   *u = MemoryContextAlloc(TopMemoryContext, sizeof(HpUpsert));

	u->state = state;
	u->real = state->evalfunc;
	u->gate = gate;
	u->owner = owner;
	upserts = lappend(upserts, u);
	state->evalfunc = hp_upsert_eval;
}

/*
 * INSERT ... ON CONFLICT DO UPDATE reads the existing row it updates (and
 * RETURNING can send it back): gate its SET list and WHERE.  Through a
 * partitioned table the partitions' upsert state is built while the insert
 * runs, out of reach here, so that is refused when a partition is protected.
 */
static void
hp_wrap_upserts(ModifyTableState *mt, HpWalk *w)
{
	if (((ModifyTable *) mt->ps.plan)->onConflictAction != ONCONFLICT_UPDATE)
		return;
	for (int i = 0; i < mt->mt_nrels; i++)
	{
		ResultRelInfo *rri = &mt->resultRelInfo[i];
		Relation	rel = rri->ri_RelationDesc;
		Oid			relid = RelationGetRelid(rel);
		AttrNumber	attnum;
		HpGate	   *gate;

		if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		{
			ListCell   *lc;

			foreach(lc, find_all_inheritors(relid, NoLock, NULL))
				if (hp_protected_attnum(lfirst_oid(lc)) > 0)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("INSERT ... ON CONFLICT DO UPDATE through partitioned table \"%s\" is not supported: its partition \"%s\" is protected",
									RelationGetRelationName(rel), get_rel_name(lfirst_oid(lc))),
							 errhint("Insert into the partition itself.")));
			continue;
		}
		attnum = hp_protected_attnum(relid);
		if (attnum <= 0 || rri->ri_onConflict == NULL || rri->ri_onConflict->oc_ProjInfo == NULL)
			continue;
		hp_walk_stmt(w);
		gate = hp_gate_get(w->stmt, relid, attnum);
		w->wrapped = true;
		if (rri->ri_onConflict->oc_WhereClause)
			hp_wrap_upsert_expr(rri->ri_onConflict->oc_WhereClause, gate,
								mt->ps.state->es_query_cxt);
		hp_wrap_upsert_expr(&rri->ri_onConflict->oc_ProjInfo->pi_state, gate,
							mt->ps.state->es_query_cxt);
	}
}

/* Wrap one scan node of a protected table */
static void
hp_wrap_scan(PlanState *ps, Relation rel, AttrNumber attnum, HpWalk *w)
{
	HpScan	   *s;
	AttrNumber	slot_attnum = attnum;

	if (IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("protected table \"%s\" cannot be read by a parallel worker",
						RelationGetRelationName(rel))));
	if (IsA(ps, IndexOnlyScanState))
	{
		slot_attnum = hp_index_only_attnum((IndexOnlyScanState *) ps, attnum);
		if (slot_attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("index-only scan of protected table \"%s\" lacks its subject column",
							RelationGetRelationName(rel)),
					 errhint("Prepare the statement again; plans made since protect() avoid such scans.")));
	}
	else if (!IsA(ps, SeqScanState) && !IsA(ps, IndexScanState) &&
			 !IsA(ps, BitmapHeapScanState) && !IsA(ps, TidScanState) &&
			 !IsA(ps, TidRangeScanState) && !IsA(ps, SampleScanState))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("health_pass cannot gate this kind of scan of protected table \"%s\"",
						RelationGetRelationName(rel))));

	hp_walk_stmt(w);
	s = MemoryContextAlloc(TopMemoryContext, sizeof(HpScan));
	s->ps = ps;
	s->real = ps->ExecProcNodeReal;
	s->slot_attnum = slot_attnum;
	s->owner = ps->state->es_query_cxt;
	s->gate = NULL;
	scans = lappend(scans, s);
	w->wrapped = true;
	s->gate = hp_gate_get(w->stmt, RelationGetRelid(rel), attnum);
	ps->ExecProcNodeReal = hp_scan_exec;
}

/* planstate_tree_walker callback: find scans of protected tables */
static bool
hp_walk(PlanState *ps, void *arg)
{
	HpWalk	   *w = (HpWalk *) arg;

	if (ps == NULL)
		return false;
	if (IsA(ps, SeqScanState) || IsA(ps, IndexScanState) ||
		IsA(ps, IndexOnlyScanState) || IsA(ps, BitmapHeapScanState) ||
		IsA(ps, TidScanState) || IsA(ps, TidRangeScanState) ||
		IsA(ps, SampleScanState) || IsA(ps, CustomScanState) ||
		IsA(ps, ForeignScanState))
	{
		Relation	rel = ((ScanState *) ps)->ss_currentRelation;
		AttrNumber	attnum = rel ? hp_protected_attnum(RelationGetRelid(rel)) : 0;

		if (attnum > 0)
			hp_wrap_scan(ps, rel, attnum, w);
	}
	else if (IsA(ps, ModifyTableState))
	{
		ModifyTableState *mt = (ModifyTableState *) ps;

		hp_wrap_upserts(mt, w);
		/* without RETURNING, a rechecked row goes nowhere */
		if ((mt->operation == CMD_UPDATE || mt->operation == CMD_DELETE) &&
			((ModifyTable *) ps->plan)->returningLists != NIL)
			w->epq = lappend(w->epq, ps);
	}
	else if (IsA(ps, LockRowsState))
		w->epq = lappend(w->epq, ps);
	return planstate_tree_walker(ps, hp_walk, arg);
}

static TupleTableSlot *hp_epq_exec(PlanState *ps);

/* Wrap the nodes the walk found that may recheck rows, once it gated a scan */
static void
hp_wrap_epq_nodes(HpWalk *w)
{
	ListCell   *lc;

	if (!w->wrapped)
		return;
	foreach(lc, w->epq)
	{
		PlanState  *ps = lfirst(lc);
		HpScan	   *s = MemoryContextAllocZero(TopMemoryContext, sizeof(HpScan));

		s->ps = ps;
		s->real = ps->ExecProcNodeReal;
		s->epq = IsA(ps, LockRowsState) ? &((LockRowsState *) ps)->lr_epqstate :
			&((ModifyTableState *) ps)->mt_epqstate;
		s->stmt = w->stmt;
		s->owner = ps->state->es_query_cxt;
		scans = lappend(scans, s);
		ps->ExecProcNodeReal = hp_epq_exec;
	}
}

/*
 * First call of a node that may recheck a row with EvalPlanQual: after a
 * concurrent update, SELECT ... FOR UPDATE/SHARE and UPDATE or DELETE ...
 * RETURNING return the row's newest version, read by a separate recheck
 * plan that the executor builds when the first such row comes.  Build it
 * now and gate its scans like the main plan's, so the newest version is
 * audited (its subject may have changed); then step out of the way.
 */
static TupleTableSlot *
hp_epq_exec(PlanState *ps)
{
	HpScan	   *s = hp_scan_of(ps);
	EPQState   *epq = s->epq;
	ExecProcNodeMtd real = s->real;
	HpStmt	   *stmt = s->stmt;

	/* a one-time wrapper: unwrap and forget it */
	ps->ExecProcNodeReal = real;
	if (ps->ExecProcNode == hp_epq_exec)
		ps->ExecProcNode = real;
	scans = list_delete_ptr(scans, s);
	pfree(s);
	if (epq->recheckestate == NULL && epq->plan != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(epq->parentestate->es_query_cxt);
		HpWalk		w = {.stmt = stmt, .owner = epq->parentestate, .reader = stmt->reader};

		EvalPlanQualBegin(epq);
		MemoryContextSwitchTo(old);
		hp_walk(epq->recheckplanstate, &w);
		/* the recheck plan's memory goes at the end of the node */
		if (w.wrapped)
			hp_watch(epq->recheckestate);
		hp_wrap_epq_nodes(&w);
	}
	return real(ps);
}

/* ExecutorStart hook: wrap the protected scans of the new plan */
static void
hp_executor_start(QueryDesc *qd, int eflags)
{
	HpWalk		w;

	if (prev_start)
		prev_start(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	w.reader = GetOuterUserId();
	if (superuser_arg(w.reader) || !hp_any_protected())
		return;
	w.stmt = NULL;
	w.wrapped = false;
	w.epq = NIL;
	/* a query nested in a running one belongs to the outer statement */
	w.owner = (depth > 0 && top_estate) ? top_estate : qd->estate;
	hp_walk(qd->planstate, &w);
	hp_wrap_epq_nodes(&w);
	/* the wrapped scans die with this plan's memory, the statement may not */
	if (w.wrapped && w.owner != qd->estate)
		hp_watch(qd->estate);
}

/* ExecutorRun hook: track nesting; hold rows back under audit_sync */
static void
hp_executor_run(QueryDesc *qd, ScanDirection dir, uint64 count, bool once)
{
	EState	   *saved_top = top_estate;
	DestReceiver *saved_dest = NULL;

	if (depth == 0)
	{
		top_estate = qd->estate;
		if (hp_audit_sync && !superuser_arg(GetOuterUserId()) && hp_any_protected())
			hp_send_wrap(qd, &saved_dest);
	}
	depth++;
	PG_TRY();
	{
		if (prev_run)
			prev_run(qd, dir, count, once);
		else
			standard_ExecutorRun(qd, dir, count, once);
	}
	PG_FINALLY();
	{
		depth--;
		top_estate = saved_top;
		if (saved_dest)
			hp_send_unwrap(qd, saved_dest);
	}
	PG_END_TRY();
}

/* ExecutorFinish hook: queries run by AFTER triggers are nested too */
static void
hp_executor_finish(QueryDesc *qd)
{
	EState	   *saved_top = top_estate;

	if (depth == 0)
		top_estate = qd->estate;
	depth++;
	PG_TRY();
	{
		if (prev_finish)
			prev_finish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_FINALLY();
	{
		depth--;
		top_estate = saved_top;
	}
	PG_END_TRY();
}

/* End of transaction: break glass ends; nesting state resets on abort */
static void
hp_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		bg_role = InvalidOid;
		bg_reason[0] = '\0';
	}
	if (event == XACT_EVENT_ABORT)
	{
		depth = 0;
		top_estate = NULL;
	}
}

/* Install the executor hooks; called from _PG_init when preloaded */
void
hp_gate_init(void)
{
	prev_start = ExecutorStart_hook;
	ExecutorStart_hook = hp_executor_start;
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = hp_executor_run;
	prev_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = hp_executor_finish;
	RegisterXactCallback(hp_xact_callback, NULL);
}

PG_FUNCTION_INFO_V1(hp_break_glass);

/*
 * break_glass(reason): until the end of this transaction the calling role
 * reads protected tables outside its rules, every read audited as
 * break_glass with this reason.  Who may call it is who has EXECUTE on it.
 */
Datum
hp_break_glass(PG_FUNCTION_ARGS)
{
	char	   *reason = text_to_cstring(PG_GETARG_TEXT_PP(0));

	hp_require_preload();
	if (!IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("break_glass() lasts until the end of the transaction, so it must be called inside BEGIN ... COMMIT")));
	while (*reason == ' ')
		reason++;
	if (strlen(reason) < 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("break_glass() needs a reason of at least 3 characters")));
	bg_role = GetOuterUserId();
	strlcpy(bg_reason, reason, HP_REASON_LEN);
	ereport(NOTICE,
			(errmsg("break glass in force until the end of this transaction; every read of a protected table is audited with your reason")));
	PG_RETURN_VOID();
}
