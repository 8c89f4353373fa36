/*
 * gate.c
 *    The read gate.  After the executor starts a query, every scan node of a
 *    protected table gets its ExecProcNode wrapped: each row the table
 *    yields is checked against the statement's decision (allowed, denied,
 *    break glass), the role's quota, and queued for the audit log before any
 *    code that is not LEAKPROOF sees it.  The scan's own quals are split as
 *    PostgreSQL splits them for row-level security (contain_leaked_vars()):
 *    leakproof ones (and index conditions) still run inside the scan, before
 *    the gate; the others, and the scan's projection, run in the wrapper on
 *    rows the gate let through.  The recheck plans that EvalPlanQual runs
 *    after a concurrent update (FOR UPDATE/SHARE, UPDATE/DELETE ...
 *    RETURNING) are gated the same way.
 *
 *    Superusers and roles with BYPASSRLS are not gated but audited: every
 *    subject they read is recorded with outcome "superuser" (unless a
 *    superuser switched health_pass.audit_superusers off, which is then
 *    recorded once per statement and table).
 *
 *    A "statement" is a top-level execution (a query, a cursor, one
 *    statement of a procedure); queries run inside it (functions, views of
 *    functions) share its statement id, decisions and seen subjects.
 *
 *    Lifetimes.  Everything that describes a wrapped node (HpScan, HpUpsert,
 *    late quals) lives in the es_query_cxt of the executor state that owns
 *    the node, and dies with it.  A statement (HpStmt, its gates and seen
 *    subjects) lives in a memory context of its own, reference-counted by
 *    every executor state that uses it: a cursor opened inside a function
 *    keeps the statement alive after the function's query ended.  The only
 *    global structure is one hash table in TopMemoryContext from a node,
 *    expression or executor state to its description.  Each executor state
 *    gets a reset callback (HpEstate) BEFORE anything of it is entered in
 *    that table, and lists every key it entered, so an error at any point
 *    leaves no entry behind that outlives its memory.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/subscripting.h"
#include "optimizer/clauses.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/predicate.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "access/hp_access.h"

/* Per statement: who reads, why, and what was decided per table */
typedef struct HpStmt
{
	int64		id;
	Oid			reader;
	bool		bypass;			/* superuser or BYPASSRLS: audited, not gated */
	char		purpose[HP_PURPOSE_LEN];
	bool		break_glass;
	char		reason[HP_REASON_LEN];
	HpRecord	tmpl;			/* session fields, filled once */
	List	   *gates;			/* HpGate per protected table, in cxt */
	MemoryContext cxt;			/* holds this struct and everything of it */
	int			refs;			/* executor states using it */
} HpStmt;

/* Per (statement, protected table) */
typedef struct HpGate
{
	Oid			relid;
	AttrNumber	attnum;
	HpOutcome	mode;			/* allowed, denied, break_glass or superuser */
	bool		unaudited;		/* superuser with audit_superusers off */
	HpRule		rule;			/* the rule that allows it; max_subjects 0: no quota */
	char		quota_reason[HP_REASON_LEN];	/* names that rule in the records */
	FmgrInfo	out;			/* subject column output function */
	int16		typlen;			/* and its type's storage, to compare values */
	bool		typbyval;
	bool		have_first;		/* the first subject audited, kept inline */
	uint64		first_hash;
	Datum		first;
	HTAB	   *seen;			/* from the second subject on: hash -> value */
	MemoryContext rowcxt;		/* reset per row */
	HpStmt	   *stmt;
} HpGate;

/*
 * A subject value of a statement, by the hash of its binary image.  An
 * entry is made (one hash lookup per row) before the subject is audited:
 * until that succeeds it is not "audited", and a later row with the value
 * audits it again, so an error in between (a quota, a full queue, a cancel
 * that a PL/pgSQL block catches) leaves nothing half-made behind.
 */
typedef struct HpSeen
{
	uint64		hash;
	Datum		value;			/* in the statement's context, once has_value */
	bool		has_value;
	bool		audited;
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
	ExprState  *late_qual;		/* quals that are not leakproof: after the gate */
	ProjectionInfo *proj;		/* the node's projection: after the gate */
	EPQState   *epq;
	HpStmt	   *stmt;
	/* the statistics the scan moves: of its table, indexes and TOAST */
	bool		stat_exact;		/* every row the scan reads reaches the gate */
	Relation   *ssi_rels;		/* to lock whole for SSI at the first call */
	int			nssi;
	PgStat_TableStatus **stat;	/* their pending entries */
	PgStat_TableCounts *stat_saved;	/* scratch: their counts before a call */
	int			nstat;
	int			stat_toast;		/* stat[stat_toast..] are TOAST's */
} HpScan;

/* A wrapped ON CONFLICT DO UPDATE expression: its SET list or its WHERE */
typedef struct HpUpsert
{
	ExprState  *state;
	ExprStateEvalFunc real;
	HpGate	   *gate;
} HpUpsert;

/* A wrapped condition a gated scan evaluates before the gate */
typedef struct HpQualWrap
{
	ExprState  *state;
	ExprStateEvalFunc real;
	HpScan	   *scan;
} HpQualWrap;

/* What health_pass keeps of one executor state, in its es_query_cxt */
typedef struct HpEstate
{
	EState	   *estate;
	HpStmt	   *stmt;			/* a reference held, or NULL */
	List	   *keys;			/* keys this state entered in "wrapped" */
	MemoryContextCallback cb;
} HpEstate;

typedef enum HpWrapKind
{
	HP_WRAP_ESTATE,
	HP_WRAP_SCAN,
	HP_WRAP_UPSERT,
	HP_WRAP_QUAL
} HpWrapKind;

typedef struct HpWrapEntry
{
	const void *key;			/* EState, PlanState or ExprState */
	HpWrapKind	kind;
	void	   *ptr;			/* HpEstate, HpScan or HpUpsert */
} HpWrapEntry;

static ExecutorStart_hook_type prev_start = NULL;
static ExecutorRun_hook_type prev_run = NULL;
static ExecutorFinish_hook_type prev_finish = NULL;

static HTAB *wrapped = NULL;	/* in TopMemoryContext */
static const void *hit_key = NULL;	/* last lookup, for the per-row path */
static void *hit_ptr = NULL;
static int	depth = 0;
static EState *top_estate = NULL;

/*
 * Break glass: a stack of (role, reason, subtransaction) in
 * TopTransactionContext, so that ROLLBACK TO SAVEPOINT takes back a
 * break_glass() called after the savepoint.  Cleared at the end of the
 * transaction.
 */
typedef struct HpBreakGlass
{
	Oid			role;
	SubTransactionId subid;
	char		reason[HP_REASON_LEN];
} HpBreakGlass;

static List *bg_stack = NIL;

/* Break glass in force for roleid in this transaction? */
static bool
hp_break_glass_active(Oid roleid, const char **reason)
{
	HpBreakGlass *top;

	if (bg_stack == NIL)
		return false;
	top = llast(bg_stack);
	if (top->role != roleid)
		return false;
	*reason = top->reason;
	return true;
}

/* The entry of key in "wrapped", or NULL */
static void *
hp_wrapped_find(const void *key, HpWrapKind kind)
{
	HpWrapEntry *e;

	if (key == hit_key && hit_key != NULL)
		return hit_ptr;
	if (wrapped == NULL)
		return NULL;
	e = hash_search(wrapped, &key, HASH_FIND, NULL);
	if (e == NULL || e->kind != kind)
		return NULL;
	hit_key = key;
	hit_ptr = e->ptr;
	return e->ptr;
}

/* Drop a statement reference; the last one frees the statement */
static void
hp_stmt_release(HpStmt *st)
{
	if (--st->refs == 0)
		MemoryContextDelete(st->cxt);
}

/* Reset callback of an executor state's memory: forget all of it */
static void
hp_estate_gone(void *arg)
{
	HpEstate   *es = (HpEstate *) arg;
	ListCell   *lc;

	hit_key = NULL;
	hit_ptr = NULL;
	foreach(lc, es->keys)
	{
		const void *key = lfirst(lc);

		hash_search(wrapped, &key, HASH_REMOVE, NULL);
	}
	if (es->stmt)
		hp_stmt_release(es->stmt);
	es->stmt = NULL;
	es->keys = NIL;
}

/*
 * Enter key in "wrapped" for es: listed first (so the reset callback finds
 * it whatever fails next), then entered.
 */
static void
hp_wrapped_enter(HpEstate *es, const void *key, HpWrapKind kind, void *ptr)
{
	MemoryContext old;
	HpWrapEntry *e;

	if (hash_search(wrapped, &key, HASH_FIND, NULL) != NULL)
		elog(ERROR, "health_pass: executor node wrapped twice");
	old = MemoryContextSwitchTo(es->estate->es_query_cxt);
	es->keys = lappend(es->keys, (void *) key);
	MemoryContextSwitchTo(old);
	e = hash_search(wrapped, &key, HASH_ENTER, NULL);
	e->kind = kind;
	e->ptr = ptr;
	hit_key = NULL;
}

/* The HpEstate of estate, made (with its reset callback) on first need */
static HpEstate *
hp_estate_of(EState *estate)
{
	HpEstate   *es = hp_wrapped_find(estate, HP_WRAP_ESTATE);

	if (es)
		return es;
	if (wrapped == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(void *);
		ctl.entrysize = sizeof(HpWrapEntry);
		ctl.hcxt = TopMemoryContext;
		wrapped = hash_create("health_pass wrapped nodes", 64, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	es = MemoryContextAllocZero(estate->es_query_cxt, sizeof(HpEstate));
	es->estate = estate;
	es->cb.func = hp_estate_gone;
	es->cb.arg = es;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &es->cb);
	hp_wrapped_enter(es, estate, HP_WRAP_ESTATE, es);
	return es;
}

/* Let es hold a reference to st (one per executor state) */
static void
hp_estate_use(HpEstate *es, HpStmt *st)
{
	if (es->stmt == st)
		return;
	if (es->stmt != NULL)
		elog(ERROR, "health_pass: an executor state belongs to two statements");
	st->refs++;
	es->stmt = st;
}

/*
 * Fill st->tmpl, the fields every record of the statement shares.  The
 * session part (users, address, application) is computed once and reused
 * while the roles and application_name stay the same.
 */
static bool hp_template_valid = false;

/* A role changed (renamed, say): make the next statement's template afresh */
static void
hp_roles_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	hp_template_valid = false;
}

static void
hp_stmt_template(HpStmt *st)
{
	static HpRecord cached;
	static Oid	cached_outer = InvalidOid;
	static Oid	cached_session = InvalidOid;

	if (!hp_template_valid || cached_outer != GetOuterUserId() || cached_session != GetSessionUserId() ||
		strncmp(cached.application_name, application_name ? application_name : "",
				HP_APPNAME_LEN - 1) != 0)
	{
		hp_record_session(&cached);
		cached_outer = GetOuterUserId();
		cached_session = GetSessionUserId();
		hp_template_valid = true;
	}
	st->tmpl = cached;
	st->tmpl.statement_id = st->id;
	strlcpy(st->tmpl.purpose, st->purpose, HP_PURPOSE_LEN);
}

/*
 * A new statement, first used by executor state owner.  Its context is a
 * child of TopMemoryContext; owner holds the first reference before
 * anything that can fail, so the reset callback frees it on error.
 */
static HpStmt *
hp_stmt_new(HpEstate *owner, Oid reader)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "health_pass statement",
											  ALLOCSET_SMALL_SIZES);
	HpStmt	   *st = MemoryContextAllocZero(cxt, sizeof(HpStmt));
	const char *reason;

	st->cxt = cxt;
	hp_estate_use(owner, st);
	st->id = hp_next_statement_id();
	st->reader = reader;
	st->bypass = superuser_arg(reader) || has_bypassrls_privilege(reader);
	strlcpy(st->purpose, hp_purpose ? hp_purpose : "", HP_PURPOSE_LEN);
	st->break_glass = hp_break_glass_active(reader, &reason);
	if (st->break_glass)
		hp_copy_field(st->reason, HP_REASON_LEN, reason);
	hp_stmt_template(st);
	return st;
}

/* One record of st for relid */
static void
hp_record_of(HpStmt *st, Oid relid, HpOutcome outcome, const char *subject,
			 const char *reason, HpRecord *rec)
{
	*rec = st->tmpl;
	rec->logged_at = GetCurrentTimestamp();
	rec->relid = relid;
	rec->outcome = (uint8) outcome;
	rec->subject_null = (subject == NULL);
	hp_copy_field(rec->subject, HP_SUBJECT_LEN, subject);
	hp_copy_field(rec->reason, HP_REASON_LEN, reason);
}

/* Queue one record of st for relid */
static void
hp_audit(HpStmt *st, Oid relid, HpOutcome outcome, const char *subject, const char *reason)
{
	HpRecord	rec;

	hp_record_of(st, relid, outcome, subject, reason, &rec);
	hp_enqueue(&rec);
}

/*
 * Audit a refusal of relid to st (denied, or quota exceeded): queued, or
 * counted when a record of the same refusal was queued within
 * health_pass.denial_interval (denials.c), so a loop of refused statements
 * cannot flood the log
 */
static void
hp_audit_refusal(HpStmt *st, Oid relid, HpOutcome outcome, const char *subject,
				 const char *reason)
{
	HpRecord	rec;

	hp_record_of(st, relid, outcome, subject, reason, &rec);
	hp_denial_audit(&rec);
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
	MemoryContext old;

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
	get_typlenbyval(typoid, &g->typlen, &g->typbyval);
	g->rowcxt = AllocSetContextCreate(st->cxt, "health_pass row", ALLOCSET_SMALL_SIZES);

	if (st->bypass)
	{
		g->mode = HP_SUPERUSER;
		if (!hp_audit_superusers)
		{
			g->unaudited = true;
			hp_audit(st, relid, HP_SUPERUSER, NULL,
					 "health_pass.audit_superusers is off: rows read without records");
		}
	}
	else if (st->break_glass)
		g->mode = HP_BREAK_GLASS;
	else if (st->purpose[0] == '\0')
	{
		g->mode = HP_DENIED;
		hp_audit_refusal(st, relid, HP_DENIED, NULL, "no purpose declared (SET health_pass.purpose)");
	}
	else
	{
		const HpRule *r = hp_rule_for(st->reader, relid, st->purpose);

		if (r == NULL)
		{
			g->mode = HP_DENIED;
			hp_audit_refusal(st, relid, HP_DENIED, NULL, "no rule allows this role and purpose");
		}
		else
		{
			g->mode = HP_ALLOWED;
			g->rule = *r;
			if (r->max_subjects > 0)
			{
				hp_quota_ready();
				hp_quota_reason(r, g->quota_reason);
			}
		}
	}

	/* listed only once decided: an error above leaves no half-made gate */
	old = MemoryContextSwitchTo(st->cxt);
	st->gates = lappend(st->gates, g);
	MemoryContextSwitchTo(old);
	return g;
}

/* Refuse the row of a subject beyond the quota, after auditing it */
static void
hp_quota_refuse(HpGate *g, const char *subject, int count)
{
	char		reason[HP_REASON_LEN];

	snprintf(reason, sizeof(reason), "read %d distinct subjects within the last %lld s (max %d)",
			 count, (long long) (g->rule.per_us / USECS_PER_SEC), g->rule.max_subjects);
	hp_audit_refusal(g->stmt, g->relid, HP_QUOTA_EXCEEDED, subject, reason);
	ereport(ERROR,
			(errcode(ERRCODE_HP_QUOTA_EXCEEDED),
			 errmsg("health_pass quota exceeded for \"%s\"", get_rel_name(g->relid)),
			 errdetail("The roles reading through this rule already read %d distinct subjects of this table within its period; it allows %d.",
					   count, g->rule.max_subjects),
			 errhint("Wait for the period to pass, or ask for a rule with a larger max_subjects.")));
}

/*
 * 64-bit hash of the binary image of a subject value (what datum_image_eq
 * compares): the bytes of a by-value datum, of a fixed-length one, or of a
 * varlena after detoasting
 */
static uint64
hp_image_hash(HpGate *g, Datum d)
{
	if (g->typbyval)
		return hash_bytes_extended((const unsigned char *) &d, sizeof(Datum), 1);
	if (g->typlen > 0)
		return hash_bytes_extended((const unsigned char *) DatumGetPointer(d), g->typlen, 1);
	if (g->typlen == -1)
	{
		struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
		uint64		h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(v),
											VARSIZE_ANY_EXHDR(v), 1);

		if ((Pointer) v != DatumGetPointer(d))
			pfree(v);
		return h;
	}
	return hash_bytes_extended((const unsigned char *) DatumGetCString(d),
							   strlen(DatumGetCString(d)), 1);
}

/*
 * Audit one row's subject unless this statement already did.  A subject is
 * its value: the statement's subjects are told apart by their binary image
 * (never by text a session's settings shape), and printed once each, under
 * fixed settings (subject.c).  A NULL subject is a subject of its own on
 * every row: recorded and counted each time.
 */
static void
hp_gate_row(HpGate *g, TupleTableSlot *slot, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attnum, &isnull);
	MemoryContext old = MemoryContextSwitchTo(g->rowcxt);
	char	   *subject = NULL;
	uint64		h = 0;
	HpSeen	   *seen = NULL;
	bool		remember_first = false;

	if (!isnull)
	{
		h = hp_image_hash(g, d);
		if (!g->have_first)
			remember_first = true;	/* most statements read one subject: no table */
		else if (g->first_hash == h)
		{
			if (datum_image_eq(g->first, d, g->typbyval, g->typlen))
				goto seen_before;
			/* a 64-bit collision with the first: audit it, remember nothing */
		}
		else
		{
			bool		found;

			if (g->seen == NULL)
			{
				HASHCTL		ctl;

				ctl.keysize = sizeof(uint64);
				ctl.entrysize = sizeof(HpSeen);
				ctl.hcxt = g->stmt->cxt;
				g->seen = hash_create("health_pass seen subjects", 256, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
				seen = hash_search(g->seen, &g->first_hash, HASH_ENTER, NULL);
				seen->value = g->first;
				seen->has_value = true;
				seen->audited = true;
			}
			seen = hash_search(g->seen, &h, HASH_ENTER, &found);
			if (!found)
				seen->has_value = seen->audited = false;
			if (seen->has_value)
			{
				if (!datum_image_eq(seen->value, d, g->typbyval, g->typlen))
					seen = NULL;	/* a 64-bit collision: audit it, remember nothing */
				else if (seen->audited)
					goto seen_before;
			}
			else
			{
				MemoryContextSwitchTo(g->stmt->cxt);
				seen->value = datumCopy(d, g->typbyval, g->typlen);
				seen->has_value = true;
				MemoryContextSwitchTo(g->rowcxt);
			}
		}
		subject = hp_subject_text(&g->out, d);
	}

	if (g->mode == HP_ALLOWED && g->rule.max_subjects > 0)
	{
		int			count;
		uint8		key[HP_SUBJECT_KEY_LEN];

		if (subject)
			hp_subject_digest(subject, key);
		if (!hp_quota_admit(&g->rule, subject ? key : NULL, &count))
			hp_quota_refuse(g, subject, count);
	}
	hp_audit(g->stmt, g->relid, g->mode, subject,
			 g->mode == HP_BREAK_GLASS ? g->stmt->reason :
			 g->rule.max_subjects > 0 ? g->quota_reason : NULL);

	/* only now, audited, is the subject marked seen */
	if (seen)
		seen->audited = true;
	else if (remember_first)
	{
		MemoryContextSwitchTo(g->stmt->cxt);
		g->first = datumCopy(d, g->typbyval, g->typlen);
		g->first_hash = h;
		g->have_first = true;
	}
seen_before:
	MemoryContextSwitchTo(old);
	MemoryContextReset(g->rowcxt);
}

/*
 * A write's key conflicts with row existing of protected table rel
 * (probe.c found it, before PostgreSQL's own unique or exclusion check):
 * that tells the writer the row exists, so it is a read of the row.  It is
 * gated as a scan's row is, in the statement the write belongs to: the
 * running top-level query's (reads and probes of one statement share the
 * decision, the subjects audited and the quota), or, outside any
 * (COPY FROM, which only superusers and BYPASSRLS roles may run on a
 * protected table), the statement of estate, the trigger's own.  A denied
 * statement gets an error, after a denial record that names the subject.
 */
void
hp_gate_probe(EState *estate, Relation rel, AttrNumber attnum, TupleTableSlot *existing)
{
	EState	   *owner = (depth > 0 && top_estate) ? top_estate : estate;
	HpEstate   *es = hp_estate_of(owner);
	HpStmt	   *st = es->stmt ? es->stmt : hp_stmt_new(es, GetOuterUserId());
	Oid			relid = RelationGetRelid(rel);
	HpGate	   *g = hp_gate_get(st, relid, attnum);

	if (g->mode == HP_DENIED)
	{
		bool		isnull;
		Datum		d = slot_getattr(existing, attnum, &isnull);
		char	   *subject = isnull ? NULL : hp_subject_text(&g->out, d);

		hp_audit_refusal(st, relid, HP_DENIED, subject,
						 st->purpose[0] == '\0' ?
						 "a write's key matches this row; no purpose declared (SET health_pass.purpose)" :
						 "a write's key matches this row; no rule allows this role and purpose");
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no health_pass rule lets this role write this row of protected table \"%s\": its key matches a row the role may not read",
						RelationGetRelationName(rel)),
				 errdetail("A unique or exclusion conflict tells whether that row exists; the attempt is recorded."),
				 errhint("Declare a purpose a rule allows (SET health_pass.purpose).")));
	}
	if (!g->unaudited)
		hp_gate_row(g, existing, attnum);
}

/* The wrapping of node ps */
static HpScan *
hp_scan_of(PlanState *ps)
{
	HpScan	   *s = hp_wrapped_find(ps, HP_WRAP_SCAN);

	if (s == NULL)
		elog(ERROR, "health_pass lost track of a protected scan");
	return s;
}

/*
 * EXPLAIN ANALYZE of a bitmap heap scan: the bitmap index scans under it
 * ran their index conditions before the gate and counted every row they
 * matched, and the scan counted the heap blocks holding them.  With an
 * index condition on another column (flag = 1) and a leakproof one on the
 * subject (person = 'B3'), that told how many rows have flag = 1 while the
 * gate saw none.  A count over rows the gate never saw is a read of them:
 * neither is kept.
 */
/* Call fn on ps and, for a BitmapAnd or BitmapOr, on every node under it */
static void
hp_bitmap_walk(PlanState *ps, void (*fn) (PlanState *node, void *arg), void *arg)
{
	if (ps == NULL)
		return;
	if (IsA(ps, BitmapAndState) || IsA(ps, BitmapOrState))
	{
		PlanState **sub = IsA(ps, BitmapAndState) ? ((BitmapAndState *) ps)->bitmapplans :
		((BitmapOrState *) ps)->bitmapplans;
		int			n = IsA(ps, BitmapAndState) ? ((BitmapAndState *) ps)->nplans :
		((BitmapOrState *) ps)->nplans;

		for (int i = 0; i < n; i++)
			hp_bitmap_walk(sub[i], fn, arg);
	}
	fn(ps, arg);
}

static void
hp_hide_node_counts(PlanState *ps, void *arg)
{
	if (ps->instrument)
	{
		ps->instrument->tuplecount = 0;
		ps->instrument->ntuples = 0;
		ps->instrument->ntuples2 = 0;
		memset(&ps->instrument->bufusage, 0, sizeof(BufferUsage));
	}
}

static void
hp_hide_bitmap_counts(PlanState *ps)
{
	hp_bitmap_walk(ps, hp_hide_node_counts, NULL);
}

/*
 * Statistics.  A scan counts what it reads in the cumulative statistics of
 * the table and of its indexes (tuples returned and fetched, blocks hit
 * and read: pg_stat_xact_user_tables at once, pg_stat_user_tables,
 * pg_stat_user_indexes and pg_statio_user_tables once flushed), which every
 * role may read, and in the backend's buffer usage (EXPLAIN (ANALYZE,
 * BUFFERS), pg_stat_statements).  Every row an index condition or a
 * leakproof qual removed before the gate was counted: with flag = 1 AND
 * person = 'B3', idx_tup_fetch told how many rows have flag = 1, with no
 * record and no quota spent.  So around each call of a gated scan the
 * counters are saved, and after it each moves by at most one when the gate
 * gets a row, by nothing when it gets none or the call fails: a protected
 * table's statistics count the rows the gate saw, no more.  Counts other
 * than reads (inserts, updates, deletes, dead tuples: what autovacuum
 * needs) are not touched.
 */

/*
 * The call of a gated scan in progress, for the exit callback: a FATAL
 * error (pg_terminate_backend() of the reader's own backend, a lost client
 * noticed by client_connection_check_interval) leaves through proc_exit(),
 * past PG_CATCH, and the statistics' exit hook would then flush the
 * partial counts of the call.  hp_stats_exit() runs before it (registered
 * later, run earlier) and takes them back; the frame it points into is
 * still on the stack below proc_exit().
 */
typedef struct HpStatsCall
{
	HpScan	   *scan;
	const BufferUsage *buffers;
	const WalUsage *wal;
	struct HpStatsCall *outer;
} HpStatsCall;

static HpStatsCall *stats_call = NULL;
static bool stats_exit_registered = false;

static void hp_stats_clamp(HpScan *s, const BufferUsage *b, const WalUsage *w, int keep);

static void
hp_stats_exit(int code, Datum arg)
{
	for (HpStatsCall *c = stats_call; c != NULL; c = c->outer)
		hp_stats_clamp(c->scan, c->buffers, c->wal, 0);
	stats_call = NULL;
}

/* The indexes a bitmap scan's tree reads (hp_bitmap_walk callback) */
static void
hp_bitmap_index_rel(PlanState *ps, void *arg)
{
	List	  **rels = (List **) arg;

	if (IsA(ps, BitmapIndexScanState) &&
		((BitmapIndexScanState *) ps)->biss_RelationDesc != NULL)
		*rels = list_append_unique_ptr(*rels, ((BitmapIndexScanState *) ps)->biss_RelationDesc);
}

/* Add rel's pending statistics entry (made now if need be) to s->stat */
static void
hp_stats_add(HpScan *s, Relation rel)
{
	/* none while track_counts is off: nothing is counted then */
	if (!pgstat_should_count_relation(rel))
		return;
	for (int i = 0; i < s->nstat; i++)
		if (s->stat[i] == rel->pgstat_info)
			return;
	s->stat[s->nstat++] = rel->pgstat_info;
}

/*
 * Find the statistics scan ps moves (in the current context): of the
 * table, of the indexes the scan reads, and of the table's TOAST table and
 * its index (a leakproof qual on a long subject fetches it there); and, in
 * a serializable transaction, lock the table and those indexes whole for
 * SSI.
 *
 * The pending entries are kept by address: this backend frees one only
 * when it flushes its statistics, idle between transactions, or drops its
 * relation, and the executor state that owns s ends before either (a
 * cursor ends with its transaction, a holdable one is read to its end at
 * commit).
 */
static void
hp_stats_init(HpScan *s, PlanState *ps)
{
	Relation	rel = ((ScanState *) ps)->ss_currentRelation;
	List	   *rels = NIL;
	List	   *toast_ix = NIL;
	Relation	toast = NULL;
	ListCell   *lc;

	if (rel == NULL || s->gate->mode == HP_DENIED)
		return;					/* a denied scan reads nothing */

	/*
	 * A sequential, sample or TID scan left without quals (none ran before
	 * the gate) hands the gate every row it reads: its counts are the
	 * gate's already, and it is not wrapped in save and clamp
	 */
	if ((IsA(ps, SeqScanState) || IsA(ps, SampleScanState) ||
		 IsA(ps, TidScanState) || IsA(ps, TidRangeScanState)) && ps->qual == NULL)
	{
		s->stat_exact = true;
		return;
	}
	rels = list_make1(rel);
	if (IsA(ps, IndexScanState) && ((IndexScanState *) ps)->iss_RelationDesc != NULL)
		rels = lappend(rels, ((IndexScanState *) ps)->iss_RelationDesc);
	else if (IsA(ps, IndexOnlyScanState) && ((IndexOnlyScanState *) ps)->ioss_RelationDesc != NULL)
		rels = lappend(rels, ((IndexOnlyScanState *) ps)->ioss_RelationDesc);
	else if (IsA(ps, BitmapHeapScanState))
		hp_bitmap_walk(outerPlanState(ps), hp_bitmap_index_rel, &rels);

	/*
	 * SSI: a serializable transaction takes a predicate lock on every tuple
	 * and index page a scan reads, before the gate, and pg_locks shows them
	 * to every role: how many rows an index condition matched, and where.
	 * One lock on each relation instead covers them all (and takes none of
	 * them), taken when the scan first runs (a scan that never runs reads
	 * nothing); it is coarser, so more transactions may fail to serialize.
	 */
	s->ssi_rels = palloc(sizeof(Relation) * list_length(rels));
	foreach(lc, rels)
		s->ssi_rels[s->nssi++] = lfirst(lc);

	if (OidIsValid(rel->rd_rel->reltoastrelid))
	{
		/* the lock a detoasting takes anyway, kept to the transaction's end */
		toast = table_open(rel->rd_rel->reltoastrelid, AccessShareLock);
		toast_ix = RelationGetIndexList(toast);
	}
	s->stat = palloc(sizeof(PgStat_TableStatus *) * (list_length(rels) + 1 + list_length(toast_ix)));
	foreach(lc, rels)
		hp_stats_add(s, lfirst(lc));
	s->stat_toast = s->nstat;
	if (toast != NULL)
	{
		hp_stats_add(s, toast);
		foreach(lc, toast_ix)
		{
			Relation	ix = index_open(lfirst_oid(lc), AccessShareLock);

			hp_stats_add(s, ix);
			index_close(ix, NoLock);
		}
		table_close(toast, NoLock);
	}
	s->stat_saved = palloc0(sizeof(PgStat_TableCounts) * Max(s->nstat, 1));
	list_free(rels);
	list_free(toast_ix);
	if (!stats_exit_registered)
	{
		before_shmem_exit(hp_stats_exit, (Datum) 0);
		stats_exit_registered = true;
	}
}

/* Save the counters before a call of the scan */
static inline void
hp_stats_save(HpScan *s, BufferUsage *buffers, WalUsage *wal)
{
	*buffers = pgBufferUsage;
	*wal = pgWalUsage;
	for (int i = 0; i < s->nstat; i++)
		s->stat_saved[i] = s->stat[i]->t_counts;
}

#define HP_CLAMP(now, was, keep) \
	do { if ((now) - (was) > (keep)) (now) = (was) + (keep); } while (0)

/* After the call: each counter moved by at most keep (1 for a row, else 0) */
static void
hp_stats_clamp(HpScan *s, const BufferUsage *b, const WalUsage *w, int keep)
{
	BufferUsage *u = &pgBufferUsage;

	for (int i = 0; i < s->nstat; i++)
	{
		PgStat_TableCounts *c = &s->stat[i]->t_counts;
		const PgStat_TableCounts *was = &s->stat_saved[i];

		/* a TOAST index is scanned once for each value fetched */
		if (i >= s->stat_toast)
			HP_CLAMP(c->t_numscans, was->t_numscans, keep);
		HP_CLAMP(c->t_tuples_returned, was->t_tuples_returned, keep);
		HP_CLAMP(c->t_tuples_fetched, was->t_tuples_fetched, keep);
		HP_CLAMP(c->t_blocks_fetched, was->t_blocks_fetched, keep);
		HP_CLAMP(c->t_blocks_hit, was->t_blocks_hit, keep);
	}
	HP_CLAMP(u->shared_blks_hit, b->shared_blks_hit, keep);
	HP_CLAMP(u->shared_blks_read, b->shared_blks_read, keep);
	HP_CLAMP(u->shared_blks_dirtied, b->shared_blks_dirtied, keep);
	HP_CLAMP(u->shared_blks_written, b->shared_blks_written, keep);
	HP_CLAMP(u->local_blks_hit, b->local_blks_hit, keep);
	HP_CLAMP(u->local_blks_read, b->local_blks_read, keep);
	HP_CLAMP(u->local_blks_dirtied, b->local_blks_dirtied, keep);
	HP_CLAMP(u->local_blks_written, b->local_blks_written, keep);
	HP_CLAMP(u->temp_blks_read, b->temp_blks_read, keep);
	HP_CLAMP(u->temp_blks_written, b->temp_blks_written, keep);
	/*
	 * The WAL a scan writes as it prunes pages or logs hint bits, one
	 * record per page (EXPLAIN (WAL), pg_stat_statements, pg_stat_wal,
	 * which so counts less than was written)
	 */
	if (pgWalUsage.wal_records - w->wal_records > keep)
	{
		int64		records = pgWalUsage.wal_records - w->wal_records;

		/* bytes: an average record's for the one kept */
		pgWalUsage.wal_bytes = w->wal_bytes +
			keep * (pgWalUsage.wal_bytes - w->wal_bytes) / records;
		pgWalUsage.wal_records = w->wal_records + keep;
	}
	HP_CLAMP(pgWalUsage.wal_fpi, w->wal_fpi, keep);
	/* I/O timings (track_io_timing) would time the pages: not kept */
	u->blk_read_time = b->blk_read_time;
	u->blk_write_time = b->blk_write_time;
	u->temp_blk_read_time = b->temp_blk_read_time;
	u->temp_blk_write_time = b->temp_blk_write_time;
}

/*
 * Wrapped ExecProcNode of a protected scan.  The scan itself (its access
 * method, index conditions and leakproof quals) yields the row as read
 * from the table; the gate audits it; only then do the quals that are not
 * leakproof and the projection see it.
 */
static TupleTableSlot *
hp_scan_exec(PlanState *ps)
{
	HpScan	   *s = hp_scan_of(ps);
	ExprContext *econtext = ps->ps_ExprContext;

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

	for (;;)
	{
		Instrumentation *instr = ps->instrument;
		double		removed1 = instr ? instr->nfiltered1 : 0;
		double		removed2 = instr ? instr->nfiltered2 : 0;
		double		fetched2 = instr ? instr->ntuples2 : 0;
		BufferUsage buffers;
		WalUsage	wal;
		TupleTableSlot *slot;

		if (s->nssi > 0)
		{
			for (int i = 0; i < s->nssi; i++)
				PredicateLockRelation(s->ssi_rels[i], ps->state->es_snapshot);
			s->nssi = 0;
		}
		if (s->stat_exact)
			slot = s->real(ps);
		else
		{
			HpStatsCall call = {s, &buffers, &wal, stats_call};

			hp_stats_save(s, &buffers, &wal);
			stats_call = &call;
			PG_TRY();
			{
				slot = s->real(ps);
			}
			PG_CATCH();
			{
				stats_call = call.outer;
				hp_stats_clamp(s, &buffers, &wal, 0);
				PG_RE_THROW();
			}
			PG_END_TRY();
			stats_call = call.outer;
			hp_stats_clamp(s, &buffers, &wal, TupIsNull(slot) ? 0 : 1);
		}

		/*
		 * EXPLAIN ANALYZE: rows that leakproof quals or index rechecks
		 * removed before the gate were never audited; they are not counted
		 * either (a count over unaudited rows is a read of them).
		 */
		if (instr)
		{
			instr->nfiltered1 = removed1;
			instr->nfiltered2 = removed2;
			/* an index-only scan's heap fetches: at most the row returned */
			if (instr->ntuples2 > fetched2 + (TupIsNull(slot) ? 0 : 1))
				instr->ntuples2 = fetched2 + (TupIsNull(slot) ? 0 : 1);
			if (IsA(ps, BitmapHeapScanState))
			{
				((BitmapHeapScanState *) ps)->exact_pages = 0;
				((BitmapHeapScanState *) ps)->lossy_pages = 0;
				hp_hide_bitmap_counts(outerPlanState(ps));
			}
		}
		if (TupIsNull(slot))
			return slot;
		if (!s->gate->unaudited)
			hp_gate_row(s->gate, slot, s->slot_attnum);
		if (s->late_qual == NULL && s->proj == NULL)
			return slot;
		econtext->ecxt_scantuple = slot;
		if (s->late_qual && !ExecQual(s->late_qual, econtext))
		{
			InstrCountFiltered1(ps, 1);
			continue;			/* the next real() call resets the row's memory */
		}
		if (s->proj)
			return ExecProject(s->proj);
		return slot;
	}
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
	EState	   *owner;			/* the executor state the statement belongs to */
	Oid			reader;
	bool		wrapped;		/* some scan of this plan was wrapped */
	List	   *epq;			/* nodes that may recheck rows (EvalPlanQual) */
} HpWalk;

/*
 * The statement the walked plan belongs to, found or created on first
 * need, and referenced by the executor state of the node being wrapped.
 */
static HpStmt *
hp_walk_stmt(HpWalk *w, EState *node_estate)
{
	if (w->stmt == NULL)
	{
		HpEstate   *owner = hp_estate_of(w->owner);

		w->stmt = owner->stmt ? owner->stmt : hp_stmt_new(owner, w->reader);
	}
	hp_estate_use(hp_estate_of(node_estate), w->stmt);
	return w->stmt;
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
	HpUpsert   *u = hp_wrapped_find(state, HP_WRAP_UPSERT);
	Datum		d;

	if (u == NULL)
		elog(ERROR, "health_pass lost track of an ON CONFLICT DO UPDATE");
	if (u->gate->mode == HP_DENIED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no health_pass rule lets this role read the row of protected table \"%s\" that ON CONFLICT DO UPDATE would change",
						get_rel_name(u->gate->relid)),
				 errhint("Declare a purpose a rule allows (SET health_pass.purpose).")));
	if (!u->gate->unaudited)
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
hp_wrap_upsert_expr(ExprState *state, HpGate *gate, EState *estate)
{
	HpUpsert   *u = MemoryContextAlloc(estate->es_query_cxt, sizeof(HpUpsert));

	u->state = state;
	u->real = state->evalfunc;
	u->gate = gate;
	hp_wrapped_enter(hp_estate_of(estate), state, HP_WRAP_UPSERT, u);
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
		gate = hp_gate_get(hp_walk_stmt(w, mt->ps.state), relid, attnum);
		w->wrapped = true;
		if (rri->ri_onConflict->oc_WhereClause)
			hp_wrap_upsert_expr(rri->ri_onConflict->oc_WhereClause, gate, mt->ps.state);
		hp_wrap_upsert_expr(&rri->ri_onConflict->oc_ProjInfo->pi_state, gate, mt->ps.state);
	}
}

/*
 * A write into a protected table whose write-probe trigger is missing
 * (probe.c): its key could tell whether a row exists, unrecorded.  Refused
 * to every role but superusers, before anything is written; through a
 * partitioned or parent table, any protected table below it counts.
 */
static void
hp_check_probed(ModifyTableState *mt, HpWalk *w)
{
	if (mt->operation != CMD_INSERT && mt->operation != CMD_UPDATE &&
		mt->operation != CMD_MERGE)
		return;
	/* superusers restore dumps; BYPASSRLS roles are audited like them, so held to it */
	if (superuser_arg(w->reader))
		return;
	/*
	 * The result relations, and the root's whole tree: an UPDATE or MERGE of
	 * a partitioned table lists only the partitions left after pruning,
	 * while a row it moves may go into any other (a reviewer's)
	 */
	for (int i = -1; i < mt->mt_nrels; i++)
	{
		Relation	rel;
		Oid			relid;
		List	   *rels;
		ListCell   *lc;

		if (i < 0 && mt->rootResultRelInfo == NULL)
			continue;
		rel = i < 0 ? mt->rootResultRelInfo->ri_RelationDesc : mt->resultRelInfo[i].ri_RelationDesc;
		relid = RelationGetRelid(rel);
		rels = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE || has_subclass(relid) ?
			find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
		foreach(lc, rels)
			if (!hp_protected_probed(lfirst_oid(lc)))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("protected table \"%s\" has no write-probe trigger that fires in this session: writes are refused",
								get_rel_name(lfirst_oid(lc))),
						 errdetail("A write whose key matches a row tells that the row exists; without the trigger that would not be recorded (a data-only restore with --disable-triggers leaves it out; a disabled or REPLICA trigger, or session_replication_role = replica, keeps it from firing)."),
						 errhint("A superuser calls health_pass.protect() on the table's root again, or enables the trigger.")));
	}
}

/*
 * Is a search_path value one that no caller can put objects in front of:
 * pg_catalog, then pg_temp named last (unnamed, pg_temp is searched first
 * for types and tables: a reviewer shadowed text with a temporary domain),
 * and no other schema (one the caller can create in, "$user" or public,
 * would shadow pg_catalog's functions)?
 */
static bool
hp_search_path_safe(const char *value)
{
	char	   *raw = pstrdup(value);
	List	   *names;
	ListCell   *lc;
	bool		ok;

	if (!SplitIdentifierString(raw, ',', &names) || list_length(names) != 2)
		return false;
	ok = true;
	foreach(lc, names)
	{
		const char *name = lfirst(lc);

		if (strcmp(name, foreach_current_index(lc) == 0 ? "pg_catalog" : "pg_temp") != 0)
			ok = false;
	}
	return ok;
}

/* Does a proconfig array set a safe search_path (above)? */
static bool
hp_config_pins_search_path(Datum config)
{
	ArrayType  *arr = DatumGetArrayTypeP(config);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	bool		pinned = false;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *setting;

		if (nulls[i])
			continue;
		setting = TextDatumGetCString(elems[i]);
		if (strncmp(setting, "search_path=", 12) == 0)
			pinned = hp_search_path_safe(setting + 12);		/* the last one counts */
		pfree(setting);
	}
	return pinned;
}

/*
 * Is function fn LEAKPROOF in a way a gate can rely on?  PostgreSQL's mark,
 * and for a user-defined function in a language that resolves names when it
 * runs (PL/pgSQL, SQL with a string body): a pinned search_path.  Without
 * one, a name in its body resolves under the caller's search_path (ANALYZE
 * keeps the owner's), so the caller picks the code that runs: a reviewer
 * put s.upper in front of pg_catalog.upper under a superuser-marked
 * function.  C and internal functions resolve nothing; a SQL-standard body
 * (BEGIN ATOMIC) was resolved when it was created.
 *
 * And no user-defined function, in any language but C and internal, with
 * an argument whose type is polymorphic or record, or owned by a role that
 * is not a superuser: what its body does with that argument (a cast, a
 * comparison, its output function) is found for the argument's type when
 * it runs, in catalogs no search_path covers (pg_cast has no schema), and
 * the owner of a type may add casts from it at any time.  A red-team pass
 * passed ROW(person)::its own type, whose cast to text it wrote, to a
 * pinned anyelement function doing v::text, and read every subject before
 * the gate; a reviewer did the same through a function a superuser had
 * declared over the reviewer's own composite type, then through a
 * superuser's domain over it.  Types the body names (a cast to the
 * caller's type) stay the marking superuser's to review, as callees do.
 */
static bool
hp_type_superusers(Oid t, int depth)
{
	HeapTuple	tt;
	Form_pg_type ty;
	bool		ok;

	CHECK_FOR_INTERRUPTS();
	check_stack_depth();
	if (IsPolymorphicType(t) || t == RECORDOID || t == RECORDARRAYOID || t == ANYOID ||
		depth > 8)
		return false;
	tt = SearchSysCache1(TYPEOID, ObjectIdGetDatum(t));
	if (!HeapTupleIsValid(tt))
		return false;
	ty = (Form_pg_type) GETSTRUCT(tt);
	ok = superuser_arg(ty->typowner);
	/*
	 * And the types a value of it carries, whose casts apply to it or to
	 * its parts: a domain's base type (a cast from a domain is looked up on
	 * its base type: a reviewer's superuser-owned domain over its own
	 * composite), an array's elements, a range's subtype, a composite's
	 * attributes
	 */
	if (ok && ty->typtype == TYPTYPE_DOMAIN)
		ok = hp_type_superusers(ty->typbasetype, depth + 1);
	if (ok && IsTrueArrayType(ty))
		ok = hp_type_superusers(ty->typelem, depth + 1);
	if (ok && ty->typtype == TYPTYPE_RANGE)
		ok = hp_type_superusers(get_range_subtype(t), depth + 1);
	if (ok && ty->typtype == TYPTYPE_MULTIRANGE)
		ok = hp_type_superusers(get_multirange_range(t), depth + 1);
	if (ok && ty->typtype == TYPTYPE_COMPOSITE && OidIsValid(ty->typrelid))
	{
		TupleDesc	desc = lookup_rowtype_tupdesc_noerror(t, -1, true);

		if (desc == NULL)
			ok = false;
		else
		{
			for (int a = 0; ok && a < desc->natts; a++)
				if (!TupleDescAttr(desc, a)->attisdropped)
					ok = hp_type_superusers(TupleDescAttr(desc, a)->atttypid, depth + 1);
			ReleaseTupleDesc(desc);
		}
	}
	ReleaseSysCache(tt);
	return ok;
}

static bool
hp_args_fixed(HeapTuple tup)
{
	Form_pg_proc p = (Form_pg_proc) GETSTRUCT(tup);
	bool		isnull;
	Datum		all;

	for (int i = 0; i < p->pronargs; i++)
		if (!hp_type_superusers(p->proargtypes.values[i], 0))
			return false;

	/*
	 * And the result's types: the body's value is converted to the return
	 * type with its casts (a reviewer's text -> own enum cast ran on every
	 * subject); OUT parameters likewise
	 */
	if (p->prorettype != VOIDOID && !hp_type_superusers(p->prorettype, 0))
		return false;
	all = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proallargtypes, &isnull);
	if (!isnull)
	{
		ArrayType  *a = DatumGetArrayTypeP(all);
		Oid		   *types = (Oid *) ARR_DATA_PTR(a);
		int			n = ARR_DIMS(a)[0];

		if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != OIDOID)
			return false;
		for (int i = 0; i < n; i++)
			if (!hp_type_superusers(types[i], 0))
				return false;
	}
	return true;
}

bool
hp_func_leakproof(Oid fn)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc p;
	bool		ok;

	if (!HeapTupleIsValid(tup))
		return false;
	p = (Form_pg_proc) GETSTRUCT(tup);
	ok = p->proleakproof;
	if (ok && fn >= FirstNormalObjectId &&
		p->prolang != INTERNALlanguageId && p->prolang != ClanguageId)
	{
		bool		isnull;
		Datum		d;

		ok = hp_args_fixed(tup);
		(void) SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosqlbody, &isnull);
		if (ok && isnull)
		{
			d = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proconfig, &isnull);
			ok = !isnull && hp_config_pins_search_path(d);
		}
	}
	ReleaseSysCache(tup);
	return ok;
}

/* check_functions_in_node callback: marked LEAKPROOF, not trusted as such */
static bool
hp_untrusted_leakproof_checker(Oid func_id, void *context)
{
	return get_func_leakproof(func_id) && !hp_func_leakproof(func_id);
}

/* check_functions_in_node callback: a function that is not LEAKPROOF */
static bool
hp_leaky_function_checker(Oid func_id, void *context)
{
	return !hp_func_leakproof(func_id);
}

/*
 * Does node call code that checker (one of the two above, the walker's
 * context) picks out: its functions and operators, and the code
 * check_functions_in_node() does not visit, a row comparison's operators
 * and GREATEST/LEAST's comparison; for any leaky code (not only untrusted
 * LEAKPROOF), subscripting that is not leakproof too.  One walker for both
 * questions: the untrusted one missed GREATEST's comparison, so protect()
 * took a CHECK that reached an untrusted comparison through it (a
 * reviewer's).
 */
static bool
hp_code_walker(Node *node, void *context)
{
	check_function_callback checker = (check_function_callback) context;

	if (node == NULL)
		return false;
	if (check_functions_in_node(node, checker, NULL))
		return true;
	if (IsA(node, SubscriptingRef) && checker == hp_leaky_function_checker)
	{
		SubscriptingRef *sbsref = (SubscriptingRef *) node;
		const SubscriptRoutines *r = getSubscriptingRoutines(sbsref->refcontainertype, NULL);

		if (r == NULL || !(sbsref->refassgnexpr ? r->store_leakproof : r->fetch_leakproof))
			return true;
	}
	else if (IsA(node, MinMaxExpr))
	{
		TypeCacheEntry *tc = lookup_type_cache(((MinMaxExpr *) node)->minmaxtype,
											   TYPECACHE_CMP_PROC);

		if (!OidIsValid(tc->cmp_proc))
		{
			if (checker == hp_leaky_function_checker)
				return true;
		}
		else if (checker(tc->cmp_proc, NULL))
			return true;
	}
	else if (IsA(node, RowCompareExpr))
	{
		ListCell   *lc;

		foreach(lc, ((RowCompareExpr *) node)->opnos)
			if (checker(get_opcode(lfirst_oid(lc)), NULL))
				return true;
	}
	return expression_tree_walker(node, hp_code_walker, context);
}

/*
 * Does node call a function PostgreSQL takes as LEAKPROOF but the gate does
 * not (hp_func_leakproof())?  For the places that ask contain_leaked_vars(),
 * which trusts the mark alone.
 */
bool
hp_runs_untrusted_leakproof(Node *node)
{
	return hp_code_walker(node, (void *) hp_untrusted_leakproof_checker);
}

/*
 * Does node run any code that is not LEAKPROOF, with or without a column
 * in it (functions, operators, casts, subscripting, GREATEST/LEAST)?
 */
bool
hp_runs_leaky_code(Node *node)
{
	return hp_code_walker(node, (void *) hp_leaky_function_checker);
}

/*
 * Does the qual use the output of an InitPlan not evaluated yet?  An
 * InitPlan runs when its parameter is first needed, so in a qual after a
 * leakproof one it runs (any code: set_config, nextval, a NOTICE) only if
 * some row passed that qual: the same oracle as a leaky call.
 */
static bool
hp_lazy_param_walker(Node *node, void *context)
{
	EState	   *estate = (EState *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Param))
	{
		Param	   *p = (Param *) node;

		return p->paramkind == PARAM_EXEC && estate->es_param_exec_vals != NULL &&
			estate->es_param_exec_vals[p->paramid].execPlan != NULL;
	}
	return expression_tree_walker(node, hp_lazy_param_walker, context);
}

/*
 * Does the qual read a column of the scanned row other than the subject?
 * A leakproof condition on another column (note <> 'HIV positive') would
 * reject rows the gate never saw, and whether a row came back would tell
 * their value: WHERE person = 'R5' AND note <> 'HIV positive' returning
 * nothing says what R5's note is, with no record of R5.  So only
 * conditions on the subject alone run before the gate; a row they reject
 * tells nothing but that its subject is not the one asked for.
 */
static bool
hp_other_column_walker(Node *node, void *context)
{
	AttrNumber	subject = *(AttrNumber *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		return v->varlevelsup == 0 && v->varattno != subject;
	}
	return expression_tree_walker(node, hp_other_column_walker, context);
}

/*
 * May this qual run before the gate?  Only if no code in it that is not
 * LEAKPROOF runs at all, whether or not a column is passed to it.
 * contain_leaked_vars() alone lets a leaky call without a Var through
 * (nextval('s') < 0, set_config('x', 'hit', false) = '', a CASE WHEN over
 * a column whose branch calls one): it runs only on rows that the quals
 * before it (and the index conditions) accepted, so how often it runs, or
 * whether it runs, tells the value of rows the gate never saw.
 */
static bool
hp_qual_runs_late(Node *qual, EState *estate, AttrNumber subject)
{
	return contain_leaked_vars(qual) || hp_runs_leaky_code(qual) ||
		hp_lazy_param_walker(qual, estate) || hp_other_column_walker(qual, &subject);
}

/*
 * A hashed "x = ANY (array)" (the planner hashes a constant array of 9 or
 * more elements) runs the hash function of x's type on every row, which
 * check_functions_in_node() does not look at: for text, hashtext(), which
 * is not LEAKPROOF, ran before the gate on every row (a red-team pass).  In
 * a condition that runs before the gate, a copy compares element by element
 * with the operator the walkers checked, which gives the same answer, unless
 * the hash function (and for NOT IN, the negator's function) is trusted.
 */
static Node *
hp_linear_saop_mutator(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) node;

		if ((OidIsValid(sa->hashfuncid) && !hp_func_leakproof(sa->hashfuncid)) ||
			(OidIsValid(sa->negfuncid) && !hp_func_leakproof(sa->negfuncid)))
		{
			ScalarArrayOpExpr *copy = (ScalarArrayOpExpr *)
				expression_tree_mutator(node, hp_linear_saop_mutator, context);

			copy->hashfuncid = InvalidOid;
			copy->negfuncid = InvalidOid;
			*(bool *) context = true;
			return (Node *) copy;
		}
	}
	return expression_tree_mutator(node, hp_linear_saop_mutator, context);
}

/*
 * quals with every such hashed ScalarArrayOpExpr made linear (a copy: the
 * plan is not changed); *changed tells whether there was one
 */
static List *
hp_linear_saops(List *quals, bool *changed)
{
	*changed = false;
	return (List *) hp_linear_saop_mutator((Node *) quals, changed);
}

/*
 * Split the quals and projection of a protected scan: leakproof quals on
 * the subject column alone stay in the node (they run before the gate, as
 * PostgreSQL lets leakproof quals run before row-level security quals);
 * the others and the projection move to s, to run in hp_scan_exec on rows
 * the gate let through.  Index conditions are operators of index operator
 * classes; they stay in the scan (paths.c keeps them leakproof).
 */
static void
hp_split_scan(PlanState *ps, HpScan *s)
{
	List	   *early = NIL,
			   *late = NIL;
	ListCell   *lc;
	bool		hashed;

	foreach(lc, ps->plan->qual)
	{
		if (hp_qual_runs_late(lfirst(lc), ps->state, s->slot_attnum))
			late = lappend(late, lfirst(lc));
		else
			early = lappend(early, lfirst(lc));
	}
	early = hp_linear_saops(early, &hashed);
	if (late != NIL || hashed)
		ps->qual = ExecInitQual(early, ps);
	if (late != NIL)
		s->late_qual = ExecInitQual(late, ps);

	/* the recheck conditions of index and bitmap heap scans, likewise */
	if (IsA(ps, IndexScanState))
	{
		List	   *orig = hp_linear_saops(((IndexScan *) ps->plan)->indexqualorig, &hashed);

		if (hashed)
			((IndexScanState *) ps)->indexqualorig = ExecInitQual(orig, ps);
	}
	else if (IsA(ps, BitmapHeapScanState))
	{
		List	   *orig = hp_linear_saops(((BitmapHeapScan *) ps->plan)->bitmapqualorig, &hashed);

		if (hashed)
			((BitmapHeapScanState *) ps)->bitmapqualorig = ExecInitQual(orig, ps);
	}
	/*
	 * Without a projection the scan returns the row as read, which the gate
	 * needs anyway (also in an EvalPlanQual recheck, where it is the row
	 * version under test); so the projection always moves after the gate.
	 */
	if (ps->ps_ProjInfo != NULL)
	{
		s->proj = ps->ps_ProjInfo;
		ps->ps_ProjInfo = NULL;
	}
}

/*
 * A condition evaluated before the gate failed on the row in the scan slot.
 * Leakproof code may still raise an error for reasons other than the row's
 * values (starts_with() under a nondeterministic collation always does),
 * and whether it was called at all depends on the row (CASE WHEN person =
 * 'P50' THEN ... END): the error tells the reader that such a row was
 * scanned, so the row is gated first, as a row the scan returned (decision
 * already made: allowed, break glass or superuser; quota; record), then
 * the error goes on.  An operator's cancel or a shutdown says nothing of
 * the row.
 */
static void pg_attribute_noreturn()
hp_qual_failed(HpQualWrap *q, ExprContext *econtext)
{
	MemoryContext old = MemoryContextSwitchTo(q->scan->ps->state->es_query_cxt);
	ErrorData  *edata = CopyErrorData();
	TupleTableSlot *row = econtext->ecxt_scantuple;

	FlushErrorState();
	if (row != NULL && !TupIsNull(row) && !q->scan->gate->unaudited &&
		q->scan->gate->mode != HP_DENIED &&
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_TO_CATEGORY(ERRCODE_QUERY_CANCELED))
		hp_gate_row(q->scan->gate, row, q->scan->slot_attnum);
	MemoryContextSwitchTo(old);
	ReThrowError(edata);
}

/* Wrapped evaluation of a condition a gated scan runs before the gate */
static Datum
hp_qual_eval(ExprState *state, ExprContext *econtext, bool *isnull)
{
	HpQualWrap *q = hp_wrapped_find(state, HP_WRAP_QUAL);
	volatile Datum d = (Datum) 0;

	if (q == NULL)
		elog(ERROR, "health_pass lost track of a scan condition");
	PG_TRY();
	{
		d = q->real(state, econtext, isnull);
	}
	PG_CATCH();
	{
		hp_qual_failed(q, econtext);
	}
	PG_END_TRY();
	/* the executor may replace evalfunc after a first call: put ours back */
	if (state->evalfunc != hp_qual_eval)
	{
		q->real = state->evalfunc;
		state->evalfunc = hp_qual_eval;
	}
	return d;
}

/* Wrap one condition of scan s that runs before the gate (NULL: none) */
static void
hp_wrap_qual(HpScan *s, ExprState *state)
{
	EState	   *estate = s->ps->state;
	HpQualWrap *q;

	if (state == NULL || hp_wrapped_find(state, HP_WRAP_QUAL) != NULL)
		return;
	q = MemoryContextAlloc(estate->es_query_cxt, sizeof(HpQualWrap));
	q->state = state;
	q->real = state->evalfunc;
	q->scan = s;
	hp_wrapped_enter(hp_estate_of(estate), state, HP_WRAP_QUAL, q);
	state->evalfunc = hp_qual_eval;
}

/* Wrap one scan node of a protected table */
static void
hp_wrap_scan(PlanState *ps, Relation rel, AttrNumber attnum, HpWalk *w)
{
	HpScan	   *s;
	AttrNumber	slot_attnum = attnum;
	EState	   *estate = ps->state;
	MemoryContext old;
	HpStmt	   *st;

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

	st = hp_walk_stmt(w, estate);
	old = MemoryContextSwitchTo(estate->es_query_cxt);
	s = palloc0(sizeof(HpScan));
	s->ps = ps;
	s->slot_attnum = slot_attnum;
	s->gate = hp_gate_get(st, RelationGetRelid(rel), attnum);
	if (s->gate->mode != HP_DENIED)
		hp_split_scan(ps, s);
	hp_stats_init(s, ps);
	MemoryContextSwitchTo(old);
	/* entered, then installed: each step complete before the next */
	s->real = ps->ExecProcNodeReal;
	hp_wrapped_enter(hp_estate_of(estate), ps, HP_WRAP_SCAN, s);
	ps->ExecProcNodeReal = hp_scan_exec;
	w->wrapped = true;

	/* the conditions it evaluates on rows before the gate (an error in one) */
	if (s->gate->mode != HP_DENIED)
	{
		hp_wrap_qual(s, ps->qual);
		if (IsA(ps, IndexScanState))
			hp_wrap_qual(s, ((IndexScanState *) ps)->indexqualorig);
		else if (IsA(ps, BitmapHeapScanState))
			hp_wrap_qual(s, ((BitmapHeapScanState *) ps)->bitmapqualorig);
	}
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

		/*
		 * A SubPlan copied into several places (the quals of each partition
		 * of a partitioned table) shares one plan state: the walk reaches
		 * its scans once per copy.
		 */
		if (attnum > 0 && hp_wrapped_find(ps, HP_WRAP_SCAN) != NULL)
			return false;
		if (attnum > 0)
			hp_wrap_scan(ps, rel, attnum, w);
	}
	else if (IsA(ps, ModifyTableState))
	{
		ModifyTableState *mt = (ModifyTableState *) ps;

		hp_check_probed(mt, w);
		hp_wrap_upserts(mt, w);

		/*
		 * With or without RETURNING: the recheck plan runs the scan's leaky
		 * quals and projection (the SET list) on the row's newest version,
		 * and MERGE its WHEN conditions and actions.
		 */
		if (mt->operation == CMD_UPDATE || mt->operation == CMD_DELETE ||
			mt->operation == CMD_MERGE)
			w->epq = list_append_unique_ptr(w->epq, ps);
	}
	else if (IsA(ps, LockRowsState))
		w->epq = list_append_unique_ptr(w->epq, ps);	/* shared SubPlans */
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
		HpScan	   *s = MemoryContextAllocZero(ps->state->es_query_cxt, sizeof(HpScan));

		s->ps = ps;
		s->real = ps->ExecProcNodeReal;
		s->epq = IsA(ps, LockRowsState) ? &((LockRowsState *) ps)->lr_epqstate :
			&((ModifyTableState *) ps)->mt_epqstate;
		s->stmt = w->stmt;
		hp_wrapped_enter(hp_estate_of(ps->state), ps, HP_WRAP_SCAN, s);
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

	/* a one-time wrapper: step out (its entry goes with the node's memory) */
	ps->ExecProcNodeReal = real;
	if (ps->ExecProcNode == hp_epq_exec)
		ps->ExecProcNode = real;
	if (epq->recheckestate == NULL && epq->plan != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(epq->parentestate->es_query_cxt);
		HpWalk		w = {.stmt = stmt, .owner = epq->parentestate, .reader = stmt->reader};

		EvalPlanQualBegin(epq);
		MemoryContextSwitchTo(old);
		hp_walk(epq->recheckplanstate, &w);
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
	if (!hp_any_protected())
		return;
	w.reader = GetOuterUserId();
	w.stmt = NULL;
	w.wrapped = false;
	w.epq = NIL;
	/* a query nested in a running one belongs to the outer statement */
	w.owner = (depth > 0 && top_estate) ? top_estate : qd->estate;
	hp_walk(qd->planstate, &w);
	hp_wrap_epq_nodes(&w);
}

/* ExecutorRun hook: track nesting; hold rows back under audit_sync */
static void
hp_executor_run(QueryDesc *qd, ScanDirection dir, uint64 count, bool once)
{
	EState	   *saved_top = top_estate;
	DestReceiver *saved_dest = NULL;

	/* a client's statement begins (not one a utility statement runs) */
	if (depth == 0 && !hp_send_in_utility())
		hp_statement_count++;
	if (depth == 0)
	{
		top_estate = qd->estate;
		if (hp_audit_sync && hp_any_protected())
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

	/*
	 * A top-level statement without a result (DML without RETURNING) ends
	 * here: under audit_sync its records are durable before it returns, or
	 * it fails with YHA01 and rolls back (send.c).
	 */
	if (depth == 0)
		hp_send_sync();
}

/* End of transaction: break glass ends; nesting state resets on abort */
static void
hp_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		bg_stack = NIL;			/* its memory, TopTransactionContext, goes */
	if (event == XACT_EVENT_ABORT)
	{
		depth = 0;
		top_estate = NULL;
	}
}

/*
 * End of a subtransaction: a break_glass() called inside one that rolls
 * back is taken back; one that commits passes it to its parent.
 */
static void
hp_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	foreach(lc, bg_stack)
	{
		HpBreakGlass *b = lfirst(lc);

		if (b->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			bg_stack = foreach_delete_current(bg_stack, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			b->subid = parentSubid;
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
	RegisterSubXactCallback(hp_subxact_callback, NULL);
	CacheRegisterSyscacheCallback(AUTHOID, hp_roles_changed, (Datum) 0);
}

PG_FUNCTION_INFO_V1(hp_break_glass);

/*
 * break_glass(reason): until the end of this transaction (or a rollback
 * to a savepoint taken before the call) the calling role reads protected
 * tables outside its rules, every read audited as break_glass with this
 * reason.  Who may call it is who has EXECUTE on it.
 */
Datum
hp_break_glass(PG_FUNCTION_ARGS)
{
	char	   *reason = text_to_cstring(PG_GETARG_TEXT_PP(0));
	HpBreakGlass *b;
	MemoryContext old;

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
	old = MemoryContextSwitchTo(TopTransactionContext);
	b = palloc(sizeof(HpBreakGlass));
	b->role = GetOuterUserId();
	b->subid = GetCurrentSubTransactionId();
	hp_copy_field(b->reason, HP_REASON_LEN, reason);
	bg_stack = lappend(bg_stack, b);
	MemoryContextSwitchTo(old);
	ereport(NOTICE,
			(errmsg("break glass in force until the end of this transaction; every read of a protected table is audited with your reason")));
	PG_RETURN_VOID();
}

/*
 * After a utility statement ran: if it changed health_pass.audit_superusers
 * (SET, SET LOCAL, RESET [ALL], ALTER ROLE/DATABASE ... SET, ALTER SYSTEM),
 * record the change in the chain.  A change through set_config() is not
 * seen here; every statement that then reads a protected table without
 * records leaves one that says so (hp_gate_get).
 */
void
hp_note_audit_superusers(Node *stmt, bool before)
{
	VariableSetStmt *vs = NULL;
	const char *how;
	char		reason[HP_REASON_LEN];
	char	   *value;
	HpRecord	rec;

	if (IsA(stmt, VariableSetStmt))
	{
		vs = (VariableSetStmt *) stmt;
		how = vs->is_local ? "SET LOCAL" : "SET";
	}
	else if (IsA(stmt, AlterRoleSetStmt))
	{
		vs = ((AlterRoleSetStmt *) stmt)->setstmt;
		how = "ALTER ROLE ... SET";
	}
	else if (IsA(stmt, AlterDatabaseSetStmt))
	{
		vs = ((AlterDatabaseSetStmt *) stmt)->setstmt;
		how = "ALTER DATABASE ... SET";
	}
	else if (IsA(stmt, AlterSystemStmt))
	{
		vs = ((AlterSystemStmt *) stmt)->setstmt;
		how = "ALTER SYSTEM";
	}
	else
		return;
	if (vs == NULL)
		return;
	if (vs->kind == VAR_RESET_ALL)
		value = pstrdup("RESET ALL");
	else if (vs->name == NULL || pg_strcasecmp(vs->name, "health_pass.audit_superusers") != 0)
		return;
	else if (vs->kind == VAR_SET_VALUE)
		value = ExtractSetVariableArgs(vs);
	else
		value = pstrdup(vs->kind == VAR_RESET ? "RESET" : "DEFAULT");
	/*
	 * In the session, only a change is news: a SET to the same value, or a
	 * RESET ALL (which any role may run) that leaves it as it was, is not
	 * recorded (a loop of them would flood the log).  Stored settings
	 * (ALTER ROLE/DATABASE/SYSTEM) change only by a superuser's hand for
	 * this superuser-only setting; their RESET ALL by others keeps it.
	 */
	if (IsA(stmt, VariableSetStmt) && before == hp_audit_superusers)
		return;
	if (!IsA(stmt, VariableSetStmt) && vs->kind == VAR_RESET_ALL && !superuser())
		return;
	if (!hp_any_protected())
		return;					/* nothing here for it to hide */
	snprintf(reason, sizeof(reason), "health_pass.audit_superusers changed by %s: %s; now %s",
			 how, value ? value : "", hp_audit_superusers ? "on" : "off");
	hp_record_session(&rec);
	rec.logged_at = GetCurrentTimestamp();
	rec.statement_id = hp_next_statement_id();
	rec.relid = InvalidOid;
	rec.outcome = (uint8) HP_SUPERUSER;
	rec.subject_null = true;
	strlcpy(rec.purpose, hp_purpose ? hp_purpose : "", HP_PURPOSE_LEN);
	hp_copy_field(rec.reason, HP_REASON_LEN, reason);
	hp_denial_audit(&rec);		/* counted when repeated, like refusals */
}
