/*
 * ship.c
 *    Audited reads on a hot standby (docs/design/standby.md).
 *
 *    A standby cannot write an audit log: it is read-only, and the log it
 *    holds is the primary's, replicated.  So the records of its reads are
 *    written into the primary's chain, each naming the standby:
 *
 *    - backends queue their records in this server's queue as on a primary
 *      (queue.c), but only once the slot's worker says the primary answers
 *      (hp_standby_admit); when health_pass.primary_conninfo is not set, or
 *      the primary cannot be reached, a protected read fails at once
 *      (YHA02), naming recovery and the setting;
 *    - the slot's worker, which writes on a primary, ships on a standby
 *      (hp_ship_main): it takes the published records in batches, packs
 *      them as a block (block.c) and calls health_pass._audit_ship() on the
 *      primary over libpq, which queues them there and returns once they
 *      are durable in the primary's chain; only then does "written" (and
 *      "durable") move here, so health_pass.audit_sync means what it means
 *      on the primary;
 *    - quotas are counted on the primary (hp_ship_quota_admit, each backend
 *      with its own connection), so a pull cannot be spread over replicas;
 *    - when recovery ends (promotion), the worker stops shipping and
 *      becomes the writer (writer.c), which starts a new timeline of the
 *      chain with a "failover" record.
 *
 *    The primary's side is hp_audit_ship() (_audit_ship) below, and
 *    _audit_quota_admit() (access/quota.c).
 *
 * Locks: q->lock only, never across a libpq call or anything that can fail.
 */
#include "postgres.h"

#include <signal.h>

#include "libpq-fe.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"

#define HP_SHIP_BATCH 1024		/* records per call, at most */
#define HP_SHIP_POLL_MS 20		/* while records come in */
#define HP_SHIP_HEARTBEAT_MS 1000	/* idle: ask the primary's head this often */
#define HP_SHIP_RETRY_MS 1000	/* after a failed connection or call */
#define HP_SHIP_CONNECT_MS 5000 /* longest wait for a connection */
#define HP_SHIP_DRAIN_MS 3000	/* longest it ships on after a stop request */

/* How the primary's records name this standby */
const char *
hp_node_name_now(void)
{
	if (hp_node_name && hp_node_name[0] != '\0')
		return hp_node_name;
	if (cluster_name && cluster_name[0] != '\0' &&
		hp_node_name_ok(cluster_name, strlen(cluster_name)))
		return cluster_name;
	return "standby";
}

/* libpq's message of conn, on one line */
static void
hp_pq_error(PGconn *conn, const char *what, char *err, size_t errlen)
{
	const char *m = conn ? PQerrorMessage(conn) : "out of memory";
	size_t		len;

	snprintf(err, errlen, "%s%s", what, m);
	len = strlen(err);
	while (len > 0 && (err[len - 1] == '\n' || err[len - 1] == ' '))
		err[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (err[i] == '\n')
			err[i] = ' ';
}

/*
 * Wait for conn's socket (readable, or writable when write), the latch, or
 * the deadline.  False when the deadline passed; an interrupt is served
 * (CHECK_FOR_INTERRUPTS) after the latch.
 */
static bool
hp_pq_wait(PGconn *conn, bool write, TimestampTz deadline)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
	int			rc;

	if (ms <= 0)
		return false;
	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH |
						   (write ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE),
						   PQsocket(conn), ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return true;
}

/*
 * Connect to the primary, to this database (whatever database the setting
 * names), without blocking past HP_SHIP_CONNECT_MS or an interrupt.  NULL,
 * with err set, when it fails.  The caller owns the connection.
 */
static PGconn *
hp_pq_connect(const char *dbname, const char *appname, char *err, size_t errlen)
{
	const char *keys[] = {"dbname", "dbname", "application_name", NULL};
	const char *vals[] = {hp_primary_conninfo, dbname, appname, NULL};
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   HP_SHIP_CONNECT_MS);
	PGconn	   *conn = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
	{
		/*
		 * libpq quotes a connection string it cannot parse, password
		 * included: to the server log only, not to readers' errors or
		 * audit_status()
		 */
		hp_pq_error(conn, "", err, errlen);
		ereport(LOG,
				(errmsg("health_pass could not use health_pass.primary_conninfo: %s", err)));
		snprintf(err, errlen, "could not connect to the primary: health_pass.primary_conninfo is not a usable connection string (see the server log)");
		PQfinish(conn);
		return NULL;
	}
	/* an interrupt (statement_timeout, a cancel) must not leave it open */
	PG_TRY();
	{
		while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED)
		{
			if (!hp_pq_wait(conn, st == PGRES_POLLING_WRITING, deadline))
			{
				snprintf(err, errlen, "could not connect to the primary: no answer within %d ms",
						 HP_SHIP_CONNECT_MS);
				st = PGRES_POLLING_ACTIVE;	/* not failed: timed out */
				break;
			}
			st = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (st == PGRES_POLLING_ACTIVE)
	{
		PQfinish(conn);
		return NULL;
	}
	if (st == PGRES_POLLING_FAILED)
	{
		hp_pq_error(conn, "could not connect to the primary: ", err, errlen);
		PQfinish(conn);
		return NULL;
	}
	/* sends wait on the socket with a deadline (hp_pq_exec), never inside libpq */
	if (PQsetnonblocking(conn, 1) != 0)
	{
		hp_pq_error(conn, "could not connect to the primary: ", err, errlen);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/*
 * Run one query with parameters (text, except those fmts says are binary)
 * and wait for its one result, for at most timeout_ms.  NULL, with err set,
 * on any failure; the connection is then not to be used again.
 */
static PGresult *
hp_pq_exec(PGconn *conn, const char *sql, int n, const char *const *vals,
		   const int *lens, const int *fmts, int timeout_ms, char *err, size_t errlen)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PGresult   *volatile res = NULL;
	PGresult   *r;
	volatile bool failed = false;

	if (!PQsendQueryParams(conn, sql, n, NULL, vals, lens, fmts, 0))
	{
		hp_pq_error(conn, "the primary: ", err, errlen);
		return NULL;
	}
	/* a nonblocking connection: send the rest as the socket takes it */
	for (;;)
	{
		int			f = PQflush(conn);

		if (f == 0)
			break;
		if (f < 0)
		{
			hp_pq_error(conn, "the primary: ", err, errlen);
			return NULL;
		}
		if (!hp_pq_wait(conn, true, deadline))
		{
			snprintf(err, errlen, "the primary did not take the request within %d ms", timeout_ms);
			return NULL;
		}
		if (!PQconsumeInput(conn))
		{
			hp_pq_error(conn, "the primary: ", err, errlen);
			return NULL;
		}
	}
	/* libpq's results are malloc'd: an interrupt must not leak one */
	PG_TRY();
	{
		while (!failed)
		{
			while (PQisBusy(conn))
			{
				if (!hp_pq_wait(conn, false, deadline))
				{
					snprintf(err, errlen, "the primary did not answer within %d ms", timeout_ms);
					failed = true;
					break;
				}
				if (!PQconsumeInput(conn))
				{
					hp_pq_error(conn, "the primary: ", err, errlen);
					failed = true;
					break;
				}
			}
			if (failed)
				break;
			r = PQgetResult(conn);
			if (r == NULL)
				break;
			if (res == NULL)
				res = r;
			else
				PQclear(r);
		}
	}
	PG_CATCH();
	{
		PQclear(res);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (failed)
	{
		PQclear(res);
		return NULL;
	}
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		PQnfields(res) != 2)
	{
		if (res && PQresultStatus(res) == PGRES_FATAL_ERROR)
		{
			const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

			snprintf(err, errlen, "the primary: %s", m ? m : "unknown error");
		}
		else
			snprintf(err, errlen, "the primary gave an unexpected answer");
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Publish the shipping state (and why it is down); wake waiting backends */
static void
hp_ship_state(HpQueue *q, uint8 state, const char *why)
{
	bool		changed;

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	changed = q->ship_state != state ||
		(why && strncmp(q->ship_error, why, HP_WAIT_ERROR_LEN - 1) != 0);
	if (q->ship_state != state)
		q->ship_since = GetCurrentTimestamp();
	q->ship_state = state;
	strlcpy(q->ship_error, why ? why : "", HP_WAIT_ERROR_LEN);
	LWLockRelease(q->lock);
	if (changed)
	{
		ConditionVariableBroadcast(&q->progress);
		if (state == HP_SHIP_DOWN && why)
			ereport(LOG,
					(errmsg("health_pass cannot ship audit records to the primary: %s", why),
					 errdetail("Protected tables cannot be read on this standby until it can.")));
		else if (state == HP_SHIP_UP)
			ereport(LOG,
					(errmsg("health_pass ships the audit records of this standby (\"%s\") to the primary",
							hp_node_name_now())));
	}
}

/*
 * Ship records [from, from + n) of q's ring (n may be 0: only ask the
 * primary's head) in one call; returns how many were shipped, or -1 with
 * err set.  The primary answers once they are durable there.
 */
static int
hp_ship_batch(PGconn *conn, HpQueue *q, uint64 from, int n, char *err, size_t errlen)
{
	const char *vals[4];
	int			lens[4] = {0, 0, 0, 0};
	int			fmts[4] = {0, 0, 0, 1};
	char		seq[24];
	PGresult   *res;
	HpEntry    *e = NULL;
	uint8		zero[32] = {0};
	uint8	   *buf = NULL;
	size_t		len = 0;

	if (n > 0)
	{
		e = palloc0(n * sizeof(HpEntry));
		for (int i = 0; i < n; i++)
		{
			hp_entry_of_record(&q->ring[(from + i) % hp_queue_size], &e[i]);
			e[i].id = i + 1;	/* the primary numbers them */
		}
		/* a block holds at most 1 MB: halve the batch until it fits */
		for (;;)
		{
			size_t		cap = hp_block_encoded_max(e, n);
			int		   *ctx = palloc(2 * n * sizeof(int));

			buf = palloc(cap);
			len = hp_block_encode(zero, e, n, ctx, buf, cap);
			pfree(ctx);
			if (len > 0 || n == 1)
				break;
			pfree(buf);
			n /= 2;
		}
		if (len == 0)
		{
			snprintf(err, errlen, "an audit record does not fit in a block");
			return -1;
		}
	}
	snprintf(seq, sizeof(seq), UINT64_FORMAT, from);
	vals[0] = hp_node_name_now();
	/* when this server's queues were made: new after a crash restart too */
	vals[1] = timestamptz_to_str(hp_queues->made_at);
	vals[2] = seq;
	vals[3] = (const char *) buf;
	lens[3] = (int) len;
	res = hp_pq_exec(conn, "SELECT last_id, last_hash FROM health_pass._audit_ship($1, $2, $3, $4)",
					 4, vals, lens, fmts, Max(hp_audit_timeout_ms, 1000) + HP_SHIP_CONNECT_MS,
					 err, errlen);
	if (res == NULL)
		return -1;
	if (!PQgetisnull(res, 0, 0) && !PQgetisnull(res, 0, 1))
	{
		size_t		hlen = 0;
		unsigned char *h = PQunescapeBytea((const unsigned char *) PQgetvalue(res, 0, 1), &hlen);
		int64		id = strtoi64(PQgetvalue(res, 0, 0), NULL, 10);

		if (h && hlen == 32)
		{
			LWLockAcquire(q->lock, LW_EXCLUSIVE);
			q->primary_known = true;
			q->primary_last_id = id;
			memcpy(q->primary_last_hash, h, 32);
			LWLockRelease(q->lock);
		}
		PQfreemem(h);
	}
	PQclear(res);
	if (n > 0)
	{
		/* durable on the primary: written and durable here too */
		LWLockAcquire(q->lock, LW_EXCLUSIVE);
		q->written = q->durable = from + n;
		q->committed_batches++;
		q->wait_since = 0;
		LWLockRelease(q->lock);
		ConditionVariableBroadcast(&q->progress);
	}
	return n;
}

/* The run of published records from "written" on, at most HP_SHIP_BATCH */
static int
hp_ship_next(HpQueue *q, uint64 *from)
{
	int			n;

	LWLockAcquire(q->lock, LW_SHARED);
	*from = q->written;
	n = (int) Min(q->head - *from, (uint64) HP_SHIP_BATCH);
	LWLockRelease(q->lock);
	for (int k = 0; k < n; k++)
		if (!hp_slot_ready(q, *from + k))
			return k;
	return n;
}

/*
 * Stop shipping (a stop request): say how many queued records were not
 * shipped, which a server shutdown loses (the rows of their reads may have
 * left, audit_sync off), then exit
 */
static void
hp_ship_exit(HpQueue *q)
{
	uint64		left;

	LWLockAcquire(q->lock, LW_SHARED);
	left = q->head - q->written;
	LWLockRelease(q->lock);
	if (left > 0)
		ereport(WARNING,
				(errmsg("%llu audit %s of this standby's reads %s not shipped to the primary",
						(unsigned long long) left, left == 1 ? "record" : "records",
						left == 1 ? "was" : "were"),
				 errdetail("The shipper was asked to stop and could not ship them within %d ms; if the server is shutting down, they are lost.",
						   HP_SHIP_DRAIN_MS)));
	proc_exit(1);
}

/*
 * The slot's worker on a standby: ship q's records to the primary until
 * recovery ends (returns true then, to become the writer) or a stop request
 * (ships what is queued for up to HP_SHIP_DRAIN_MS, then exits).
 */
bool
hp_ship_main(HpQueue *q, Oid dbid)
{
	PGconn	   *conn = NULL;
	char		err[HP_WAIT_ERROR_LEN];
	char	   *dbname;
	char		appname[NAMEDATALEN];
	char	   *conninfo_used = NULL;
	TimestampTz last_call = 0;
	TimestampTz drain_until = 0;
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "health_pass shipper",
											  ALLOCSET_DEFAULT_SIZES);

	StartTransactionCommand();
	dbname = get_database_name(dbid);
	if (dbname == NULL)
		proc_exit(1);			/* dropped meanwhile: wait for the next database */
	dbname = MemoryContextStrdup(TopMemoryContext, dbname);
	CommitTransactionCommand();
	SetConfigOption("application_name", "health_pass audit shipper", PGC_USERSET, PGC_S_OVERRIDE);
	pgstat_report_activity(STATE_RUNNING, "shipping health_pass audit records to the primary");
	hp_ship_state(q, HP_SHIP_UNKNOWN, NULL);

	for (;;)
	{
		uint64		from;
		int			n;
		TimestampTz now;

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(cxt);
		MemoryContextSwitchTo(cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		now = GetCurrentTimestamp();
		if (ShutdownRequestPending && drain_until == 0)
			drain_until = TimestampTzPlusMilliseconds(now, HP_SHIP_DRAIN_MS);
		if (!RecoveryInProgress())
		{
			PQfinish(conn);
			MemoryContextSwitchTo(TopMemoryContext);
			MemoryContextDelete(cxt);
			hp_ship_state(q, HP_SHIP_UNKNOWN, NULL);
			return true;		/* promoted: write the chain here now */
		}
		/* a new connection string: a new connection */
		if (conn && (conninfo_used == NULL || strcmp(conninfo_used, hp_primary_conninfo) != 0))
		{
			PQfinish(conn);
			conn = NULL;
		}
		if (conn == NULL)
		{
			if (hp_primary_conninfo[0] == '\0')
				strlcpy(err, "health_pass.primary_conninfo is not set", sizeof(err));
			else
			{
				snprintf(appname, sizeof(appname), "health_pass shipper %s", hp_node_name_now());
				conn = hp_pq_connect(dbname, appname, err, sizeof(err));
				if (conn)
				{
					if (conninfo_used)
						pfree(conninfo_used);
					conninfo_used = MemoryContextStrdup(TopMemoryContext, hp_primary_conninfo);
				}
			}
			if (conn == NULL || hp_ship_batch(conn, q, 0, 0, err, sizeof(err)) < 0)
			{
				PQfinish(conn);
				conn = NULL;
				hp_ship_state(q, HP_SHIP_DOWN, err);
				/* stopping: try again until the drain time is over */
				if (drain_until != 0 && GetCurrentTimestamp() >= drain_until)
					hp_ship_exit(q);
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 drain_until != 0 ? HP_SHIP_POLL_MS * 5 : HP_SHIP_RETRY_MS,
								 PG_WAIT_EXTENSION);
				continue;
			}
			last_call = now;
			hp_ship_state(q, HP_SHIP_UP, NULL);
		}

		hp_denials_flush(dbid, false);	/* summaries of intervals that ended */
		n = hp_ship_next(q, &from);
		if (n == 0)
		{
			if (drain_until != 0)
				hp_ship_exit(q);
			if (TimestampDifferenceExceeds(last_call, now, HP_SHIP_HEARTBEAT_MS))
			{
				/* idle: is the primary still there, and where is its head? */
				if (hp_ship_batch(conn, q, 0, 0, err, sizeof(err)) < 0)
				{
					PQfinish(conn);
					conn = NULL;
					hp_ship_state(q, HP_SHIP_DOWN, err);
					continue;
				}
				last_call = now;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 HP_SHIP_POLL_MS, PG_WAIT_EXTENSION);
			continue;
		}
		if (drain_until != 0 && now >= drain_until)
			hp_ship_exit(q);
		if (hp_ship_batch(conn, q, from, n, err, sizeof(err)) < 0)
		{
			PQfinish(conn);
			conn = NULL;
			hp_ship_state(q, HP_SHIP_DOWN, err);
			continue;
		}
		last_call = now;
	}
}

/*
 * A backend of a standby is about to queue a record: allowed once the
 * worker ships to the primary; at once an error (YHA02) when shipping is
 * not configured or the primary did not answer, and after waiting at most
 * audit_timeout for the worker to find out.
 */
static void
hp_standby_unconfigured(void)
{
	ereport(ERROR,
				(errcode(ERRCODE_HP_AUDIT_STANDBY),
				 errmsg("protected tables cannot be read on this standby: its reads cannot be audited"),
				 errdetail("The server is in recovery, so it cannot write the audit log, and health_pass.primary_conninfo is not set, so the primary does not write its records either."),
				 errhint("Set health_pass.primary_conninfo to a connection string for the primary (the records of this standby's reads are then written there), or read on the primary.")));
}

void
hp_standby_admit(HpQueue *q)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   hp_audit_timeout_ms);
	char		why[HP_WAIT_ERROR_LEN];

	if (hp_primary_conninfo == NULL || hp_primary_conninfo[0] == '\0')
		hp_standby_unconfigured();
	for (;;)
	{
		uint8		state;

		LWLockAcquire(q->lock, LW_SHARED);
		state = q->ship_state;
		strlcpy(why, q->ship_error, sizeof(why));
		LWLockRelease(q->lock);
		/* up; or promoted meanwhile: this server writes its own log now */
		if (state == HP_SHIP_UP || !RecoveryInProgress())
			break;
		if (state == HP_SHIP_DOWN)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_HP_AUDIT_STANDBY),
					 errmsg("protected tables cannot be read on this standby: the primary that audits its reads cannot be reached"),
					 errdetail("The server is in recovery; the records of its reads are written on the primary (health_pass.primary_conninfo), and the last attempt failed: %s.",
							   why),
					 errhint("Check that the primary is up and that health_pass.primary_conninfo reaches it; reads resume once it does.")));
		}
		hp_writer_request(q);
		if (GetCurrentTimestamp() >= deadline)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_HP_AUDIT_STANDBY),
					 errmsg("protected tables cannot be read on this standby: the primary that audits its reads did not answer in time"),
					 errdetail("The server is in recovery; its audit shipper did not reach the primary within health_pass.audit_timeout (%d ms).",
							   hp_audit_timeout_ms),
					 errhint("Check health_pass.primary_conninfo and the server log.")));
		}
		ConditionVariableTimedSleep(&q->progress,
									Max(1, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline)),
									PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * This backend's connection to the primary, for quota questions; closed at
 * exit.  A connection left in an unknown state (an interrupt or error in
 * the middle of a question) is closed before the next.
 */
static PGconn *quota_conn = NULL;
static bool quota_conn_busy = false;
static bool quota_exit_registered = false;

static void
hp_quota_conn_close(int code, Datum arg)
{
	PQfinish(quota_conn);
	quota_conn = NULL;
}

/*
 * On a standby: count a subject against a rule's quota on the primary
 * (_audit_quota_admit there), so every node counts against the same
 * counters.  Returns what hp_quota_admit() returns; raises YHA02 when the
 * primary cannot be asked.
 */
bool
hp_ship_quota_admit(Oid grantee, Oid relid, const char *purpose,
					const uint8 *subject_key, int *count)
{
	char		err[HP_WAIT_ERROR_LEN];
	char		g[16],
				r[16];
	const char *vals[4];
	int			lens[4] = {0, 0, 0, HP_SUBJECT_KEY_LEN};
	int			fmts[4] = {0, 0, 0, 1};
	PGresult   *res;
	bool		admitted;

	if (hp_primary_conninfo == NULL || hp_primary_conninfo[0] == '\0')
		hp_standby_unconfigured();
	if (!quota_exit_registered)
	{
		on_proc_exit(hp_quota_conn_close, (Datum) 0);
		quota_exit_registered = true;
	}
	if (quota_conn && (quota_conn_busy || PQstatus(quota_conn) != CONNECTION_OK))
	{
		PQfinish(quota_conn);
		quota_conn = NULL;
	}
	quota_conn_busy = true;
	if (quota_conn == NULL)
		quota_conn = hp_pq_connect(get_database_name(MyDatabaseId),
								   "health_pass quota", err, sizeof(err));
	res = NULL;
	if (quota_conn)
	{
		snprintf(g, sizeof(g), "%u", grantee);
		snprintf(r, sizeof(r), "%u", relid);
		vals[0] = g;
		vals[1] = r;
		vals[2] = purpose;
		vals[3] = (const char *) subject_key;
		res = hp_pq_exec(quota_conn,
						 "SELECT admitted, subjects FROM health_pass._audit_quota_admit($1::pg_catalog.oid, "
						 "$2::pg_catalog.oid, $3, $4)",
						 4, vals, lens, fmts, hp_audit_timeout_ms, err, sizeof(err));
	}
	if (res == NULL)
	{
		PQfinish(quota_conn);
		quota_conn = NULL;
		quota_conn_busy = false;
		ereport(ERROR,
				(errcode(ERRCODE_HP_AUDIT_STANDBY),
				 errmsg("protected tables cannot be read on this standby: the primary that counts this rule's quota cannot be asked"),
				 errdetail("The server is in recovery; quotas are counted on the primary (health_pass.primary_conninfo): %s.",
						   err),
				 errhint("Check that the primary is up and that health_pass.primary_conninfo reaches it.")));
	}
	quota_conn_busy = false;
	admitted = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	*count = (int) strtol(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (*count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_HP_AUDIT_STANDBY),
				 errmsg("the primary has no such access rule with a quota"),
				 errdetail("This standby found a rule the primary does not have (yet, or any more): its quota cannot be counted."),
				 errhint("Try again once the standby has replayed the primary's rules.")));
	return admitted;
}

/*
 * The entry of q->shipped for (node, boot), taking the least recently used
 * one for a standby not seen before, claimed for this backend: one call at
 * a time writes a standby's records (two calls with the same batch, a
 * shipper that gave up on a slow call and shipped again while it still
 * runs, would otherwise both find it not yet queued and both queue it).
 * Raises when another live backend has it; hp_shipped_release() gives it
 * back.
 */
static pg_noinline int
hp_shipped_slot(HpQueue *q, const char *node, TimestampTz boot)
{
	int			found = -1;
	int			oldest = 0;
	int			busy = 0;

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	for (int i = 0; i < HP_SHIPPERS && found < 0; i++)
	{
		if (q->shipped[i].boot == boot && strcmp(q->shipped[i].node, node) == 0)
			found = i;
		else if (q->shipped[i].used_at < q->shipped[oldest].used_at)
			oldest = i;
	}
	if (found < 0)
	{
		found = oldest;
		strlcpy(q->shipped[found].node, node, sizeof(q->shipped[found].node));
		q->shipped[found].boot = boot;
		q->shipped[found].next_seq = 0;
		q->shipped[found].queued_upto = 0;
		q->shipped[found].busy_pid = 0;
	}
	/* a backend that died in the middle (FATAL) leaves its pid behind */
	if (q->shipped[found].busy_pid != 0 && q->shipped[found].busy_pid != MyProcPid &&
		kill(q->shipped[found].busy_pid, 0) == 0)
		busy = q->shipped[found].busy_pid;
	else
	{
		q->shipped[found].busy_pid = MyProcPid;
		q->shipped[found].used_at = GetCurrentTimestamp();
	}
	LWLockRelease(q->lock);
	if (busy != 0)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("audit records of the standby \"%s\" are being written by another call (process %d)",
						node, busy),
				 errhint("The standby ships them again once that call ends.")));
	return found;
}

/* Give back the entry hp_shipped_slot() claimed */
static void
hp_shipped_release(HpQueue *q, int slot)
{
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->shipped[slot].busy_pid == MyProcPid)
		q->shipped[slot].busy_pid = 0;
	LWLockRelease(q->lock);
}

/*
 * Record next_seq of (node, boot) in its entry, and that its records are
 * queued here up to queued_upto (hp_last_enqueued)
 */
static void
hp_shipped_note(HpQueue *q, int slot, uint64 next_seq, uint64 queued_upto)
{
	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (q->shipped[slot].busy_pid == MyProcPid)
	{
		if (q->shipped[slot].next_seq < next_seq)
			q->shipped[slot].next_seq = next_seq;
		if (q->shipped[slot].queued_upto < queued_upto)
			q->shipped[slot].queued_upto = queued_upto;
	}
	LWLockRelease(q->lock);
}

/*
 * Queue the records of block b a standby shipped (the first numbered
 * first_seq), skipping those an earlier call queued, and return once all
 * of them are durable here.  The caller has claimed the entry slot.
 */
static pg_noinline void
hp_ship_enqueue(HpQueue *q, int slot, const char *node, const HpBlock *bl, int64 first_seq)
{
	int			skip;
	uint64		upto;

	LWLockAcquire(q->lock, LW_SHARED);
	skip = q->shipped[slot].next_seq > (uint64) first_seq ?
		(int) Min(q->shipped[slot].next_seq - (uint64) first_seq, (uint64) bl->n) : 0;
	LWLockRelease(q->lock);
	for (int i = skip; i < bl->n; i++)
	{
		const HpEntry *e = &bl->entries[i];
		HpRecord	rec;

		CHECK_FOR_INTERRUPTS();
		memset(&rec, 0, sizeof(rec));
		rec.logged_at = e->logged_at;
		rec.statement_id = e->statement_id;
		rec.relid = e->relid;
		rec.backend_pid = e->backend_pid;
		rec.outcome = e->outcome;
		rec.subject_null = e->subject == NULL;
		rec.client_addr_null = e->client_addr == NULL;
		hp_copy_field(NameStr(rec.session_user_name), NAMEDATALEN, e->session_user_name);
		hp_copy_field(NameStr(rec.current_user_name), NAMEDATALEN, e->current_user_name);
		hp_copy_field(rec.client_addr, HP_ADDR_LEN, e->client_addr);
		hp_copy_field(rec.application_name, HP_APPNAME_LEN, e->application_name);
		hp_copy_field(rec.subject, HP_SUBJECT_LEN, e->subject);
		hp_copy_field(rec.purpose, HP_PURPOSE_LEN, e->purpose);
		hp_copy_field(rec.reason, HP_REASON_LEN, e->reason);
		strlcpy(rec.node, node, sizeof(rec.node));
		(void) hp_enqueue(&rec);
		hp_shipped_note(q, slot, (uint64) first_seq + i + 1, hp_last_enqueued);
	}

	/*
	 * Durable: the records queued now, and those an earlier call
	 * queued (skipped now) that may not be durable yet: that call
	 * may have failed waiting for them, and the standby must not
	 * take them for durable before they are
	 */
	LWLockAcquire(q->lock, LW_SHARED);
	upto = q->shipped[slot].queued_upto;
	LWLockRelease(q->lock);
	if (bl->n > 0)
		hp_wait_durable(upto);
}

PG_FUNCTION_INFO_V1(hp_audit_ship);

/*
 * _audit_ship(node, records) on the primary: queue a standby's records,
 * each naming node, and return once they are durable, with the chain's head
 * (last_id, last_hash).  records NULL: only the head.  records is a block
 * (block.c) whose ids and hashes are not used: this server numbers and
 * chains them.  Who may call it is who has EXECUTE (revoked from PUBLIC):
 * a caller can add records that say a standby read something.
 */
Datum
hp_audit_ship(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[2];
	bool		outnull[2] = {true, true};
	text	   *node_t;
	char	   *node;
	HpQueue    *q;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "_audit_ship must return a composite type");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a shipped audit record needs the name of the standby that read")));
	node_t = PG_GETARG_TEXT_PP(0);
	node = text_to_cstring(node_t);
	if (!hp_node_name_ok(node, strlen(node)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid node name \"%s\"", node),
				 errdetail("A node name is 1 to %d letters, digits, \"_\", \".\", \":\" or \"-\".",
						   HP_NODE_MAX)));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_HP_AUDIT_STANDBY),
				 errmsg("this server is a standby: it cannot write audit records for another"),
				 errhint("Point health_pass.primary_conninfo of the standby \"%s\" at the primary.",
						 node)));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("shipped audit records need the standby's start time and the first record's number")));
	q = hp_queue_for_database(MyDatabaseId, true);
	if (!PG_ARGISNULL(3))
	{
		HpBlock		b;
		const char *why = NULL;
		TimestampTz boot = PG_GETARG_TIMESTAMPTZ(1);
		int64		first_seq = PG_GETARG_INT64(2);
		int			slot;

		if (!hp_block_unpack(PG_GETARG_BYTEA_PP(3), &b, &why))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("shipped audit records do not decode: %s", why ? why : "unknown")));
		/* a standby records reads only: no anchor, failover or issuance */
		for (int i = 0; i < b.n; i++)
			if (b.entries[i].outcome > HP_SUPERUSER)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a shipped audit record must be of a read, not of outcome %d",
								(int) b.entries[i].outcome)));
		if (first_seq < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a shipped record's number cannot be negative")));
		/* records of this standby queued here already: a batch shipped again */
		slot = hp_shipped_slot(q, node, boot);
		PG_TRY();
		{
			hp_ship_enqueue(q, slot, node, &b, first_seq);
		}
		PG_CATCH();
		{
			hp_shipped_release(q, slot);
			PG_RE_THROW();
		}
		PG_END_TRY();
		hp_shipped_release(q, slot);
	}
	{
		Oid			relid = hp_extension_relation_oid("audit_block");
		Oid			head_relid;
		int64		last_id;
		uint8		last_hash[32];

		LWLockAcquire(q->lock, LW_SHARED);
		head_relid = q->head_relid;
		last_id = q->last_id;
		memcpy(last_hash, q->last_hash, 32);
		LWLockRelease(q->lock);
		if (OidIsValid(relid) && head_relid == relid)
		{
			outnull[0] = outnull[1] = false;
			out[0] = Int64GetDatum(last_id);
			out[1] = PointerGetDatum(hp_bytea(last_hash, 32));
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(rdesc), out, outnull)));
}
