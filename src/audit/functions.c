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
#include "lib/stringinfo.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
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

PG_FUNCTION_INFO_V1(hp_audit_verify);

/*
 * audit_verify(): walk audit_block in id order, unpack every block and
 * recompute the chain.  Returns (ok, checked, first_bad, why): first_bad is
 * the id of the first record altered, reordered, missing (a deleted record
 * is reported by its id) or unreadable (a field audit_log cannot show as
 * it was stored); a block that does not decode, or whose summary does not
 * match its records, is reported by the id the chain expected there.  why
 * says which, NULL when ok.  Reads every block whatever it holds: nothing
 * stored makes it fail.
 */
Datum
hp_audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[4];
	bool		outnull[4] = {false, false, true, true};
	Portal		portal;
	uint8		prev[32] = {0};
	int64		expect = 1;
	int64		checked = 0;
	int64		first_bad = 0;
	char	   *why_bad = NULL;
	int64		head_id = 0;
	HpQueue    *q = hp_queues ? hp_queue_for_database(MyDatabaseId, false) : NULL;
	MemoryContext blockcxt;
	MemoryContext callcxt = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "audit_verify must return a composite type");
	rdesc = BlessTupleDesc(rdesc);

	/* the writer's head, read before the query's snapshot is taken */
	if (q && XactIsoLevel == XACT_READ_COMMITTED)
	{
		Oid			relid = hp_extension_relation_oid("audit_block");

		LWLockAcquire(q->lock, LW_SHARED);
		if (q->head_relid == relid)
			head_id = q->last_id;
		LWLockRelease(q->lock);
	}

	SPI_connect();
	/* one unpacked block at a time, freed before the next */
	blockcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass verify block",
									 ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT min_id, max_id, min_at, max_at, subjects, records "
									   "FROM health_pass.audit_block ORDER BY min_id",
									   0, NULL, NULL, NULL, true, 0);
	while (first_bad == 0)
	{
		SPI_cursor_fetch(portal, true, 64);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed && first_bad == 0; r++)
		{
			HeapTuple	t = SPI_tuptable->vals[r];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bytea	   *records = hp_col_bytea(t, d, 6);
			MemoryContext old = MemoryContextSwitchTo(blockcxt);
			HpBlock		b = {{0}};
			const char *why = NULL;
			const char *bad = NULL;
			int64		block_first = expect;

			if (records == NULL)
				bad = "unreadable block: records is NULL";
			else if (!hp_block_unpack(records, &b, &why))
				bad = psprintf("unreadable block: %s", why ? why : "unknown");
			else if (b.n == 0)
				bad = "empty block";
			if (bad)
				first_bad = expect;
			for (int i = 0; i < b.n && first_bad == 0; i++)
			{
				HpEntry    *e = &b.entries[i];
				uint8		computed[32];
				uint32		unreadable;

				if (e->id != expect)
				{
					first_bad = expect; /* a missing or moved record */
					bad = "record missing or out of order";
					break;
				}
				hp_record_hash(prev, e, computed);
				if ((i == 0 && memcmp(b.prev_hash, prev, 32) != 0) ||
					memcmp(e->hash, computed, 32) != 0)
				{
					first_bad = e->id;
					bad = "record altered: its hash does not chain";
					break;
				}
				unreadable = hp_entry_check(e, hp_db_text_valid, NULL);
				if (unreadable != 0)
				{
					first_bad = e->id;
					bad = psprintf("unreadable record: %s", hp_fields_text(unreadable));
					break;
				}
				memcpy(prev, e->hash, 32);
				checked++;
				expect++;
			}
			/* a block whose records are sound but whose summary is not */
			if (first_bad == 0 && !hp_block_summary_ok(t, d, &b))
			{
				first_bad = block_first;
				bad = "block summary (ids, times or bloom filter) does not match its records";
			}
			if (bad)
				why_bad = MemoryContextStrdup(callcxt, bad);
			MemoryContextSwitchTo(old);
			MemoryContextReset(blockcxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();

	/* records the writer committed that are gone from the end */
	if (first_bad == 0 && head_id >= expect)
	{
		first_bad = expect;
		why_bad = "records missing at the end";
	}

	out[0] = BoolGetDatum(first_bad == 0);
	out[1] = Int64GetDatum(checked);
	if (first_bad != 0)
	{
		out[2] = Int64GetDatum(first_bad);
		outnull[2] = false;
		out[3] = CStringGetTextDatum(why_bad ? why_bad : "unknown");
		outnull[3] = false;
	}
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
