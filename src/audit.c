/*
 * audit.c
 *    SQL-facing side of the audit log: the chain check audit_verify(), the
 *    guard trigger that refuses changes to audit_log from everyone but
 *    superusers, and audit_status() for operators and tests.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "hp.h"
#include "hp_access.h"

PG_FUNCTION_INFO_V1(hp_audit_guard);

/* Trigger on audit_log: only superusers (the writer is one) may change it */
Datum
hp_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hp_audit_guard must be called as a trigger")));
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("health_pass.audit_log is append-only: only its writer may add records and only a superuser may %s them",
						TRIGGER_FIRED_BY_INSERT(td->tg_event) ? "insert" :
						TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "update" :
						TRIGGER_FIRED_BY_DELETE(td->tg_event) ? "delete" : "truncate")));
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		return PointerGetDatum(TRIGGER_FIRED_BY_DELETE(td->tg_event) ?
							   td->tg_trigtuple :
							   (td->tg_newtuple ? td->tg_newtuple : td->tg_trigtuple));
	return PointerGetDatum(NULL);
}

/* Text of column i of the current SPI row, or NULL */
static char *
hp_col(HeapTuple tup, TupleDesc desc, int i)
{
	return SPI_getvalue(tup, desc, i);
}

/* bytea column i as 32 bytes; false when NULL or another length */
static bool
hp_col_hash(HeapTuple tup, TupleDesc desc, int i, uint8 *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, i, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != 32)
		return false;
	memcpy(out, VARDATA_ANY(b), 32);
	return true;
}

PG_FUNCTION_INFO_V1(hp_audit_verify);

/*
 * audit_verify(): walk audit_log in id order and recompute the chain.
 * Returns (ok, checked, first_bad): first_bad is the id of the first record
 * altered, reordered or missing (a deleted record is reported by its id).
 */
Datum
hp_audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[3];
	bool		outnull[3] = {false, false, true};
	Portal		portal;
	uint8		prev[32] = {0};
	int64		expect = 1;
	int64		checked = 0;
	int64		first_bad = 0;
	int64		head_id = 0;
	HpQueue    *q = hp_shared ? hp_queue_for_database(MyDatabaseId, false) : NULL;
	MemoryContext rowcxt;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("audit_verify must return a composite type")));
	rdesc = BlessTupleDesc(rdesc);

	/* the writer's head, read before the query's snapshot is taken */
	if (q && XactIsoLevel == XACT_READ_COMMITTED)
	{
		Oid			relid = hp_relation_oid("audit_log");

		LWLockAcquire(q->lock, LW_SHARED);
		if (q->head_relid == relid)
			head_id = q->last_id;
		LWLockRelease(q->lock);
	}

	SPI_connect();
	/* the column texts of one record, freed before the next */
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass verify row",
								   ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT id, logged_at, session_user_name::text, "
									   "current_user_name::text, host(client_addr), application_name, "
									   "backend_pid, statement_id, relation::oid, subject, purpose, "
									   "outcome, reason, prev_hash, hash "
									   "FROM health_pass.audit_log ORDER BY id",
									   0, NULL, NULL, NULL, true, 0);
	while (first_bad == 0)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed && first_bad == 0; r++)
		{
			HeapTuple	t = SPI_tuptable->vals[r];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
			TimestampTz at = DatumGetTimestampTz(SPI_getbinval(t, d, 2, &isnull));
			int32		pid = DatumGetInt32(SPI_getbinval(t, d, 7, &isnull));
			int64		stmt = DatumGetInt64(SPI_getbinval(t, d, 8, &isnull));
			Oid			relid = DatumGetObjectId(SPI_getbinval(t, d, 9, &isnull));
			uint8		stored_prev[32],
						stored[32],
						computed[32];
			MemoryContext old;

			if (id != expect)
			{
				first_bad = expect;		/* a missing or moved record */
				break;
			}
			old = MemoryContextSwitchTo(rowcxt);
			hp_record_hash(prev, id, at, hp_col(t, d, 3), hp_col(t, d, 4),
						   hp_col(t, d, 5), hp_col(t, d, 6), pid, stmt, relid,
						   hp_col(t, d, 10), hp_col(t, d, 11), hp_col(t, d, 12),
						   hp_col(t, d, 13), computed);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			if (!hp_col_hash(t, d, 14, stored_prev) || memcmp(stored_prev, prev, 32) != 0 ||
				!hp_col_hash(t, d, 15, stored) || memcmp(stored, computed, 32) != 0)
			{
				first_bad = id;
				break;
			}
			memcpy(prev, stored, 32);
			checked++;
			expect++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();

	/* records the writer committed that are gone from the end */
	if (first_bad == 0 && head_id >= expect)
		first_bad = expect;

	out[0] = BoolGetDatum(first_bad == 0);
	out[1] = Int64GetDatum(checked);
	if (first_bad != 0)
	{
		out[2] = Int64GetDatum(first_bad);
		outnull[2] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, out, outnull)));
}

PG_FUNCTION_INFO_V1(hp_audit_status);

/*
 * audit_status(): this database's queue as the writer sees it: writer pid,
 * records queued and not yet committed, records committed since the server
 * started, and commits (batches).
 */
Datum
hp_audit_status(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[4];
	bool		outnull[4] = {false, false, false, false};
	HpQueue    *q;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("audit_status must return a composite type")));
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
		LWLockAcquire(q->lock, LW_SHARED);
		outnull[0] = (q->writer_pid == 0);
		out[0] = Int32GetDatum(q->writer_pid);
		out[1] = Int64GetDatum((int64) (q->head - q->written));
		out[2] = Int64GetDatum((int64) q->written);
		out[3] = Int64GetDatum((int64) q->committed_batches);
		LWLockRelease(q->lock);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, out, outnull)));
}

PG_FUNCTION_INFO_V1(hp_is_preloaded);

/* True when health_pass is in shared_preload_libraries */
Datum
hp_is_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hp_preloaded && hp_shared != NULL);
}

PG_FUNCTION_INFO_V1(hp_audit_flush);

/*
 * audit_flush(): wait (at most health_pass.audit_timeout) until every record
 * queued in this database so far is committed; returns how many records
 * the writer has committed since the server started.
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
	PG_RETURN_INT64((int64) head);
}
