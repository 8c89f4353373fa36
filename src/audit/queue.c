/*
 * queue.c
 *    The audit queues in shared memory: one queue of audit records per
 *    database, fed by reading backends and drained by that database's
 *    background writer (writer.c).  Enqueueing fails closed: a backend
 *    waits at most health_pass.audit_timeout for room or for a stalled
 *    writer, then raises an error instead of returning rows unaudited.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "mb/pg_wchar.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"

HpQueueSet *hp_queues = NULL;

/* Highest sequence number (plus one) this backend has queued */
uint64		hp_last_enqueued = 0;

/* ... and of those queued while health_pass.audit_sync was on */
uint64		hp_sync_enqueued = 0;

/* Every record of this backend below this is known to be durable */
static uint64 durable_seen = 0;

static HpQueue *my_queue = NULL;

static void hp_publish_on_exit(int code, Datum arg);

/* LWLocks the queues take from the owner's tranche: slots_lock, one per queue */
int
hp_queue_lock_count(void)
{
	return 1 + hp_max_databases;
}

/* Bytes of HpQueueSet with its health_pass.max_databases queues; rings follow */
static Size
hp_queue_header_size(void)
{
	return MAXALIGN(add_size(offsetof(HpQueueSet, queues),
							 mul_size(hp_max_databases, sizeof(HpQueue))));
}

/* Bytes of the rings that follow the header */
static Size
hp_queue_rings_size(void)
{
	return mul_size(mul_size(hp_max_databases, hp_queue_size), sizeof(HpRecord));
}

/* Offset of the ready flags (8-byte aligned for the atomics), after the rings */
static Size
hp_queue_ready_offset(void)
{
	return TYPEALIGN(sizeof(pg_atomic_uint64),
					 add_size(hp_queue_header_size(), hp_queue_rings_size()));
}

/* Bytes of shared memory for the queues, their rings, ready flags and times */
Size
hp_queue_shmem_size(void)
{
	Size		slots = mul_size(hp_max_databases, hp_queue_size);

	return add_size(hp_queue_ready_offset(),
					add_size(mul_size(slots, sizeof(pg_atomic_uint64)),
							 mul_size(slots, sizeof(TimestampTz))));
}

/*
 * Lay out the queues in shared memory, or attach to them (access/shmem.c
 * calls this under AddinShmemInitLock); locks: hp_queue_lock_count() of
 * the owner's tranche
 */
void
hp_queue_shmem_init(LWLockPadded *locks)
{
	bool		found;

	hp_queues = ShmemInitStruct("health_pass queues", hp_queue_shmem_size(), &found);
	if (!found)
	{
		char	   *ring = (char *) hp_queues + hp_queue_header_size();
		pg_atomic_uint64 *ready = (pg_atomic_uint64 *)
		((char *) hp_queues + hp_queue_ready_offset());
		TimestampTz *reserved = (TimestampTz *)
		(ready + (Size) hp_max_databases * hp_queue_size);

		memset(hp_queues, 0, hp_queue_header_size());
		hp_queues->slots_lock = &locks[0].lock;
		/* statement ids grow across restarts: start at the clock, in us */
		hp_queues->made_at = GetCurrentTimestamp();
		pg_atomic_init_u64(&hp_queues->next_statement_id,
						   (uint64) GetCurrentTimestamp());
		for (int i = 0; i < hp_max_databases; i++)
		{
			HpQueue    *q = &hp_queues->queues[i];

			q->lock = &locks[1 + i].lock;
			ConditionVariableInit(&q->progress);
			q->ring = (HpRecord *) (ring + (Size) i * hp_queue_size * sizeof(HpRecord));
			q->ready = ready + (Size) i * hp_queue_size;
			q->reserved_at = reserved + (Size) i * hp_queue_size;
			for (int j = 0; j < hp_queue_size; j++)
				pg_atomic_init_u64(&q->ready[j], 0);
		}
	}
}

/* Index of a queue among the hp_max_databases slots */
int
hp_queue_slot(const HpQueue *q)
{
	return (int) (q - hp_queues->queues);
}

/* The queue of database dbid, claiming a free slot when create is true */
HpQueue *
hp_queue_for_database(Oid dbid, bool create)
{
	HpQueue    *found = NULL;

	if (dbid == MyDatabaseId && my_queue != NULL)
		return my_queue;
	hp_require_preload();

	LWLockAcquire(hp_queues->slots_lock, create ? LW_EXCLUSIVE : LW_SHARED);
	for (int i = 0; i < hp_max_databases && found == NULL; i++)
		if (hp_queues->queues[i].dbid == dbid)
			found = &hp_queues->queues[i];
	for (int i = 0; i < hp_max_databases && found == NULL && create; i++)
		if (hp_queues->queues[i].dbid == InvalidOid)
		{
			found = &hp_queues->queues[i];
			found->dbid = dbid;
			found->forgotten = false;
		}
	LWLockRelease(hp_queues->slots_lock);

	if (found == NULL && create)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("health_pass audits at most %d databases at a time",
						hp_max_databases),
				 errhint("Raise health_pass.max_databases (takes a server restart), or drop a database that was audited.")));
	if (dbid == MyDatabaseId && found != NULL && my_queue == NULL)
	{
		before_shmem_exit(hp_publish_on_exit, (Datum) 0);
		my_queue = found;
	}
	return found;
}

/* Copy src (NULL: "") into a fixed field, cut at a character boundary */
void
hp_copy_field(char *dst, size_t size, const char *src)
{
	int			len = src ? strlen(src) : 0;

	if (len >= (int) size)
		len = pg_mbcliplen(src, len, size - 1);
	if (len > 0)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Fill the fields of rec that describe this session; the rest are zeroed */
void
hp_record_session(HpRecord *rec)
{
	char	   *user;

	memset(rec, 0, sizeof(HpRecord));
	rec->backend_pid = MyProcPid;
	user = GetUserNameFromId(GetSessionUserId(), true);
	namestrcpy(&rec->session_user_name, user ? user : "");
	user = GetUserNameFromId(GetOuterUserId(), true);
	namestrcpy(&rec->current_user_name, user ? user : "");

	/* the client's address as inet_client_addr() and host() print it */
	rec->client_addr_null = true;
	{
		LOCAL_FCINFO(fc, 0);
		Datum		addr;

		InitFunctionCallInfoData(*fc, NULL, 0, InvalidOid, NULL, NULL);
		addr = inet_client_addr(fc);
		if (!fc->isnull)
		{
			char	   *host = TextDatumGetCString(DirectFunctionCall1(network_host, addr));

			hp_copy_field(rec->client_addr, HP_ADDR_LEN, host);
			rec->client_addr_null = false;
		}
	}
	hp_copy_field(rec->application_name, HP_APPNAME_LEN, application_name);
}

/* Milliseconds left until deadline, at least 1 */
static long
hp_ms_left(TimestampTz deadline)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

	return ms < 1 ? 1 : ms;
}

/* The error every fail-closed wait ends with */
static void
hp_audit_unavailable(const char *why)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_HP_AUDIT_STANDBY),
				 errmsg("the primary is not writing this standby's audit records: %s", why),
				 errdetail("No rows of a protected table are returned until their reads are recorded on the primary; waited %d ms (health_pass.audit_timeout).",
						   hp_audit_timeout_ms),
				 errhint("Check that the primary is up, that health_pass.primary_conninfo reaches it, and the \"health_pass audit shipper\" process in this server's log.")));
	ereport(ERROR,
			(errcode(ERRCODE_HP_AUDIT_UNAVAILABLE),
			 errmsg("health_pass audit log is not being written: %s", why),
			 errdetail("No rows of a protected table are returned until their reads are recorded; waited %d ms (health_pass.audit_timeout).",
					   hp_audit_timeout_ms),
			 errhint("Check that the \"health_pass audit writer\" process is running and that health_pass.audit_block is not locked.")));
}

/*
 * A slot reserved and not yet published.  Nothing between the two can
 * raise an error, but a process can still exit there (a background worker
 * with the default SIGTERM handler exits from inside it): a slot never
 * published would stop the writer at it for good.  So the record is
 * published on the way out; rec still points into the interrupted frame,
 * which lives until the process is gone.
 */
static HpQueue *pending_queue = NULL;
static uint64 pending_seq = 0;
static const HpRecord *volatile pending_rec = NULL;

/* Copy rec into its slot, then publish it */
static void
hp_publish(HpQueue *q, uint64 seq, const HpRecord *rec)
{
	q->ring[seq % hp_queue_size] = *rec;
	pg_write_barrier();
	pg_atomic_write_u64(&q->ready[seq % hp_queue_size], seq + 1);
}

/* before_shmem_exit callback: publish a reservation left in flight */
static void
hp_publish_on_exit(int code, Datum arg)
{
	const HpRecord *rec = pending_rec;

	if (rec != NULL)
	{
		pending_rec = NULL;
		hp_publish(pending_queue, pending_seq, rec);
	}
}

/*
 * A hint for a backend that queues records one after another with work in
 * between (issue_batch: a signature per record): ask this CPU to fetch the
 * slot the next record will most likely take (the one at head) for
 * writing, so the copy into it (hp_publish) does not wait for memory.  The
 * ring is larger than the caches and its slots were last read by the writer
 * on another CPU: without the hint the 700-byte copy was about 2 % of an
 * issued pass.  Nothing is locked or changed; when another backend takes
 * that slot first the hint was only wasted.
 */
void
hp_queue_prefetch_next(void)
{
	HpQueue    *q = my_queue;
	uint64		seq;
	const char *slot;

	if (q == NULL)
		return;
	seq = *(volatile uint64 *) &q->head;	/* a hint: no lock */
	slot = (const char *) &q->ring[seq % hp_queue_size];
	for (Size off = 0; off < sizeof(HpRecord); off += 64)
		__builtin_prefetch(slot + off, 1, 3);
	__builtin_prefetch(&q->ready[seq % hp_queue_size], 1, 3);
}

/*
 * Has the record of seq been copied into its slot?  When true, its contents
 * may be read (a read barrier follows the check).
 */
bool
hp_slot_ready(HpQueue *q, uint64 seq)
{
	if (pg_atomic_read_u64(&q->ready[seq % hp_queue_size]) != seq + 1)
		return false;
	pg_read_barrier();
	return true;
}

/*
 * Queue one record for this database's writer and return its sequence
 * number.  Waits while the ring is full or the writer has not taken a record
 * for longer than health_pass.audit_timeout; fails when the wait runs out.
 */
uint64
hp_enqueue(const HpRecord *rec)
{
	uint64		seq;

	(void) hp_enqueue_ext(rec, rec->logged_at, true, &seq);	/* just read by the caller */
	return seq;
}

/*
 * hp_enqueue() with the reservation time given (now: a record whose
 * logged_at is older, such as a denial summary, must not make the queue
 * look stalled), and, with wait false, no waiting: false at once when the
 * ring is full or stalled (the writer queues its own records so).  With
 * wait true it returns true or raises.  *seq (when not NULL) gets the
 * record's sequence number.
 */
bool
hp_enqueue_ext(const HpRecord *rec, TimestampTz now, bool wait, uint64 *seqp)
{
	HpQueue    *q = hp_queue_for_database(MyDatabaseId, true);
	TimestampTz reserved = now;
	TimestampTz deadline = TimestampTzPlusMilliseconds(now, hp_audit_timeout_ms);
	const char *why = NULL;
	uint64		seq;

	/* a standby queues only while its worker ships to the primary (ship.c) */
	if (RecoveryInProgress())
	{
		if (wait)
			hp_standby_admit(q);
		else
		{
			uint8		state;

			LWLockAcquire(q->lock, LW_SHARED);
			state = q->ship_state;
			LWLockRelease(q->lock);
			if (state != HP_SHIP_UP)
				return false;
		}
	}

	for (;; now = GetCurrentTimestamp())
	{
		Latch	   *latch;
		bool		full,
					stalled;

		LWLockAcquire(q->lock, LW_EXCLUSIVE);
		full = q->head - q->written >= (uint64) hp_queue_size;
		/* the oldest record, published or not, waits too long */
		stalled = q->head > q->written &&
			TimestampDifferenceExceeds(q->reserved_at[q->written % hp_queue_size],
									   now, hp_audit_timeout_ms);
		if (!full && !stalled)
		{
			seq = q->head++;
			q->reserved_at[seq % hp_queue_size] = reserved;
			/* published by hp_publish_on_exit if we die before we do */
			pending_queue = q;
			pending_seq = seq;
			pending_rec = rec;
			/* the writer polls every few ms; wake it only when it dozes or
			 * the queue fills up, so a busy server pays no wakeup per read */
			latch = (q->writer_dozing || q->head - q->written >= (uint64) hp_queue_size / 4) ?
				q->writer_latch : NULL;
			if (q->writer_pid == 0)
				latch = NULL;
			else if (latch == NULL)
				latch = (Latch *) -1;	/* running, no wakeup needed */
			LWLockRelease(q->lock);

			/*
			 * The slot is ours until written passes seq, which cannot
			 * happen before we publish it: copy outside the lock, so the
			 * backends of a busy server do not queue behind 700-byte
			 * copies.  Nothing between reserving and publishing can fail.
			 */
			hp_publish(q, seq, rec);
			pending_rec = NULL;
			if (latch == NULL)
				hp_writer_request(q);
			else if (latch != (Latch *) -1)
				SetLatch(latch);
			break;
		}
		LWLockRelease(q->lock);

		why = full ? "the queue is full" :
			RecoveryInProgress() ? "records wait to be shipped" :
			"the writer has stopped taking records";
		if (!wait)
			return false;
		hp_writer_request(q);
		if (now >= deadline)
		{
			ConditionVariableCancelSleep();
			hp_audit_unavailable(why);
		}
		ConditionVariableTimedSleep(&q->progress, hp_ms_left(deadline),
									PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	hp_last_enqueued = seq + 1;
	if (hp_audit_sync)
		hp_sync_enqueued = seq + 1;
	if (seqp)
		*seqp = seq;
	return true;
}

/*
 * Wait until every record below upto of queue q is committed and flushed to
 * disk, for at most audit_timeout: true when it is.  The writer flushes as
 * soon as it sees sync_wanted ahead.  Raises nothing of its own.
 */
static bool
hp_wait_durable_for(HpQueue *q, uint64 upto)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   hp_audit_timeout_ms);
	bool		ok = false;

	for (;;)
	{
		uint64		durable;
		Latch	   *latch;

		LWLockAcquire(q->lock, LW_EXCLUSIVE);
		durable = q->durable;
		latch = q->writer_latch;
		if (durable < upto && q->sync_wanted < upto)
			q->sync_wanted = upto;
		LWLockRelease(q->lock);
		if (durable > durable_seen && q == my_queue)
			durable_seen = durable;
		if (durable >= upto)
		{
			ok = true;
			break;
		}
		if (latch)
			SetLatch(latch);	/* someone waits: write and flush now */
		hp_writer_request(q);
		if (GetCurrentTimestamp() >= deadline)
			break;
		ConditionVariableTimedSleep(&q->progress, hp_ms_left(deadline),
									PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return ok;
}

/* Wait until every record below upto is durable, or fail closed (YHA01) */
void
hp_wait_durable(uint64 upto)
{
	if (!hp_wait_durable_for(hp_queue_for_database(MyDatabaseId, true), upto))
		hp_audit_unavailable("records were not committed in time");
}

/*
 * The same wait for messages on their way to the client (send.c), where an
 * error cannot be raised: interrupts held (a cancel is served after the
 * wait, not from inside the error report that called it).  Returns true
 * when every record below upto is durable; false when audit_timeout ran out
 * or waiting is not safe here (a critical section, exit in progress, our
 * queue lock held), and then the caller must not send what it holds.
 */
bool
hp_wait_durable_nothrow(uint64 upto)
{
	bool		ok;

	if (upto <= durable_seen)
		return true;
	if (my_queue == NULL || CritSectionCount > 0 || proc_exit_inprogress ||
		LWLockHeldByMe(my_queue->lock))
		return false;
	HOLD_INTERRUPTS();
	ok = hp_wait_durable_for(my_queue, upto);
	RESUME_INTERRUPTS();
	return ok;
}

/*
 * True when some record of this backend below upto is not yet durable.
 * Looks at shared memory only when the last look did not already show it
 * durable; with our queue lock held (an error struck under it) it cannot
 * look, and says pending.
 */
static bool
hp_pending_below(uint64 upto)
{
	uint64		durable;

	if (upto <= durable_seen || my_queue == NULL)
		return false;
	if (LWLockHeldByMe(my_queue->lock))
		return true;
	LWLockAcquire(my_queue->lock, LW_SHARED);
	durable = my_queue->durable;
	LWLockRelease(my_queue->lock);
	if (durable > durable_seen)
		durable_seen = durable;
	return durable < upto;
}

/* True when some record this backend queued is not yet durable */
bool
hp_records_pending(void)
{
	return hp_pending_below(hp_last_enqueued);
}

/* True when a record queued under audit_sync is not yet durable */
bool
hp_sync_pending(void)
{
	return hp_pending_below(hp_sync_enqueued);
}

/* A new statement id: unique in the cluster and growing */
int64
hp_next_statement_id(void)
{
	return (int64) pg_atomic_fetch_add_u64(&hp_queues->next_statement_id, 1);
}

/*
 * Stop the writer of database dbid (DROP DATABASE and ALTER DATABASE
 * RENAME need it gone) and wait up to 3 s for it to exit.  Until
 * HP_WRITER_HOLD_MS after this returns, the slot's worker does not take
 * the database up again (and only when a backend asks anew), so the
 * command finds no writer there.
 */
void
hp_writer_stop(Oid dbid)
{
	HpQueue    *q = hp_queues ? hp_queue_for_database(dbid, false) : NULL;

	for (int i = 0; q && i < 300; i++)
	{
		int			pid;

		LWLockAcquire(q->lock, LW_EXCLUSIVE);
		pid = q->writer_pid;
		/* hold off restarts while the database goes */
		q->writer_wanted = false;
		q->hold_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													HP_WRITER_HOLD_MS);
		LWLockRelease(q->lock);
		if (pid == 0)
			break;
		if (i == 0)
			kill(pid, SIGTERM);
		pg_usleep(10000L);
	}
}

/*
 * Make slot q free for another database; the caller holds slots_lock and
 * q->lock, both exclusive, and no writer holds q.  Sequence numbers go on
 * growing: a slot's ready flag is never taken for that of a record of the
 * database that uses it next.
 */
void
hp_queue_free_locked(HpQueue *q)
{
	q->dbid = InvalidOid;
	q->forgotten = false;
	q->written = q->durable = q->sync_wanted = q->base = q->head;
	q->written_lsn = InvalidXLogRecPtr;
	q->last_id = 0;
	q->writer_wanted = false;
	q->hold_until = 0;
	q->committed_batches = 0;
	q->wait_since = 0;
	/* what standbys shipped to the database that had the slot */
	memset(q->shipped, 0, sizeof(q->shipped));
	q->ship_state = HP_SHIP_UNKNOWN;
	q->primary_known = false;
}

/* Free the queue slot of a dropped database, and its pending denial counts
 * (the access layer forgets its quota counts itself) */
void
hp_queue_forget(Oid dbid)
{
	HpQueue    *q = hp_queues ? hp_queue_for_database(dbid, false) : NULL;

	if (q == NULL)
		return;
	hp_denials_forget(dbid);
	LWLockAcquire(hp_queues->slots_lock, LW_EXCLUSIVE);
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->dbid == dbid)
	{
		if (q->writer_pid == 0)
			hp_queue_free_locked(q);
		else
		{
			/*
			 * a worker claimed the slot meanwhile (it will fail to connect
			 * to the dropped database): it frees the slot as it exits
			 */
			q->forgotten = true;
			q->writer_wanted = false;
		}
	}
	LWLockRelease(q->lock);
	LWLockRelease(hp_queues->slots_lock);
}
