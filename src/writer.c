/*
 * writer.c
 *    The audit writer: one background worker per database, started on
 *    demand by the first backend that queues a record there.  It takes
 *    records from that database's queue in batches, chains each to the one
 *    before with SHA-256, inserts them into health_pass.audit_log (heap
 *    and indexes directly, no SQL per record) and commits once per batch,
 *    asynchronously: "written" advances at commit, "durable" once the
 *    commit is flushed to disk, which is what health_pass.audit_sync waits
 *    for (the writer flushes at once when a backend waits).
 */
#include "postgres.h"

#include "access/brin.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_am_d.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "hp.h"
#include "hp_access.h"

#define HP_BATCH 4000			/* records per transaction, at most */
#define HP_CHUNK 64				/* records per table_multi_insert */
#define HP_RESTART_MS 1000
#define HP_POLL_MS 20			/* writer poll interval while busy */

PGDLLEXPORT void hp_writer_main(Datum arg);

static HpQueue *writer_queue = NULL;

/* Ask the postmaster for a writer for q unless one runs or is starting */
void
hp_writer_request(HpQueue *q)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	TimestampTz now = GetCurrentTimestamp();
	Oid			dbid;

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->writer_pid != 0 ||
		(q->start_requested != 0 &&
		 !TimestampDifferenceExceeds(q->start_requested, now, HP_RESTART_MS)))
	{
		LWLockRelease(q->lock);
		return;
	}
	q->start_requested = now;
	dbid = q->dbid;
	LWLockRelease(q->lock);

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "health_pass", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "hp_writer_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "health_pass audit writer for database %u", dbid);
	strlcpy(w.bgw_type, "health_pass audit writer", BGW_MAXLEN);
	w.bgw_main_arg = Int32GetDatum((int32) (q - hp_shared->queues));
	memcpy(w.bgw_extra, &dbid, sizeof(Oid));
	w.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
		ereport(LOG,
				(errmsg("health_pass could not start an audit writer"),
				 errhint("Raise max_worker_processes.")));
}

/* On exit, tell backends there is no writer so the next one starts one */
static void
hp_writer_detach(int code, Datum arg)
{
	HpQueue    *q = writer_queue;

	if (q == NULL)
		return;
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->writer_pid == MyProcPid)
	{
		q->writer_pid = 0;
		q->writer_latch = NULL;
		q->writer_dozing = false;
		q->start_requested = 0;
	}
	LWLockRelease(q->lock);
	ConditionVariableBroadcast(&q->progress);
}

/* The audit_log the writer's chain head was read from */
static Oid	hp_head_relid = InvalidOid;

/*
 * Read the last id and hash of the chain from audit_log, in the current
 * transaction (an empty log starts the chain at id 0 and a zero hash).
 */
static void
hp_writer_read_head(int64 *id, uint8 *hash)
{
	*id = 0;
	memset(hash, 0, 32);
	SPI_connect();
	if (SPI_execute("SELECT id, hash FROM health_pass.audit_log ORDER BY id DESC LIMIT 1",
					true, 1) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not read the head of health_pass.audit_log")));
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d;

		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		*id = DatumGetInt64(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull && VARSIZE_ANY_EXHDR(DatumGetPointer(d)) == 32)
			memcpy(hash, VARDATA_ANY(DatumGetPointer(d)), 32);
	}
	SPI_finish();
}

/* At start: publish the chain head, so audit_verify() can check the tail */
static void
hp_writer_load_head(HpQueue *q)
{
	int64		id = 0;
	uint8		hash[32] = {0};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	hp_head_relid = hp_relation_oid("audit_log");
	if (OidIsValid(hp_head_relid))
		hp_writer_read_head(&id, hash);
	PopActiveSnapshot();
	CommitTransactionCommand();

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	q->last_id = id;
	memcpy(q->last_hash, hash, 32);
	q->head_relid = hp_head_relid;
	LWLockRelease(q->lock);
}

/* Text datum, or NULL */
static inline Datum
hp_text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* Fill slot with record r, chained to hash; returns r's hash in next */
static void
hp_writer_fill(TupleTableSlot *slot, const HpRecord *r, int64 id,
			   const uint8 *hash, uint8 *next)
{
	Datum	   *v = slot->tts_values;
	bool	   *nulls = slot->tts_isnull;
	const char *addr = r->client_addr_null ? NULL : r->client_addr;
	const char *purpose = r->purpose[0] ? r->purpose : NULL;
	const char *reason = r->reason[0] ? r->reason : NULL;
	const char *subject = r->subject_null ? NULL : r->subject;
	const char *outcome = hp_outcome_name((HpOutcome) r->outcome);
	Datum		inet = (Datum) 0;

	ExecClearTuple(slot);
	/* the backend queued host(inet_client_addr()), which inet_in reads back
	 * unchanged: audit_verify() hashes host(client_addr), the same text */
	if (addr)
		inet = DirectFunctionCall1(inet_in, CStringGetDatum(addr));
	hp_record_hash(hash, id, r->logged_at, NameStr(r->session_user_name),
				   NameStr(r->current_user_name), addr, r->application_name,
				   r->backend_pid, r->statement_id, r->relid, subject,
				   purpose, outcome, reason, next);

	memset(nulls, 0, 15 * sizeof(bool));
	v[0] = Int64GetDatum(id);
	v[1] = TimestampTzGetDatum(r->logged_at);
	v[2] = NameGetDatum(&r->session_user_name);
	v[3] = NameGetDatum(&r->current_user_name);
	v[4] = inet;
	nulls[4] = (addr == NULL);
	v[5] = CStringGetTextDatum(r->application_name);
	v[6] = Int32GetDatum(r->backend_pid);
	v[7] = Int64GetDatum(r->statement_id);
	v[8] = ObjectIdGetDatum(r->relid);
	v[9] = hp_text_or_null(subject, &nulls[9]);
	v[10] = hp_text_or_null(purpose, &nulls[10]);
	v[11] = CStringGetTextDatum(outcome);
	v[12] = hp_text_or_null(reason, &nulls[12]);
	v[13] = PointerGetDatum(hp_bytea(hash, 32));
	v[14] = PointerGetDatum(hp_bytea(next, 32));
	ExecStoreVirtualTuple(slot);
}

/* BRIN indexes of audit_log this writer keeps summarized */
#define HP_MAX_BRIN 4
static struct
{
	Oid			index;
	BlockNumber next;			/* first range start not yet summarized */
}			hp_brin[HP_MAX_BRIN];

/*
 * Summarize every BRIN range of index that the writer has filled, so a
 * bitmap scan (who_read) skips it unless its summary matches.  Ranges are
 * summarized once, when the table reaches their end: inserts into the range
 * being filled cost the index nothing (the few that still land in a range's
 * last page update its summary).  Skipped without waiting when VACUUM or
 * another summarizer holds the table; VACUUM summarizes them too.
 */
static void
hp_writer_summarize(Relation heap, Relation index)
{
	BlockNumber ppr = BrinGetPagesPerRange(index);
	BlockNumber nblocks = RelationGetNumberOfBlocks(heap);
	Oid			indexoid = RelationGetRelid(index);
	int			i;

	for (i = 0; i < HP_MAX_BRIN; i++)
		if (hp_brin[i].index == indexoid || hp_brin[i].index == InvalidOid)
			break;
	if (i == HP_MAX_BRIN)
	{
		/* indexes dropped and created again: forget the old ones */
		memset(hp_brin, 0, sizeof(hp_brin));
		i = 0;
	}
	if (hp_brin[i].next > nblocks)
		hp_brin[i].next = 0;	/* the table was truncated */
	/* a range is full once the table has grown to its end */
	if (hp_brin[i].index == indexoid && hp_brin[i].next + ppr > nblocks)
		return;
	if (!ConditionalLockRelationOid(RelationGetRelid(heap), ShareUpdateExclusiveLock))
		return;
	if (hp_brin[i].index == InvalidOid)
	{
		/* first time in this writer: every full range not summarized yet */
		(void) DirectFunctionCall1(brin_summarize_new_values, ObjectIdGetDatum(indexoid));
		hp_brin[i].index = indexoid;
		hp_brin[i].next = (nblocks / ppr) * ppr;
		return;
	}
	for (; hp_brin[i].next + ppr <= nblocks; hp_brin[i].next += ppr)
		(void) DirectFunctionCall2(brin_summarize_range, ObjectIdGetDatum(indexoid),
								   Int64GetDatum((int64) hp_brin[i].next));
}

/*
 * Insert records [from, from + n) of the ring straight into the heap and
 * indexes of audit_log (no SQL per record: this is the writer's hot path),
 * inside the caller's transaction.  Rows go to the heap HP_CHUNK at a time
 * through table_multi_insert (one WAL record per heap page, as COPY does),
 * then into the indexes.  *id and hash are the chain head, advanced per
 * record.
 */
static Oid
hp_writer_batch(const HpRecord *ring, uint64 from, int n, int64 *id, uint8 *hash)
{
	Oid			relid = hp_relation_oid("audit_log");
	CommandId	cid = GetCurrentCommandId(true);
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slots[HP_CHUNK];
	MemoryContext chunkcxt,
				old;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("health_pass.audit_log does not exist")));
	rel = table_open(relid, RowExclusiveLock);
	if (relid != hp_head_relid)
	{
		/* the extension was dropped and created again: a new chain */
		hp_writer_read_head(id, hash);
		hp_head_relid = relid;
	}
	if (RelationGetDescr(rel)->natts != 15)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("health_pass.audit_log does not have the 15 columns the writer expects")));
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	for (int i = 0; i < HP_CHUNK; i++)
		slots[i] = table_slot_create(rel, NULL);
	chunkcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass writer chunk",
									 ALLOCSET_DEFAULT_SIZES);

	for (int done = 0; done < n;)
	{
		int			k = Min(n - done, HP_CHUNK);

		old = MemoryContextSwitchTo(chunkcxt);
		for (int i = 0; i < k; i++)
		{
			uint8		next[32];

			(*id)++;
			hp_writer_fill(slots[i], &ring[(from + done + i) % hp_queue_size],
						   *id, hash, next);
			memcpy(hash, next, 32);
		}
		table_multi_insert(rel, slots, k, cid, 0, NULL);
		for (int i = 0; i < k; i++)
		{
			ExecInsertIndexTuples(rri, slots[i], estate, false, false, NULL, NIL);
			ResetPerTupleExprContext(estate);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunkcxt);
		done += k;
	}

	for (int i = 0; i < rri->ri_NumIndices; i++)
		if (rri->ri_IndexRelationDescs[i]->rd_rel->relam == BRIN_AM_OID)
			hp_writer_summarize(rel, rri->ri_IndexRelationDescs[i]);

	for (int i = 0; i < HP_CHUNK; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	MemoryContextDelete(chunkcxt);
	return relid;
}

/*
 * Move "durable" up to "written" once the last batch's commit record is on
 * disk.  Batches commit asynchronously; the writer flushes WAL itself when
 * a backend waits (audit_sync, audit_flush) or when flush is true, and
 * otherwise notices when the WAL writer has flushed it.
 */
static void
hp_writer_settle(HpQueue *q, bool flush)
{
	uint64		written,
				durable;
	XLogRecPtr	lsn;
	bool		wanted;

	LWLockAcquire(q->lock, LW_SHARED);
	written = q->written;
	durable = q->durable;
	lsn = q->written_lsn;
	wanted = q->sync_wanted > durable;
	LWLockRelease(q->lock);
	if (durable >= written)
		return;
	if (wanted || flush)
		XLogFlush(lsn);
	else if (GetFlushRecPtr(NULL) < lsn)
		return;

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->durable < written)
		q->durable = written;
	LWLockRelease(q->lock);
	ConditionVariableBroadcast(&q->progress);
}

/* Background worker entry point: drain one database's queue for ever */
void
hp_writer_main(Datum arg)
{
	int			slot = DatumGetInt32(arg);
	Oid			dbid;
	HpQueue    *q;

	memcpy(&dbid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);

	if (slot < 0 || slot >= hp_max_databases || hp_shared == NULL)
		proc_exit(1);
	q = &hp_shared->queues[slot];
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->dbid != dbid ||
		(q->writer_pid != 0 && q->writer_pid != MyProcPid && kill(q->writer_pid, 0) == 0))
	{
		LWLockRelease(q->lock);
		proc_exit(0);			/* another writer already serves this queue */
	}
	q->writer_pid = MyProcPid;
	q->writer_latch = MyLatch;
	LWLockRelease(q->lock);
	writer_queue = q;
	before_shmem_exit(hp_writer_detach, (Datum) 0);

	/*
	 * Batches commit asynchronously, whatever the database says: no fsync
	 * per batch.  hp_writer_settle() flushes when a backend waits for
	 * durability and before the writer dozes; the WAL writer does otherwise.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "health_pass audit writer", PGC_USERSET, PGC_S_OVERRIDE);
	hp_writer_load_head(q);
	ConditionVariableBroadcast(&q->progress);

	for (;;)
	{
		static int	idle_polls = 0;
		uint64		from;
		int			n;
		int64		id;
		uint8		hash[32];
		Oid			relid;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		LWLockAcquire(q->lock, LW_SHARED);
		from = q->written;
		n = (int) Min(q->head - from, (uint64) HP_BATCH);
		id = q->last_id;
		memcpy(hash, q->last_hash, 32);
		LWLockRelease(q->lock);

		/*
		 * Slots in [written, head) were filled under the lock before head
		 * moved past them, and no backend reuses them until written moves:
		 * the batch is read from the ring in place, without the lock.
		 */

		if (n == 0)
		{
			/* poll every HP_POLL_MS; after a second of nothing, doze */
			bool		doze = ++idle_polls > 1000 / HP_POLL_MS;

			hp_writer_settle(q, doze);
			if (doze)
			{
				LWLockAcquire(q->lock, LW_EXCLUSIVE);
				q->writer_dozing = true;
				doze = (q->head == q->written);
				LWLockRelease(q->lock);
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 doze ? 1000L : HP_POLL_MS, PG_WAIT_EXTENSION);
			continue;
		}
		idle_polls = 0;
		if (q->writer_dozing)
		{
			LWLockAcquire(q->lock, LW_EXCLUSIVE);
			q->writer_dozing = false;
			LWLockRelease(q->lock);
		}

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "writing health_pass audit records");
		relid = hp_writer_batch(q->ring, from, n, &id, hash);
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		/* audit_log's insert counts drive autovacuum; WAL counts pg_stat_wal */
		pgstat_report_stat(false);

		LWLockAcquire(q->lock, LW_EXCLUSIVE);
		q->written = from + n;
		q->written_lsn = XactLastCommitEnd;
		q->last_id = id;
		memcpy(q->last_hash, hash, 32);
		q->head_relid = relid;
		q->committed_batches++;
		LWLockRelease(q->lock);
		ConditionVariableBroadcast(&q->progress);
		hp_writer_settle(q, false);
	}
}
