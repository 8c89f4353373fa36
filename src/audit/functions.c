/*
 * functions.c
 *    SQL-facing side of the audit log: the chain check audit_verify(), the
 *    guard trigger that refuses changes to audit_block from everyone but
 *    superusers, and audit_status() for operators and tests.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_type_d.h"
#include "common/hp_common.h"
#include "lib/stringinfo.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"

PG_FUNCTION_INFO_V1(hp_audit_guard);

/* Trigger on audit_block: only superusers (the writer is one) may change it */
Datum
hp_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hp_audit_guard must be called as a trigger")));
	hp_audit_refuse_unless_superuser(TRIGGER_FIRED_BY_INSERT(td->tg_event) ? "insert" :
									 TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "update" :
									 TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "delete" : "truncate");
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		return PointerGetDatum(TRIGGER_FIRED_BY_DELETE(td->tg_event) ?
							   td->tg_trigtuple :
							   (td->tg_newtuple ? td->tg_newtuple : td->tg_trigtuple));
	return PointerGetDatum(NULL);
}

/* bytea column i of an SPI row, or NULL */
static bytea *
hp_col_bytea(HeapTuple t, TupleDesc d, int i)
{
	bool		isnull;
	Datum		v = SPI_getbinval(t, d, i, &isnull);

	return isnull ? NULL : DatumGetByteaPP(v);
}

/*
 * True when a block row's summary columns (min_id, max_id, min_at, max_at,
 * subjects) are those of its records: a forged summary could hide records
 * from who_read() or from a time-window question.
 */
static bool
hp_block_summary_ok(HeapTuple t, TupleDesc d, const HpBlock *b)
{
	Datum		v[5];
	bool		nulls[5];
	bool		isnull;
	bytea	   *stored = hp_col_bytea(t, d, 5);
	bytea	   *bloom;

	hp_block_summary(b->entries, b->n, v, nulls);
	bloom = DatumGetByteaPP(v[4]);
	for (int i = 0; i < 4; i++)
	{
		Datum		s = SPI_getbinval(t, d, i + 1, &isnull);

		if (isnull || DatumGetInt64(s) != DatumGetInt64(v[i]))
			return false;
	}
	return stored != NULL &&
		VARSIZE_ANY_EXHDR(stored) == VARSIZE_ANY_EXHDR(bloom) &&
		memcmp(VARDATA_ANY(stored), VARDATA_ANY(bloom), VARSIZE_ANY_EXHDR(bloom)) == 0;
}

/*
 * A walk along the chain (audit_verify, audit_checkpoint, audit_archive):
 * from the record after start_id, whose hash must chain to start_hash, to
 * the end or to record upto.  Every anchor from start_id on is checked:
 * the record at its id must have its hash, and (on a walk to the end) a
 * record of its kind (archived, verified) after it must name it, so a
 * checkpoint or anchor forged in audit_anchor alone is found
 * (docs/design/audit_index.md).
 */
typedef struct HpWalk
{
	int64		start_id;		/* in: 0 and a zero hash: from the first record */
	uint8		start_hash[32];
	int64		upto;			/* in: last record to check; 0: to the end */
	HpAnchor   *anchors;		/* in: anchors with id >= start_id, by id */
	int			nanchors;
	int64		checked;		/* out */
	int64		first_bad;		/* out: 0 when sound */
	char	   *why;
	int64		last_id;		/* out: last record checked, and its hash */
	uint8		last_hash[32];
} HpWalk;

/* A lower-case hex digit's value, or -1 (a forged reason never throws) */
static int
hp_hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "anchor <id> <64 hex digits>" at the start of an anchor record's reason */
static bool
hp_anchor_parse(const char *reason, int64 *id, uint8 *hash)
{
	const char *p;
	char	   *end;
	long long	v;

	if (reason == NULL || strncmp(reason, "anchor ", 7) != 0)
		return false;
	errno = 0;
	v = strtoll(reason + 7, &end, 10);
	if (errno != 0 || end == reason + 7 || *end != ' ')
		return false;
	p = end + 1;
	for (int i = 0; i < 32; i++)
	{
		int			hi = hp_hex_digit(p[2 * i]),
					lo = hi < 0 ? -1 : hp_hex_digit(p[2 * i + 1]);

		if (lo < 0)
			return false;
		hash[i] = (uint8) (hi * 16 + lo);
	}
	*id = (int64) v;
	return true;
}

/* "anchor <id> <hex>": the start of an anchor record's reason */
static char *
hp_anchor_text(int64 id, const uint8 *hash)
{
	char		hex[65];

	hex[hex_encode((const char *) hash, 32, hex)] = '\0';
	return psprintf("anchor " INT64_FORMAT " %s", id, hex);
}

/* An anchor's name in a message */
static const char *
hp_anchor_kind(const HpAnchor *a)
{
	return a->archived ? "archive anchor" : "checkpoint";
}

/*
 * Walk the chain (HpWalk); the caller is connected to SPI, with search_path
 * pinned (hp_search_path_pin): an operator of the caller's schema must not
 * decide which blocks are read (it made the walk read none), nor run as the
 * superuser who sets an anchor.  The names are qualified all the same.
 */
static void
hp_chain_walk(HpWalk *w)
{
	Portal		portal;
	uint8		prev[32];
	int64		expect = w->start_id + 1;
	int			next_anchor = 0;	/* the next anchor the walk reaches */
	bool		done = false;
	MemoryContext blockcxt;
	MemoryContext callcxt = CurrentMemoryContext;
	Oid			argtypes[2] = {INT8OID, INT8OID};

	memcpy(prev, w->start_hash, 32);
	w->checked = 0;
	w->first_bad = 0;
	w->why = NULL;
	while (next_anchor < w->nanchors && w->anchors[next_anchor].id <= w->start_id)
	{
		/* the start anchor itself must match the record it names (below) */
		if (w->anchors[next_anchor].id == w->start_id)
			break;
		next_anchor++;
	}
	/* one unpacked block at a time, freed before the next */
	blockcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass verify block",
									 ALLOCSET_DEFAULT_SIZES);
	/* from the block that holds the record after start_id on */
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT min_id, max_id, min_at, max_at, subjects, records "
									   "FROM health_pass.audit_block WHERE min_id OPERATOR(pg_catalog.>=) "
									   "coalesce((SELECT pg_catalog.max(min_id) FROM health_pass.audit_block "
									   "WHERE min_id OPERATOR(pg_catalog.<=) $1), $1) "
									   "AND ($2 OPERATOR(pg_catalog.=) 0 OR min_id OPERATOR(pg_catalog.<=) $2) "
									   "ORDER BY min_id",
									   2, argtypes,
									   (Datum[]) {Int64GetDatum(w->start_id + 1), Int64GetDatum(w->upto)},
									   NULL, true, 0);
	while (w->first_bad == 0 && !done)
	{
		SPI_cursor_fetch(portal, true, 64);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed && w->first_bad == 0 && !done; r++)
		{
			HeapTuple	t = SPI_tuptable->vals[r];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bytea	   *records = hp_col_bytea(t, d, 6);
			MemoryContext old = MemoryContextSwitchTo(blockcxt);
			HpBlock		b = {{0}};
			const char *why = NULL;
			const char *bad = NULL;
			int64		block_first = expect;

			CHECK_FOR_INTERRUPTS();
			if (records == NULL)
				bad = "unreadable block: records is NULL";
			else if (!hp_block_unpack(records, &b, &why))
				bad = psprintf("unreadable block: %s", why ? why : "unknown");
			else if (b.n == 0)
				bad = "empty block";
			if (bad)
				w->first_bad = expect;
			for (int i = 0; i < b.n && w->first_bad == 0; i++)
			{
				HpEntry    *e = &b.entries[i];
				uint8		computed[32];
				uint32		unreadable;
				int64		aid;
				uint8		ahash[32];

				/* records before the start, in the block the walk starts in */
				if (e->id <= w->start_id && e->id < expect)
				{
					if (e->id == w->start_id && w->start_id > 0 &&
						memcmp(e->hash, w->start_hash, 32) != 0)
					{
						w->first_bad = e->id;
						bad = "the anchor the check starts from does not match the record it names";
					}
					continue;
				}
				if (w->upto > 0 && e->id > w->upto)
				{
					done = true;
					break;
				}
				if (e->id != expect)
				{
					w->first_bad = expect;	/* a missing or moved record */
					bad = "record missing or out of order";
					break;
				}
				hp_record_hash(prev, e, computed);
				if ((i == 0 && memcmp(b.prev_hash, prev, 32) != 0) ||
					memcmp(e->hash, computed, 32) != 0)
				{
					w->first_bad = e->id;
					bad = expect == w->start_id + 1 && w->start_id > 0 ?
						"record altered or anchor forged: the first record after the anchor does not chain to it" :
						"record altered: its hash does not chain";
					break;
				}
				unreadable = hp_entry_check(e, hp_db_text_valid, NULL);
				if (unreadable != 0)
				{
					w->first_bad = e->id;
					bad = psprintf("unreadable record: %s", hp_fields_text(unreadable));
					break;
				}
				/* an anchor at this record: its hash is the record's */
				while (next_anchor < w->nanchors && w->anchors[next_anchor].id < e->id)
					next_anchor++;
				if (next_anchor < w->nanchors && w->anchors[next_anchor].id == e->id &&
					memcmp(w->anchors[next_anchor].hash, e->hash, 32) != 0)
				{
					w->first_bad = e->id;
					bad = psprintf("the %s at record " INT64_FORMAT " does not match the chain",
								   hp_anchor_kind(&w->anchors[next_anchor]), e->id);
					break;
				}
				/* an anchor record names the anchor it was written for */
				if ((e->outcome == HP_ARCHIVED || e->outcome == HP_VERIFIED) &&
					hp_anchor_parse(e->reason, &aid, ahash))
					for (int k = 0; k < w->nanchors; k++)
						if (w->anchors[k].id == aid && aid < e->id &&
							memcmp(w->anchors[k].hash, ahash, 32) == 0 &&
							w->anchors[k].archived == (e->outcome == HP_ARCHIVED))
							w->anchors[k].recorded = true;
				memcpy(prev, e->hash, 32);
				w->checked++;
				expect++;
			}
			/* a block whose records are sound but whose summary is not */
			if (w->first_bad == 0 && !hp_block_summary_ok(t, d, &b))
			{
				w->first_bad = block_first;
				bad = "block summary (ids, times or bloom filter) does not match its records";
			}
			if (bad)
				w->why = MemoryContextStrdup(callcxt, bad);
			MemoryContextSwitchTo(old);
			MemoryContextReset(blockcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(blockcxt);
	w->last_id = expect - 1;
	memcpy(w->last_hash, prev, 32);

	/* on a walk to the end, every anchor it passed is recorded in the chain */
	if (w->first_bad == 0 && w->upto == 0)
		for (int k = 0; k < w->nanchors; k++)
			if (w->anchors[k].id >= w->start_id && w->anchors[k].id > 0 &&
				!w->anchors[k].recorded)
			{
				w->first_bad = Max(w->anchors[k].id, 1);
				w->why = psprintf("the %s at record " INT64_FORMAT " is not recorded in the chain: no %s record after it names it",
								  hp_anchor_kind(&w->anchors[k]), w->anchors[k].id,
								  w->anchors[k].archived ? "archived" : "verified");
				break;
			}
}

/*
 * Set up a walk from the newest anchor (incremental) or the newest archive
 * anchor (full; without one, the first record), over the anchors from there
 * on.  The anchors are read in the current context, under snap (NULL: a new
 * snapshot).
 */
static void
hp_walk_from_anchor(HpWalk *w, bool incremental, Snapshot snap)
{
	HpAnchor   *a;
	int			n = hp_anchors_read(&a, snap);
	int			from = -1;

	memset(w, 0, sizeof(*w));
	for (int k = 0; k < n; k++)
		if (incremental || a[k].archived)
			from = k;
	if (from >= 0)
	{
		w->start_id = a[from].id;
		memcpy(w->start_hash, a[from].hash, 32);
	}
	w->anchors = from >= 0 ? a + from : a;
	w->nanchors = from >= 0 ? n - from : n;
}

/*
 * The writer's head in this database (0: unknown), read before the walk
 * takes its snapshot: every record up to it is committed, so visible to
 * the walk, whatever the caller's isolation level.
 */
static int64
hp_writer_head_id(void)
{
	HpQueue    *q = hp_queues ? hp_queue_for_database(MyDatabaseId, false) : NULL;
	int64		head_id = 0;

	if (q)
	{
		Oid			relid = hp_extension_relation_oid("audit_block");

		LWLockAcquire(q->lock, LW_SHARED);
		if (q->head_relid == relid)
			head_id = q->last_id;
		LWLockRelease(q->lock);
	}
	return head_id;
}

/*
 * A walk to the end, as audit_verify() does it: records the writer committed
 * and are gone from the end too.  The anchors and the blocks are read under
 * one new snapshot, taken after the writer's head is read, not under the
 * caller's: what the check answers does not depend on the caller's
 * isolation level (under REPEATABLE READ, which skipped the head, records
 * cut from the end went unseen) nor on what committed since its statement
 * or transaction began (an archive in between, its anchor seen and its
 * record not, made an intact log look broken; a batch the writer committed
 * in between made it look cut).
 */
static void
hp_verify_walk(HpWalk *w, bool incremental)
{
	int64		head_id = hp_writer_head_id();
	MemoryContext outer = CurrentMemoryContext;
	int			nest = hp_search_path_pin();
	Snapshot	snap;

	SPI_connect();
	snap = RegisterSnapshot(GetLatestSnapshot());
	PushActiveSnapshot(snap);	/* the walk's read-only cursor reads under it */
	hp_walk_from_anchor(w, incremental, snap);
	hp_chain_walk(w);
	PopActiveSnapshot();
	UnregisterSnapshot(snap);
	if (w->why)
		w->why = MemoryContextStrdup(outer, w->why);
	w->anchors = NULL;			/* SPI's memory */
	w->nanchors = 0;
	SPI_finish();
	hp_search_path_restore(nest);
	if (w->first_bad == 0 && head_id > w->last_id)
	{
		w->first_bad = w->last_id + 1;
		w->why = "records missing at the end";
	}
}

PG_FUNCTION_INFO_V1(hp_audit_verify);

/*
 * audit_verify(): walk audit_block in id order, unpack every block and
 * recompute the chain, from the newest archive anchor (audit_archive) or
 * the first record.  Returns (ok, checked, first_bad, why): first_bad is
 * the id of the first record altered, reordered, missing (a deleted record
 * is reported by its id) or unreadable (a field audit_log cannot show as
 * it was stored); a block that does not decode, or whose summary does not
 * match its records, is reported by the id the chain expected there; an
 * anchor that does not match the chain or is not recorded in it, by its
 * id.  why says which, NULL when ok.  Reads every block whatever it
 * holds: nothing stored makes it fail.
 *
 * audit_verify(incremental boolean): the same, from the newest anchor of
 * any kind (a checkpoint, audit_checkpoint) when incremental, with three
 * more columns: from_id (the first record checked), last_id and last_hash
 * (the last one, and its hash: what a checkpoint would anchor).
 */
Datum
hp_audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[7];
	bool		outnull[7] = {false, false, true, true, false, false, false};
	bool		incremental = PG_NARGS() > 0 && PG_GETARG_BOOL(0);
	HpWalk		w;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "audit_verify must return a composite type");
	rdesc = BlessTupleDesc(rdesc);
	hp_verify_walk(&w, incremental);
	out[0] = BoolGetDatum(w.first_bad == 0);
	out[1] = Int64GetDatum(w.checked);
	if (w.first_bad != 0)
	{
		out[2] = Int64GetDatum(w.first_bad);
		outnull[2] = false;
		out[3] = CStringGetTextDatum(w.why ? w.why : "unknown");
		outnull[3] = false;
	}
	out[4] = Int64GetDatum(w.start_id + 1);
	out[5] = Int64GetDatum(w.last_id);
	out[6] = PointerGetDatum(hp_bytea(w.last_hash, 32));
	if (rdesc->natts != 4 && rdesc->natts != 7)
		elog(ERROR, "audit_verify must return 4 or 7 columns");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, out, outnull)));
}

/* Only a superuser sets anchors; the table is locked against another doing so at once */
static Oid
hp_anchor_lock(const char *what)
{
	Oid			relid = hp_extension_relation_oid("audit_anchor");

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may %s", what)));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("health_pass.audit_anchor does not exist"),
				 errhint("Update the extension: ALTER EXTENSION health_pass UPDATE.")));
	LockRelationOid(relid, ShareRowExclusiveLock);
	return relid;
}

/* Write the anchor (id, hash) of kind into the chain and into audit_anchor */
static void
hp_anchor_set(int64 id, const uint8 *hash, HpOutcome kind, const char *detail)
{
	Oid			argtypes[3] = {INT8OID, BYTEAOID, TEXTOID};
	const char *k = kind == HP_ARCHIVED ? "archived" : "verified";

	/* the record first, durable: an anchor row never exists without it */
	hp_audit_event(kind, hp_extension_relation_oid("audit_block"), NULL, NULL,
				   psprintf("%s; %s", hp_anchor_text(id, hash), detail), GetUserId());
	if (SPI_execute_with_args("INSERT INTO health_pass.audit_anchor (id, hash, kind) "
							  "VALUES ($1, $2, $3)", 3, argtypes,
							  (Datum[]) {Int64GetDatum(id), PointerGetDatum(hp_bytea(hash, 32)),
								  CStringGetTextDatum(k)}, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into health_pass.audit_anchor");
}

PG_FUNCTION_INFO_V1(hp_audit_checkpoint);

/*
 * audit_checkpoint(): superuser only.  Verify the chain from the newest
 * anchor (audit_verify(true)); when it is sound, anchor its last record:
 * a record of outcome "verified" whose reason starts "anchor <id> <hash>"
 * is written (durably) into the chain, then the row (id, hash, 'verified')
 * into audit_anchor.  audit_verify(true) starts from there next time.
 * Returns the anchor (id, hash); nothing new since the newest anchor: that
 * one, and nothing is written.  A chain that does not verify: an error
 * (data_corrupted), and no checkpoint.
 */
Datum
hp_audit_checkpoint(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[2];
	bool		outnull[2] = {false, false};
	HpWalk		w;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "audit_checkpoint must return a composite type");
	rdesc = BlessTupleDesc(rdesc);
	hp_anchor_lock("set an audit checkpoint");
	hp_verify_walk(&w, true);
	if (w.first_bad != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit log does not verify at record " INT64_FORMAT ": %s",
						w.first_bad, w.why ? w.why : "unknown"),
				 errdetail("No checkpoint was set."),
				 errhint("health_pass.audit_verify() checks the whole chain.")));
	if (w.last_id > w.start_id)
	{
		int			nest = hp_search_path_pin();

		SPI_connect();
		hp_anchor_set(w.last_id, w.last_hash, HP_VERIFIED,
					  psprintf("records " INT64_FORMAT " to " INT64_FORMAT " verified",
							   w.start_id + 1, w.last_id));
		SPI_finish();
		hp_search_path_restore(nest);
	}
	out[0] = Int64GetDatum(w.last_id);
	out[1] = PointerGetDatum(hp_bytea(w.last_hash, 32));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, out, outnull)));
}

PG_FUNCTION_INFO_V1(hp_audit_archive);

/*
 * audit_archive(before timestamptz): superuser only.  Drop the oldest
 * blocks, every one up to the first block with a record logged at or
 * after before, once they verify (from the newest archive anchor), and
 * anchor the chain at the last record dropped: an "archived" record naming
 * (id, hash) is written durably into the chain, the blocks are deleted and
 * (id, hash, 'archived') goes into audit_anchor.  audit_verify() then
 * starts from that anchor; the writer goes on from it even when every
 * block was dropped.  Archive them first (COPY, docs/design/
 * audit_index.md).  Returns the blocks and records dropped and the anchor.
 */
Datum
hp_audit_archive(PG_FUNCTION_ARGS)
{
	TimestampTz before = PG_GETARG_TIMESTAMPTZ(0);
	TupleDesc	rdesc;
	Datum		out[4];
	bool		outnull[4] = {false, false, false, false};
	HpWalk		w;
	int64		cut = 0;
	int64		blocks = 0;
	bool		isnull;
	int			nest;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "audit_archive must return a composite type");
	rdesc = BlessTupleDesc(rdesc);
	hp_anchor_lock("archive audit records");
	nest = hp_search_path_pin();	/* as hp_chain_walk says */
	SPI_connect();
	hp_walk_from_anchor(&w, false, NULL);
	/* the last record of the blocks before the first one to keep */
	if (SPI_execute_with_args("SELECT pg_catalog.max(max_id) FROM health_pass.audit_block "
							  "WHERE min_id OPERATOR(pg_catalog.<) coalesce((SELECT pg_catalog.min(min_id) "
							  "FROM health_pass.audit_block WHERE max_at OPERATOR(pg_catalog.>=) $1), "
							  "9223372036854775807)",
							  1, (Oid[]) {TIMESTAMPTZOID}, (Datum[]) {TimestampTzGetDatum(before)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read health_pass.audit_block");
	if (SPI_processed == 1)
	{
		Datum		v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		cut = isnull ? 0 : DatumGetInt64(v);
	}
	if (cut > w.start_id)
	{
		w.upto = cut;
		hp_chain_walk(&w);
		if (w.first_bad == 0 && w.last_id != cut)
		{
			w.first_bad = w.last_id + 1;
			w.why = "record missing or out of order";
		}
		if (w.first_bad != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the audit records to archive do not verify at record " INT64_FORMAT ": %s",
							w.first_bad, w.why ? w.why : "unknown"),
					 errdetail("Nothing was dropped."),
					 errhint("health_pass.audit_verify() checks the whole chain.")));
		hp_anchor_set(cut, w.last_hash, HP_ARCHIVED,
					  psprintf("records " INT64_FORMAT " to " INT64_FORMAT " archived, logged before %s",
							   w.start_id + 1, cut, timestamptz_to_str(before)));
		if (SPI_execute_with_args("DELETE FROM health_pass.audit_block WHERE min_id OPERATOR(pg_catalog.<=) $1",
								  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(cut)},
								  NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not delete from health_pass.audit_block");
		blocks = (int64) SPI_processed;
	}
	else
	{
		cut = w.start_id;
		memcpy(w.last_hash, w.start_hash, 32);
	}
	SPI_finish();
	hp_search_path_restore(nest);
	out[0] = Int64GetDatum(blocks);
	out[1] = Int64GetDatum(blocks > 0 ? cut - w.start_id : 0);
	out[2] = Int64GetDatum(cut);
	out[3] = PointerGetDatum(hp_bytea(w.last_hash, 32));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, out, outnull)));
}

PG_FUNCTION_INFO_V1(hp_audit_status);

/*
 * What a stalled writer waits for: "<mode> on relation <schema.name>" for
 * a relation of this database, PostgreSQL's description of any other lock,
 * or "error: <message>" when its last transaction failed otherwise.
 */
static char *
hp_wait_description(bool is_lock, const LOCKTAG *tag, LOCKMODE mode, const char *error)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (!is_lock)
	{
		appendStringInfo(&buf, "error: %s", error);
		return buf.data;
	}
	appendStringInfo(&buf, "%s on ", GetLockmodeName(tag->locktag_lockmethodid, mode));
	if (tag->locktag_type == LOCKTAG_RELATION && tag->locktag_field1 == MyDatabaseId)
	{
		Oid			relid = tag->locktag_field2;
		char	   *name = get_rel_name(relid);
		char	   *nsp = name ? get_namespace_name(get_rel_namespace(relid)) : NULL;

		if (name && nsp)
		{
			appendStringInfo(&buf, "relation %s", quote_qualified_identifier(nsp, name));
			return buf.data;
		}
	}
	DescribeLockTag(&buf, tag);
	return buf.data;
}

/*
 * audit_status(): this database's queue as the writer sees it: writer pid,
 * records queued and not yet committed, records committed since the server
 * started, commits (batches), and when the writer is stalled, what it
 * waits for, since when, and the pids that block it (docs/design/writer.md).
 * EXECUTE: superusers and pg_monitor (granted by the extension script).
 */
Datum
hp_audit_status(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[7];
	bool		outnull[7] = {false, false, false, false, true, true, true};
	HpQueue    *q;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "audit_status must return a composite type");
	rdesc = BlessTupleDesc(rdesc);
	hp_require_preload();
	q = hp_queue_for_database(MyDatabaseId, false);
	if (q == NULL)
	{
		outnull[0] = true;
		out[1] = out[2] = out[3] = Int64GetDatum(0);
	}
	else
	{
		TimestampTz since;
		bool		is_lock;
		LOCKTAG		tag;
		LOCKMODE	mode;
		int			pid;
		char		error[HP_WAIT_ERROR_LEN];

		LWLockAcquire(q->lock, LW_SHARED);
		outnull[0] = (q->writer_pid == 0);
		out[0] = Int32GetDatum(q->writer_pid);
		out[1] = Int64GetDatum((int64) (q->head - q->written));
		out[2] = Int64GetDatum((int64) (q->written - q->base));
		out[3] = Int64GetDatum((int64) q->committed_batches);
		since = q->writer_pid != 0 ? q->wait_since : 0;
		is_lock = q->wait_is_lock;
		tag = q->wait_tag;
		mode = q->wait_mode;
		pid = q->writer_pid;
		memcpy(error, q->wait_error, sizeof(error));
		/* a standby's shipper that cannot reach the primary (ship.c) */
		if (RecoveryInProgress() && q->ship_state == HP_SHIP_DOWN)
		{
			since = q->ship_since;
			is_lock = false;
			snprintf(error, sizeof(error), "the primary: %s", q->ship_error);
		}
		LWLockRelease(q->lock);
		error[HP_WAIT_ERROR_LEN - 1] = '\0';

		/* catalog lookups after the lock is released */
		if (since != 0)
		{
			out[4] = CStringGetTextDatum(hp_wait_description(is_lock, &tag, mode, error));
			out[5] = TimestampTzGetDatum(since);
			outnull[4] = outnull[5] = false;
			/* who holds the lock or waits ahead for it, as of now */
			if (is_lock)
			{
				out[6] = DirectFunctionCall1(pg_blocking_pids, Int32GetDatum(pid));
				outnull[6] = false;
			}
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, out, outnull)));
}

PG_FUNCTION_INFO_V1(hp_is_preloaded);

/* True when health_pass is in shared_preload_libraries */
Datum
hp_is_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hp_preloaded && hp_shmem_attached);
}

PG_FUNCTION_INFO_V1(hp_audit_flush);

/*
 * audit_flush(): wait (at most health_pass.audit_timeout) until every record
 * queued in this database so far is committed; returns how many records
 * the writer has committed since the server started.  EXECUTE: superusers
 * and the roles the DBA grants it to (each call makes the writer flush WAL).
 */
Datum
hp_audit_flush(PG_FUNCTION_ARGS)
{
	HpQueue    *q;
	uint64		head;

	hp_require_preload();
	q = hp_queue_for_database(MyDatabaseId, false);
	if (q == NULL)
		PG_RETURN_INT64(0);
	LWLockAcquire(q->lock, LW_SHARED);
	head = q->head;
	LWLockRelease(q->lock);
	hp_wait_durable(head);
	PG_RETURN_INT64((int64) (head - q->base));
}
