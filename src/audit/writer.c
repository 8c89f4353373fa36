/*
 * writer.c
 *    The audit writer: one background worker per database.  The workers
 *    are static, one per queue slot (health_pass.max_databases), registered
 *    at server start so that no other background worker (parallel query)
 *    can take their places; each waits, unconnected, until its slot is
 *    given a database that wants a writer, then connects there.  It takes
 *    records from that database's queue in batches, chains each to the one
 *    before with SHA-256, packs them HP_BLOCK_RECORDS to a row of
 *    health_pass.audit_block (heap and index directly, no SQL) and commits
 *    once per batch,
 *    asynchronously: "written" advances at commit, "durable" once the
 *    commit is flushed to disk, which is what health_pass.audit_sync waits
 *    for (the writer flushes at once when a backend waits).
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_class_d.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/bgworker_internals.h"
#include "postmaster/interrupt.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"

#define HP_BATCH 4096			/* records per transaction, at most */
#define HP_POLL_MS 20			/* writer poll interval while busy */
#define HP_LOCK_TIMEOUT "250ms"	/* the writer's longest wait for one lock */
#define HP_RETRY_MS 1000		/* pause after a batch failed other than on a lock */
#define HP_DRAIN_MS 3000		/* longest it writes on after a stop request */
#define HP_CLAIM_MS 250			/* a slot's worker connects at most this often */
#define HP_STANDBY_POLL_MS 10000	/* a waiting writer looks at its slot at least this often */

PGDLLEXPORT void hp_writer_main(Datum arg);

static HpQueue *writer_queue = NULL;

/*
 * Register the writers: one static background worker per queue slot, at
 * server start (shared_preload_libraries).  Static workers keep their
 * max_worker_processes slots for good: parallel workers, which any role can
 * ask for, cannot take them, as they could the slots of writers registered
 * on demand.  So max_worker_processes must hold them all and the static
 * workers registered before us (the logical replication launcher, other
 * libraries), and leave at least one slot for everything else; else the
 * server does not start, and says which settings to change.
 */
void
hp_writer_register(void)
{
	int			others = 0;
	int			needed;
	slist_iter	siter;

	/* those registered before us, the logical replication launcher too */
	slist_foreach(siter, &BackgroundWorkerList)
		others++;
	needed = hp_max_databases + others + 1;
	if (needed > max_worker_processes)
		ereport(FATAL,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("max_worker_processes (%d) is too low for health_pass.max_databases (%d)",
						max_worker_processes, hp_max_databases),
				 errdetail("health_pass reserves one background worker per database it can audit (its audit writer); with %d taken by other background workers and at least one left for parallel query and everything else, max_worker_processes must be at least %d.",
						   others, needed),
				 errhint("Raise max_worker_processes or lower health_pass.max_databases.")));

	for (int i = 0; i < hp_max_databases; i++)
	{
		BackgroundWorker w;

		memset(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_ConsistentState;	/* a standby ships (ship.c) */
		/*
		 * a writer never exits with code 0: that would unregister it; after
		 * code 1, started again at once to wait for the next database
		 * (HP_CLAIM_MS keeps a writer that cannot connect from looping)
		 */
		w.bgw_restart_time = 0;
		strlcpy(w.bgw_library_name, "health_pass", BGW_MAXLEN);
		strlcpy(w.bgw_function_name, "hp_writer_main", BGW_MAXLEN);
		snprintf(w.bgw_name, BGW_MAXLEN, "health_pass audit writer %d", i + 1);
		strlcpy(w.bgw_type, "health_pass audit writer", BGW_MAXLEN);
		w.bgw_main_arg = Int32GetDatum(i);
		w.bgw_notify_pid = 0;
		RegisterBackgroundWorker(&w);
	}
}

/*
 * Ask for a writer for q unless one runs: mark the slot wanted and wake its
 * worker, which waits for that (hp_writer_await).  Takes nothing else: the
 * worker's place in max_worker_processes was reserved at server start.
 */
void
hp_writer_request(HpQueue *q)
{
	Latch	   *latch = NULL;

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->writer_pid == 0 && !q->writer_wanted)
	{
		q->writer_wanted = true;
		latch = q->standby_latch;
	}
	LWLockRelease(q->lock);
	if (latch)
		SetLatch(latch);
}

/* On exit, tell backends there is no writer so the next one asks again */
static void
hp_writer_detach(int code, Datum arg)
{
	HpQueue    *q = writer_queue;

	if (q == NULL)
		return;
	/* an error outside a transaction ends a worker without releasing them */
	LWLockReleaseAll();
	/* slots_lock first, as hp_queue_forget() takes them */
	LWLockAcquire(hp_queues->slots_lock, LW_EXCLUSIVE);
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->standby_latch == MyLatch)
		q->standby_latch = NULL;
	if (q->writer_pid == MyProcPid)
	{
		q->writer_pid = 0;
		q->writer_latch = NULL;
		q->writer_dozing = false;
		q->wait_since = 0;
		/* a standby's shipper gone: backends wait for the next one's answer */
		if (q->ship_state == HP_SHIP_UP)
			q->ship_state = HP_SHIP_UNKNOWN;
		/* its database was dropped while this worker held the slot */
		if (q->forgotten)
			hp_queue_free_locked(q);
	}
	LWLockRelease(q->lock);
	LWLockRelease(hp_queues->slots_lock);
	ConditionVariableBroadcast(&q->progress);
}

/*
 * Wait, not connected to any database, until slot q has a database that
 * wants a writer (hp_writer_request) and is not held off (hp_writer_stop
 * holds a database that is being dropped or renamed off for a while, and
 * a worker whose last claim was under HP_CLAIM_MS ago waits for the rest);
 * then claim it, and return its OID.  A SIGTERM ends the wait and the
 * process, with exit code 1 (so the postmaster starts this worker again,
 * unless it is shutting down).
 */
static Oid
hp_writer_await(HpQueue *q)
{
	for (;;)
	{
		long		timeout = HP_STANDBY_POLL_MS;
		TimestampTz now;
		Oid			dbid = InvalidOid;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			proc_exit(1);		/* not 0: that would unregister the worker */
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		now = GetCurrentTimestamp();
		LWLockAcquire(q->lock, LW_EXCLUSIVE);
		/* a writer of this slot that died without saying so (cannot happen) */
		if (q->writer_pid != 0 && kill(q->writer_pid, 0) != 0)
			q->writer_pid = 0;
		if (OidIsValid(q->dbid) && q->writer_wanted && q->writer_pid == 0 && !q->forgotten)
		{
			TimestampTz not_before = Max(q->hold_until,
										 TimestampTzPlusMilliseconds(q->claimed_at, HP_CLAIM_MS));

			if (now >= not_before)
			{
				dbid = q->dbid;
				q->writer_pid = MyProcPid;
				q->writer_latch = MyLatch;
				q->writer_wanted = false;
				q->claimed_at = now;
			}
			else
				timeout = Min(timeout, TimestampDifferenceMilliseconds(now, not_before) + 1);
		}
		q->standby_latch = OidIsValid(dbid) ? NULL : MyLatch;
		LWLockRelease(q->lock);
		if (OidIsValid(dbid))
			return dbid;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
	}
}

/*
 * The server's settings (defaults, configuration file, command line) as
 * this process had them before it connected: what the writer runs with
 * in place of the settings of its database.
 */
typedef struct HpServerSetting
{
	struct config_generic *gconf;
	char	   *value;			/* NULL: a string setting that was NULL */
} HpServerSetting;

static HpServerSetting *hp_server_settings = NULL;
static int	hp_n_server_settings = 0;

/* The value of a setting as text set_config_option takes: now, or at boot */
static char *
hp_setting_text(struct config_generic *g, bool boot)
{
	char		buf[64];

	switch (g->vartype)
	{
		case PGC_BOOL:
			{
				struct config_bool *c = (struct config_bool *) g;

				return pstrdup((boot ? c->boot_val : *c->variable) ? "on" : "off");
			}
		case PGC_INT:
			{
				struct config_int *c = (struct config_int *) g;

				snprintf(buf, sizeof(buf), "%d", boot ? c->boot_val : *c->variable);
				return pstrdup(buf);
			}
		case PGC_REAL:
			{
				struct config_real *c = (struct config_real *) g;

				snprintf(buf, sizeof(buf), "%.17g", boot ? c->boot_val : *c->variable);
				return pstrdup(buf);
			}
		case PGC_STRING:
			{
				struct config_string *c = (struct config_string *) g;
				const char *v = boot ? c->boot_val : *c->variable;

				return v ? pstrdup(v) : NULL;
			}
		case PGC_ENUM:
			{
				struct config_enum *c = (struct config_enum *) g;

				return pstrdup(config_enum_lookup_by_value(c, boot ? c->boot_val : *c->variable));
			}
	}
	return NULL;
}

/* Before connecting: note every setting as the server gave it */
static void
hp_writer_save_settings(void)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	hp_server_settings = palloc0(n * sizeof(HpServerSetting));
	for (int i = 0; i < n; i++)
	{
		if (vars[i]->flags & GUC_CUSTOM_PLACEHOLDER)
			continue;
		hp_server_settings[hp_n_server_settings].gconf = vars[i];
		hp_server_settings[hp_n_server_settings].value = hp_setting_text(vars[i], false);
		hp_n_server_settings++;
	}
	MemoryContextSwitchTo(old);
}

/*
 * After connecting: undo every setting the database gave this session
 * (ALTER DATABASE ... SET, ALTER ROLE ... IN DATABASE ... SET), back to the
 * server's value, or the built-in one for a setting the server did not
 * have.  A database owner may set any user setting (and a superuser may
 * let him set others): "role", "exit_on_error", planner and lock settings
 * would all reach the writer.  Settings no code of this process reads
 * (placeholders of libraries not loaded here) are left.  Then the session
 * user is the bootstrap superuser again, whatever session_authorization
 * said.  A setting that cannot be undone is logged; the writer runs on.
 */
static void
hp_writer_undo_database_settings(void)
{
	struct config_generic **vars;
	int			n;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	vars = get_guc_variables();
	n = GetNumConfigOptions();
	for (int i = 0; i < n; i++)
	{
		struct config_generic *g = vars[i];
		char	   *value = NULL;
		bool		found = false;

		if ((g->source != PGC_S_DATABASE && g->source != PGC_S_DATABASE_USER) ||
			(g->flags & GUC_CUSTOM_PLACEHOLDER))
			continue;
		for (int j = 0; j < hp_n_server_settings && !found; j++)
			if (hp_server_settings[j].gconf == g)
			{
				found = true;
				value = hp_server_settings[j].value;
			}
		if (!found)
			value = hp_setting_text(g, true);
		if (value == NULL)
			continue;			/* NULL cannot be set (session_authorization: below) */
		if (set_config_option(g->name, value, PGC_SUSET, PGC_S_OVERRIDE,
							  GUC_ACTION_SET, true, WARNING, false) <= 0)
			ereport(WARNING,
					(errmsg("health_pass audit writer could not undo the setting \"%s\" of its database",
							g->name)));
	}
	CommitTransactionCommand();
	if (GetSessionUserId() != BOOTSTRAP_SUPERUSERID)
		SetSessionAuthorization(BOOTSTRAP_SUPERUSERID, true);
	SetConfigOption("role", "none", PGC_SUSET, PGC_S_OVERRIDE);
}

/* The audit_block the writer's chain head was read from (committed) */
static Oid	hp_head_relid = InvalidOid;

/* Error data of the last failed transaction; reset before each */
static MemoryContext hp_writer_errcxt = NULL;

/* This transaction published a lock wait in its queue */
static bool hp_wait_published = false;

/* A transaction failed since the last one committed */
static bool hp_stalled = false;

/*
 * Take ROW EXCLUSIVE on relid.  When it is not free at once, first say in
 * q what the writer waits for and since when (audit_status() shows it,
 * with the pids that block it), then wait: at most lock_timeout, like
 * every lock wait of the writer.
 */
static void
hp_writer_lock(HpQueue *q, Oid relid)
{
	if (ConditionalLockRelationOid(relid, RowExclusiveLock))
		return;
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->wait_since == 0)
		q->wait_since = GetCurrentTimestamp();
	q->wait_is_lock = true;
	SET_LOCKTAG_RELATION(q->wait_tag, MyDatabaseId, relid);
	q->wait_mode = RowExclusiveLock;
	LWLockRelease(q->lock);
	hp_wait_published = true;
	LockRelationOid(relid, RowExclusiveLock);
}

/*
 * Lock every relation of the audit log the writer touches: audit_block,
 * its indexes, its TOAST table and that table's index, ROW EXCLUSIVE, each
 * wait bounded and published (hp_writer_lock).  The table_open,
 * ExecOpenIndices and TOAST calls that follow find them held.
 */
static void
hp_writer_lock_audit(HpQueue *q, Oid relid)
{
	Relation	rel;
	List	   *indexes;
	Oid			toast;
	ListCell   *lc;

	hp_writer_lock(q, relid);
	rel = table_open(relid, NoLock);
	indexes = RelationGetIndexList(rel);
	toast = rel->rd_rel->reltoastrelid;
	table_close(rel, NoLock);
	foreach(lc, indexes)
		hp_writer_lock(q, lfirst_oid(lc));
	if (!OidIsValid(toast))
		return;
	hp_writer_lock(q, toast);
	rel = table_open(toast, NoLock);
	indexes = RelationGetIndexList(rel);
	table_close(rel, NoLock);
	foreach(lc, indexes)
		hp_writer_lock(q, lfirst_oid(lc));
}

/*
 * Read the last id and hash of the chain from the newest audit_block
 * (relid, which the caller locked with its indexes), in the current
 * transaction (an empty log starts the chain at the newest anchor in
 * audit_anchor, or at id 0 and a zero hash when there is none).
 * A backward scan of the primary key (min_id), not SQL: no planner setting
 * or plan applies.  A damaged newest block stops the writer: it cannot
 * chain to it, and reads fail closed until a superuser repairs or removes
 * it.
 */
static void
hp_writer_read_head(Oid relid, int64 *id, uint8 *hash)
{
	Relation	rel;
	HpBlockScan bs;

	*id = 0;
	memset(hash, 0, 32);
	rel = table_open(relid, RowExclusiveLock);
	hp_block_scan_begin(&bs, rel, RowExclusiveLock, GetActiveSnapshot());
	if (hp_block_scan_next(&bs))
	{
		bool		isnull;
		Datum		d = slot_getattr(bs.slot, 6, &isnull);
		HpBlock		b;
		const char *why = NULL;

		if (isnull || !hp_block_unpack(DatumGetByteaPP(d), &b, &why) || b.n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the newest health_pass.audit_block is damaged: %s",
							why ? why : "no records"),
					 errhint("Run health_pass.audit_verify() to find the first damaged record.")));
		*id = b.entries[b.n - 1].id;
		memcpy(hash, b.entries[b.n - 1].hash, 32);
	}
	else
	{
		/* every block was archived: the chain goes on from the newest anchor */
		HpAnchor   *a;
		int			n = hp_anchors_read(&a, NULL);

		if (n > 0)
		{
			*id = a[n - 1].id;
			memcpy(hash, a[n - 1].hash, 32);
		}
	}
	hp_block_scan_end(&bs);
	table_close(rel, NoLock);
}

/* The chain head and the audit_block it was read from, for one transaction */
typedef struct HpWriterStep
{
	uint64		from;			/* the batch: records [from, from + n) */
	int			n;
	int64		id;				/* chain head: in, and out once committed */
	uint8		hash[32];
	Oid			relid;			/* the audit_block written to (or read) */
} HpWriterStep;

static Oid hp_writer_batch(HpQueue *q, uint64 from, int n, int64 *id, uint8 *hash,
							const HpRecord *only);

/* This worker shipped a standby's records until it was promoted (ship.c) */
static bool hp_was_shipping = false;

/* The reason of a failover record: where the chain continues, what was lost */
static char *
hp_failover_reason(HpQueue *q, int64 prev_tli, TimeLineID tli, int64 id, const uint8 *hash)
{
	bool		known;
	int64		pid;
	uint8		phash[32];
	char	   *lost;

	LWLockAcquire(q->lock, LW_SHARED);
	known = q->primary_known && hp_was_shipping;
	pid = q->primary_last_id;
	memcpy(phash, q->primary_last_hash, 32);
	LWLockRelease(q->lock);
	if (!known)
		lost = "records the old primary wrote after it, if any, did not reach this server";
	else if (pid > id)
		lost = psprintf("the old primary had written records %lld to %lld, which did not reach this server",
						(long long) id + 1, (long long) pid);
	else if (pid == id && memcmp(phash, hash, 32) != 0)
		lost = psprintf("the old primary's record %lld has another hash: the logs forked there",
						(long long) id);
	else
		lost = "every record the old primary was last known to have is here";
	return psprintf("timeline %u (was %lld): the chain continues after record %lld, hash %02x%02x%02x%02x%02x%02x%02x%02x; %s",
					tli, (long long) prev_tli, (long long) id,
					hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], lost);
}

/*
 * Inside the transaction that reads the chain head at start: when the
 * server's timeline is not the one health_pass.audit_timeline last noted (a
 * standby was promoted, or a backup restored), write a "failover" record,
 * chained to the head, that says so and what may be lost, and note the new
 * timeline with the record the chain continues after.  The first time
 * (an empty table) only notes the timeline.  docs/design/standby.md.
 */
static void
hp_writer_timeline(HpQueue *q, HpWriterStep *step)
{
	TimeLineID	tli = GetWALInsertionTimeLine();
	Oid			relid = hp_extension_relation_oid("audit_timeline");
	bool		isnull;
	int64		last_tli;
	Datum		args[5];
	Oid			types[5] = {INT8OID, INT8OID, BYTEAOID, TEXTOID, INT8OID};
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	char	   *reason = NULL;
	int64		after_id = step->id;
	uint8		after_hash[32];

	if (!OidIsValid(relid))
		return;					/* an extension older than 0.10.0 */
	memcpy(after_hash, step->hash, 32);
	SPI_connect();
	if (SPI_execute("SELECT pg_catalog.max(timeline) FROM health_pass.audit_timeline", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read health_pass.audit_timeline");
	last_tli = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!isnull && last_tli == (int64) tli)
	{
		SPI_finish();
		return;
	}
	if (!isnull)
	{
		HpRecord	rec;
		char	   *user = GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false);

		reason = hp_failover_reason(q, last_tli, tli, step->id, step->hash);
		memset(&rec, 0, sizeof(rec));
		rec.logged_at = GetCurrentTimestamp();
		rec.statement_id = hp_next_statement_id();
		rec.relid = step->relid;
		rec.backend_pid = MyProcPid;
		rec.outcome = HP_FAILOVER;
		rec.subject_null = true;
		rec.client_addr_null = true;
		namestrcpy(&rec.session_user_name, user);
		namestrcpy(&rec.current_user_name, user);
		strlcpy(rec.application_name, "health_pass audit writer", HP_APPNAME_LEN);
		hp_copy_field(rec.reason, HP_REASON_LEN, reason);
		(void) hp_writer_batch(q, 0, 1, &step->id, step->hash, &rec);
		ereport(LOG,
				(errmsg("health_pass audit log: %s", reason)));
	}
	else
		nulls[3] = 'n';
	args[0] = Int64GetDatum((int64) tli);
	args[1] = Int64GetDatum(after_id);
	args[2] = PointerGetDatum(hp_bytea(after_hash, 32));
	args[3] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	args[4] = Int64GetDatum(isnull ? 0 : last_tli);
	if (isnull)
		nulls[4] = 'n';
	if (SPI_execute_with_args("INSERT INTO health_pass.audit_timeline "
							  "(timeline, previous, after_id, after_hash, note) "
							  "VALUES ($1, $5, $2, $3, $4)",
							  5, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write health_pass.audit_timeline");
	SPI_finish();
}

/* Transaction body at start: read the chain head */
static void
hp_writer_load_head(HpQueue *q, HpWriterStep *step)
{
	step->id = 0;
	memset(step->hash, 0, 32);
	step->relid = hp_extension_relation_oid("audit_block");
	if (OidIsValid(step->relid))
	{
		hp_writer_lock_audit(q, step->relid);
		hp_writer_read_head(step->relid, &step->id, step->hash);
		/* before any block: ids past the head may be written again */
		hp_keyidx_clamp(step->id);
		hp_writer_timeline(q, step);
	}
}

/*
 * Write records [from, from + n) of the ring to audit_block, inside the
 * caller's transaction: chained with SHA-256, HP_BLOCK_RECORDS to a row,
 * straight into the heap and its index (no SQL per block: this is the
 * writer's hot path).  *id and hash are the chain head, advanced per record.
 */
static Oid
hp_writer_batch(HpQueue *q, uint64 from, int n, int64 *id, uint8 *hash, const HpRecord *only)
{
	Oid			relid = hp_extension_relation_oid("audit_block");
	CommandId	cid = GetCurrentCommandId(true);
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	HpEntry    *e;
	MemoryContext blockcxt,
				old;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("health_pass.audit_block does not exist"),
				 errhint("Update the extension: ALTER EXTENSION health_pass UPDATE.")));
	hp_writer_lock_audit(q, relid);
	rel = table_open(relid, RowExclusiveLock);
	if (relid != hp_head_relid)
	{
		/*
		 * the extension was dropped and created again: a new chain
		 * (hp_head_relid moves when this transaction commits)
		 */
		hp_writer_read_head(relid, id, hash);
		hp_keyidx_clamp(*id);
	}
	if (rel->rd_rel->relkind != RELKIND_RELATION || RelationGetDescr(rel)->natts != 6)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("health_pass.audit_block is not the table of 6 columns the writer expects")));
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = table_slot_create(rel, NULL);
	e = palloc(HP_BLOCK_RECORDS * sizeof(HpEntry));
	blockcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass writer block",
									 ALLOCSET_DEFAULT_SIZES);

	for (int done = 0; done < n;)
	{
		int			k = Min(n - done, HP_BLOCK_RECORDS);
		uint8		prev[32];

		memcpy(prev, hash, 32);
		for (int i = 0; i < k; i++)
		{
			hp_entry_of_record(only ? only : &q->ring[(from + done + i) % hp_queue_size], &e[i]);
			e[i].id = ++(*id);
			hp_record_hash(hash, &e[i], e[i].hash);
			memcpy(hash, e[i].hash, 32);
		}
		old = MemoryContextSwitchTo(blockcxt);
		ExecClearTuple(slot);
		hp_block_form(prev, e, k, slot->tts_values, slot->tts_isnull);
		ExecStoreVirtualTuple(slot);
		table_tuple_insert(rel, slot, cid, 0, NULL);
		ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
		ResetPerTupleExprContext(estate);
		MemoryContextSwitchTo(old);
		MemoryContextReset(blockcxt);
		done += k;
	}

	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	MemoryContextDelete(blockcxt);
	pfree(e);
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

/* Transaction body of a batch: write step's records */
static void
hp_writer_write(HpQueue *q, HpWriterStep *step)
{
	pgstat_report_activity(STATE_RUNNING, "writing health_pass audit records");
	step->relid = hp_writer_batch(q, step->from, step->n, &step->id, step->hash, NULL);
}

/*
 * A writer transaction failed with edata: note in q why the writer is not
 * writing (audit_status() shows it), and since when.  True when this is
 * news (the first failure since the writer last committed).
 */
static bool
hp_writer_note_failure(HpQueue *q, ErrorData *edata, TimestampTz started)
{
	bool		first;

	first = !hp_stalled;
	hp_stalled = true;
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->wait_since == 0)
		q->wait_since = started;
	/* a lock wait on the audit log that ran out keeps its description */
	if (!(hp_wait_published && edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE))
		q->wait_is_lock = false;
	strlcpy(q->wait_error, edata->message ? edata->message : "", HP_WAIT_ERROR_LEN);
	LWLockRelease(q->lock);
	return first;
}

/* To the server log, once per stall (not once per attempt) */
static void
hp_writer_log_failure(HpQueue *q, ErrorData *edata)
{
	LOCKTAG		tag;
	LOCKMODE	mode;
	bool		is_lock;
	StringInfoData buf;

	LWLockAcquire(q->lock, LW_SHARED);
	is_lock = q->wait_is_lock;
	tag = q->wait_tag;
	mode = q->wait_mode;
	LWLockRelease(q->lock);
	if (!is_lock)
	{
		edata->elevel = LOG;
		ThrowErrorData(edata);
		return;
	}
	initStringInfo(&buf);
	DescribeLockTag(&buf, &tag);
	ereport(LOG,
			(errmsg("health_pass audit writer is waiting for %s on %s",
					GetLockmodeName(tag.locktag_lockmethodid, mode), buf.data),
			 errdetail("Audited reads fail (YHA01) while it waits; health_pass.audit_status() shows who holds it.")));
}

/*
 * Run one writer transaction (body with step).  The writer waits for no
 * lock longer than lock_timeout (HP_LOCK_TIMEOUT): an error, a lock that is
 * not granted or a query cancel ends the transaction, not the writer.
 * Returns true when it committed; false after noting why it did not.
 */
static bool
hp_writer_xact(HpQueue *q, void (*body) (HpQueue *, HpWriterStep *), HpWriterStep *step)
{
	TimestampTz started = GetCurrentTimestamp();
	volatile bool ok = true;
	bool		first;
	Oid			save_userid;
	int			save_sec_context;

	MemoryContextReset(hp_writer_errcxt);
	hp_wait_published = false;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		/*
		 * As the bootstrap superuser, whatever a setting said.  Switched
		 * inside the transaction: StartTransaction() saves the user and
		 * security context to restore them on abort, and requires that no
		 * context flag is set then.
		 */
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		PushActiveSnapshot(GetTransactionSnapshot());
		body(q, step);
		PopActiveSnapshot();
		CommitTransactionCommand();
		hp_stalled = false;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(hp_writer_errcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		first = hp_writer_note_failure(q, edata, started);
		if (first)
			hp_writer_log_failure(q, edata);
		RESUME_INTERRUPTS();
		ok = false;
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	MemoryContextSwitchTo(TopMemoryContext);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/* After a failed transaction: at once after a lock wait, else after a pause */
static void
hp_writer_pause(HpQueue *q)
{
	bool		lock;

	LWLockAcquire(q->lock, LW_SHARED);
	lock = q->wait_is_lock;
	LWLockRelease(q->lock);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 lock ? HP_POLL_MS : HP_RETRY_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * The next batch: the run of published records from "written" on, at most
 * HP_BATCH, into step (with the chain head); returns how many.  Slots in
 * [written, head) are reserved; each is filled once its ready flag says
 * so, and no backend reuses them until written moves.  The records are
 * read from the ring in place, without the lock.
 */
static int
hp_writer_next_batch(HpQueue *q, HpWriterStep *step)
{
	int			n;

	LWLockAcquire(q->lock, LW_SHARED);
	step->from = q->written;
	n = (int) Min(q->head - step->from, (uint64) HP_BATCH);
	step->id = q->last_id;
	memcpy(step->hash, q->last_hash, 32);
	LWLockRelease(q->lock);
	for (int k = 0; k < n; k++)
		if (!hp_slot_ready(q, step->from + k))
		{
			n = k;
			break;
		}
	step->n = n;
	return n;
}

/* A batch committed: move "written" and the chain head past it */
static void
hp_writer_committed(HpQueue *q, HpWriterStep *step)
{
	hp_head_relid = step->relid;
	/* audit_log's insert counts drive autovacuum; WAL counts pg_stat_wal */
	pgstat_report_stat(false);

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	q->written = step->from + step->n;
	q->written_lsn = XactLastCommitEnd;
	q->last_id = step->id;
	memcpy(q->last_hash, step->hash, 32);
	q->head_relid = step->relid;
	q->committed_batches++;
	q->wait_since = 0;
	LWLockRelease(q->lock);
	ConditionVariableBroadcast(&q->progress);
}

/*
 * Asked to stop (server shutdown, hp_writer_stop, pg_terminate_backend):
 * first write what is queued and the denial counts not yet summarized,
 * flush it to disk, then exit.  Bounded by HP_DRAIN_MS: a record still
 * reserved but not published then (its backend gone or stuck), or a lock
 * the writer cannot get, is left, as before.  A SIGQUIT (immediate
 * shutdown) ends the process at once, as for every backend.
 */
static void
hp_writer_drain_and_exit(HpQueue *q, Oid dbid)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HP_DRAIN_MS);
	uint64		stop_head;

	/* the denial counts first, then everything queued up to now */
	hp_denials_flush(dbid, true);
	LWLockAcquire(q->lock, LW_SHARED);
	stop_head = q->head;
	LWLockRelease(q->lock);

	while (GetCurrentTimestamp() < deadline)
	{
		HpWriterStep step;
		int			n;

		ResetLatch(MyLatch);
		n = hp_writer_next_batch(q, &step);
		if (step.from >= stop_head)
			break;				/* records queued later go to the next writer */
		if (step.from + n > stop_head)
			step.n = n = (int) (stop_head - step.from);
		if (n > 0 && hp_writer_xact(q, hp_writer_write, &step))
		{
			hp_writer_committed(q, &step);
			continue;
		}
		/* a slot reserved and not yet published, or a failed batch: wait */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
	}
	hp_writer_settle(q, true);
	proc_exit(1);
}

/*
 * Background worker entry point: wait for this slot's database, then drain
 * its queue for ever.  Every exit is with code 1 (FATAL, or proc_exit(1)
 * while it waits): the postmaster starts the worker again at once, to wait
 * for the next database; code 0 would unregister it.
 */
void
hp_writer_main(Datum arg)
{
	int			slot = DatumGetInt32(arg);
	Oid			dbid;
	HpQueue    *q;

	/* while it waits, a SIGTERM (shutdown) ends it quietly */
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	/* a query cancel has nothing to cancel here: its waits are bounded */
	pqsignal(SIGINT, SIG_IGN);
	BackgroundWorkerUnblockSignals();
	if (slot < 0 || slot >= hp_max_databases || hp_queues == NULL)
	{
		/* cannot happen; unregister rather than be restarted in a loop */
		elog(LOG, "health_pass audit writer for queue slot %d has no queue", slot);
		proc_exit(0);
	}
	q = &hp_queues->queues[slot];
	writer_queue = q;
	before_shmem_exit(hp_writer_detach, (Datum) 0);

	dbid = hp_writer_await(q);
	if (ShutdownRequestPending)
		proc_exit(1);
	/*
	 * From here on a SIGTERM is served by the main loop, which writes what
	 * is queued first (hp_writer_drain_and_exit): a fast or smart shutdown
	 * loses no record that reached the queue
	 */
	hp_writer_save_settings();
	/* a database owner may disallow connections: not the writer's */
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, BGWORKER_BYPASS_ALLOWCONN);
	hp_writer_undo_database_settings();

	/*
	 * Batches commit asynchronously, whatever the server says: no fsync per
	 * batch.  hp_writer_settle() flushes when a backend waits for
	 * durability and before the writer dozes; the WAL writer does otherwise.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "health_pass audit writer", PGC_USERSET, PGC_S_OVERRIDE);

	/*
	 * No lock wait without a timeout (docs/design/writer.md); an error ends
	 * a transaction, not the writer; and the server's configuration file
	 * does not change how its transactions run either.
	 */
	SetConfigOption("lock_timeout", HP_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("exit_on_error", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_deferrable", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * search_path before any SQL (the first is the chain head's load,
	 * below, or the shipper's): no function, operator or type of a schema
	 * the database's owner made runs as the bootstrap superuser here
	 * (test/t/110_search_path.pl)
	 */
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);
	hp_writer_errcxt = AllocSetContextCreate(TopMemoryContext, "health_pass writer errors",
											 ALLOCSET_SMALL_SIZES);

	/*
	 * On a standby this worker ships the queue to the primary (ship.c)
	 * until recovery ends; then it writes here, starting a new timeline of
	 * the chain (hp_writer_timeline)
	 */
	if (RecoveryInProgress())
	{
		hp_was_shipping = hp_ship_main(q, dbid);
		SetConfigOption("application_name", "health_pass audit writer", PGC_USERSET, PGC_S_OVERRIDE);
		pgstat_report_activity(STATE_IDLE, NULL);
	}

	/* at start: publish the chain head, so audit_verify() can check the tail */
	for (;;)
	{
		HpWriterStep step;

		if (hp_writer_xact(q, hp_writer_load_head, &step))
		{
			hp_head_relid = step.relid;
			LWLockAcquire(q->lock, LW_EXCLUSIVE);
			q->last_id = step.id;
			memcpy(q->last_hash, step.hash, 32);
			q->head_relid = step.relid;
			q->wait_since = 0;
			LWLockRelease(q->lock);
			break;
		}
		/* nothing to drain without a chain head: the queue stays for the next */
		if (ShutdownRequestPending)
			proc_exit(1);
		hp_writer_pause(q);
		if (ShutdownRequestPending)
			proc_exit(1);
	}
	ConditionVariableBroadcast(&q->progress);

	for (;;)
	{
		static int	idle_polls = 0;
		int			n;
		HpWriterStep step;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			hp_writer_drain_and_exit(q, dbid);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		hp_denials_flush(dbid, false);	/* summaries of intervals that ended */

		n = hp_writer_next_batch(q, &step);

		if (n == 0)
		{
			bool		doze;

			/* nothing queued: a step of the subject index's upkeep, if due */
			if (hp_keyidx_writer_step(q->last_id, HP_KEY_IDLE))
			{
				hp_writer_settle(q, false);
				continue;
			}
			/* poll every HP_POLL_MS; after a second of nothing, doze */
			doze = ++idle_polls > 1000 / HP_POLL_MS;

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

		if (!hp_writer_xact(q, hp_writer_write, &step))
		{
			/* nothing was written: the same records again, from the head */
			hp_writer_pause(q);
			continue;
		}
		hp_writer_committed(q, &step);
		hp_writer_settle(q, false);

		/*
		 * After a short batch, let records gather for one poll interval
		 * rather than loop at once: a batch (and its transaction, heap row
		 * and index entry) per handful of records cost the server more than
		 * the records themselves.  A backend that waits for its records
		 * (audit_sync, audit_flush) or finds the queue a quarter full sets
		 * the latch and ends the wait.
		 */
		if (n < HP_BATCH)
		{
			/* the pause may index instead (keyindex.c) */
			if (!hp_keyidx_writer_step(q->last_id, HP_KEY_SHORT))
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 HP_POLL_MS, PG_WAIT_EXTENSION);
		}
		else
			(void) hp_keyidx_writer_step(q->last_id, HP_KEY_BUSY);
	}
}
