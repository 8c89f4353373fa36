/*
 * send.c
 *    health_pass.audit_sync: nothing of a protected row reaches the client
 *    before its audit record is durable (docs/design/audit_sync.md).
 *
 *    Rows: a DestReceiver placed in front of the real one for the top-level
 *    query.  A row goes through at once when every record this backend
 *    queued is already durable; otherwise rows are held in a tuplestore and
 *    released, up to HP_HOLD at a time, only after the writer has committed
 *    and flushed the records queued so far, at one flush per batch of rows.
 *
 *    Every other message: the backend's protocol output (PqCommMethods) is
 *    wrapped.  A NoticeResponse, ErrorResponse, ParameterStatus or
 *    NotificationResponse leaves only once the records queued under
 *    audit_sync are durable (bounded by audit_timeout); if they cannot be
 *    made durable in time the message is withheld (an error is replaced by
 *    one that carries no text of the original).  ReadyForQuery is held the
 *    same way, so control returns to the client only with the statement's
 *    records on disk; the end of each top-level statement (receiver
 *    shutdown, utility statement, commit) waits first, so a failure there is
 *    an ordinary YHA01 error and the transaction rolls back.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
/*
 * libpq/libpq.h declares PqCommMethods; through libpq-be.h it wants the
 * GSSAPI headers, which a build machine may lack.  Nothing here touches
 * Port, the only structure they shape.
 */
#undef ENABLE_GSS
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "access/hp_access.h"

#define HP_HOLD 1000

typedef struct HpSendDest
{
	DestReceiver pub;
	DestReceiver *inner;
	Tuplestorestate *held;
	TupleTableSlot *slot;
	int			nheld;
	uint64		upto;			/* records to wait for before releasing */
} HpSendDest;

/* Wait for the records, then pass every held row on */
static bool
hp_send_release(HpSendDest *d)
{
	bool		ok = true;

	if (d->nheld == 0)
		return true;
	hp_wait_durable(d->upto);
	while (ok && tuplestore_gettupleslot(d->held, true, false, d->slot))
		ok = d->inner->receiveSlot(d->slot, d->inner);
	tuplestore_clear(d->held);
	d->nheld = 0;
	return ok;
}

/* receiveSlot: pass through or hold */
static bool
hp_send_receive(TupleTableSlot *slot, DestReceiver *self)
{
	HpSendDest *d = (HpSendDest *) self;

	if (d->nheld == 0 && !hp_records_pending())
		return d->inner->receiveSlot(slot, d->inner);
	tuplestore_puttupleslot(d->held, slot);
	d->nheld++;
	d->upto = hp_last_enqueued;
	if (d->nheld >= HP_HOLD)
		return hp_send_release(d);
	return true;
}

/* rStartup: start the real receiver and make room to hold rows */
static void
hp_send_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	HpSendDest *d = (HpSendDest *) self;

	d->inner->rStartup(d->inner, operation, typeinfo);
	d->held = tuplestore_begin_heap(false, false, work_mem);
	d->slot = MakeSingleTupleTableSlot(typeinfo, &TTSOpsMinimalTuple);
	d->nheld = 0;
}

/* Utility statements running (DO, CALL, FETCH, ...): 0 at the top level */
static int	utility_depth = 0;

/*
 * rShutdown: release what is held, then shut the real receiver down.  At
 * the top level, also wait for records of rows that never became result
 * rows (a function over them that changed a setting, a later filter).
 */
static void
hp_send_shutdown(DestReceiver *self)
{
	HpSendDest *d = (HpSendDest *) self;

	hp_send_release(d);
	if (utility_depth == 0)
		hp_send_sync();
	tuplestore_end(d->held);
	ExecDropSingleTupleTableSlot(d->slot);
	d->held = NULL;
	d->slot = NULL;
	d->inner->rShutdown(d->inner);
}

/* rDestroy: the real receiver belongs to the caller */
static void
hp_send_destroy(DestReceiver *self)
{
	pfree(self);
}

/* Put the holding receiver in front of qd->dest; *saved gets the original */
void
hp_send_wrap(QueryDesc *qd, DestReceiver **saved)
{
	HpSendDest *d = palloc0(sizeof(HpSendDest));

	d->pub.receiveSlot = hp_send_receive;
	d->pub.rStartup = hp_send_startup;
	d->pub.rShutdown = hp_send_shutdown;
	d->pub.rDestroy = hp_send_destroy;
	d->pub.mydest = qd->dest->mydest;
	d->inner = qd->dest;
	*saved = qd->dest;
	qd->dest = (DestReceiver *) d;
}

/* Take the holding receiver away again */
void
hp_send_unwrap(QueryDesc *qd, DestReceiver *saved)
{
	DestReceiver *d = qd->dest;

	qd->dest = saved;
	if (d != saved)
		pfree(d);
}

/*
 * End of a top-level statement under audit_sync: wait until the records
 * queued under it are durable, or fail with YHA01 (the transaction then
 * rolls back, and with it what the statement changed).
 */
void
hp_send_sync(void)
{
	if (hp_sync_pending())
		hp_wait_durable(hp_sync_enqueued);
}

/*
 * Around every utility statement (plan.c's ProcessUtility hook, which also
 * ends a client's statement synced): count the nesting
 */
bool
hp_send_in_utility(void)
{
	return utility_depth > 0;
}

void
hp_send_utility_enter(void)
{
	utility_depth++;
}

void
hp_send_utility_leave(void)
{
	utility_depth--;
}

/*
 * Before commit (and PREPARE): what the transaction wrote becomes visible
 * to other sessions, and a NOTIFY it sent is delivered.  Also a COMMIT in
 * a procedure.
 */
static void
hp_send_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		hp_send_sync();
}

/*
 * The backend's protocol output.  Messages that can carry text made from a
 * row go through hp_gate_message while records queued under audit_sync
 * may not be durable yet; rows ('D', 'd') are the DestReceiver's above.
 */
static const PQcommMethods *prev_comm = NULL;
static PQcommMethods hp_comm;
static bool in_gate = false;	/* our own messages (LOG, FATAL) go straight */
static uint64 withheld = 0;		/* messages not sent (logged, except in a critical section) */

/* The value of field code in an ErrorResponse/NoticeResponse, or NULL */
static const char *
hp_message_field(const char *s, size_t len, char code)
{
	size_t		i = 0;

	while (i < len && s[i] != '\0')
	{
		char		c = s[i++];
		const char *v = s + i;
		size_t		n = strnlen(v, len - i);

		if (n == len - i)
			return NULL;		/* unterminated: not a message we know */
		if (c == code)
			return v;
		i += n + 1;
	}
	return NULL;
}

/* Append field code with value to buf (of size HP_ERRBUF) at *at */
#define HP_ERRBUF 768
static void
hp_put_field(char *buf, size_t *at, char code, const char *value)
{
	size_t		n = strlen(value);

	if (*at + n + 3 > HP_ERRBUF)
		n = HP_ERRBUF - *at - 3;
	buf[(*at)++] = code;
	memcpy(buf + *at, value, n);
	*at += n;
	buf[(*at)++] = '\0';
}

/*
 * Send an ErrorResponse in place of one that may carry a value: severity
 * and the original SQLSTATE kept, every text field dropped.  Built in a
 * static buffer: no allocation in the middle of error reporting.
 */
static int
hp_send_redacted_error(const char *s, size_t len)
{
	char		buf[HP_ERRBUF];
	char		detail[256];
	size_t		at = 0;
	const char *sev = hp_message_field(s, len, 'S');
	const char *sev_v = hp_message_field(s, len, 'V');
	const char *code = hp_message_field(s, len, 'C');

	snprintf(detail, sizeof(detail),
			 "Its SQLSTATE was %.5s. The audit records of rows read under health_pass.audit_sync were not durable in time (health_pass.audit_timeout is %d ms).",
			 code ? code : "?????", hp_audit_timeout_ms);
	hp_put_field(buf, &at, 'S', sev ? sev : "ERROR");
	hp_put_field(buf, &at, 'V', sev_v ? sev_v : "ERROR");
	hp_put_field(buf, &at, 'C', "YHA01");
	hp_put_field(buf, &at, 'M', "health_pass withheld this error message: the audit log is not being written");
	hp_put_field(buf, &at, 'D', detail);
	buf[at++] = '\0';
	return prev_comm->putmessage('E', buf, at);
}

/*
 * NoticeResponses (NOTICE, WARNING, INFO, DEBUG, LOG to the client) raised
 * while records wait are held here, like rows, and released after one wait
 * for a batch: a function that raises a NOTICE per row costs one flush per
 * HP_HOLD_MSGS notices, not one per notice.  They are released before any
 * other message goes out, so their order with the rest is kept.
 */
#define HP_HOLD_MSGS 1000
#define HP_HOLD_BYTES (1024 * 1024)
#define HP_HOLD_MS 200
static StringInfoData held;		/* [type][uint32 len][bytes] ... */
static int	nheld_msgs = 0;
static uint64 held_upto = 0;	/* records to wait for before releasing */
static TimestampTz held_since = 0;

/* Log, to the server only, that messages were not sent */
static void
hp_log_withheld(int n, char msgtype)
{
	if (CritSectionCount == 0)
		ereport(LOG_SERVER_ONLY,
				(errmsg("health_pass withheld %d message(s) from the client (protocol message '%c'): the audit records of rows this session read under audit_sync are not durable",
						n, msgtype),
				 errhidestmt(true)));
}

/*
 * Send the held notices once the records they may show are durable (only
 * if already durable when may_wait is false); otherwise drop them.
 */
static bool
hp_release_held(bool may_wait)
{
	bool		ok = may_wait ? hp_wait_durable_nothrow(held_upto) :
		held_upto <= hp_sync_enqueued && !hp_sync_pending();
	int			n = nheld_msgs;
	size_t		at = 0;

	nheld_msgs = 0;
	while (ok && at < held.len)
	{
		char		msgtype = held.data[at];
		uint32		len;

		memcpy(&len, held.data + at + 1, sizeof(len));
		prev_comm->putmessage(msgtype, held.data + at + 1 + sizeof(len), len);
		at += 1 + sizeof(len) + len;
	}
	if (!ok)
	{
		withheld += n;
		hp_log_withheld(n, 'N');
	}
	resetStringInfo(&held);
	if (held.maxlen > 4 * HP_HOLD_BYTES)
	{
		pfree(held.data);
		held.data = NULL;
	}
	return ok;
}

/* Hold one NoticeResponse; release the batch when it is big or old */
static void
hp_hold_notice(char msgtype, const char *s, size_t len)
{
	uint32		len32 = (uint32) len;
	TimestampTz now = GetCurrentTimestamp();

	if (held.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&held);
		MemoryContextSwitchTo(old);
	}
	appendStringInfoChar(&held, msgtype);
	appendBinaryStringInfo(&held, (const char *) &len32, sizeof(len32));
	appendBinaryStringInfo(&held, s, len);
	if (nheld_msgs++ == 0)
		held_since = now;
	held_upto = hp_sync_enqueued;
	if (nheld_msgs >= HP_HOLD_MSGS || held.len >= HP_HOLD_BYTES ||
		TimestampDifferenceExceeds(held_since, now, HP_HOLD_MS))
		hp_release_held(true);
}

/* Decide what happens to one message while audit_sync records may wait */
static int
hp_gate_message(char msgtype, const char *s, size_t len)
{
	bool		ok;
	bool		fatal = false;
	bool		may_wait;
	const char *code = NULL;

	if (msgtype == 'E')
	{
		const char *sev = hp_message_field(s, len, 'V');

		code = hp_message_field(s, len, 'C');
		fatal = sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
	}
	if (msgtype == 'N')
	{
		if (hp_sync_pending())
		{
			if (CritSectionCount > 0)
				withheld++;		/* no memory to hold it in, no wait */
			else
				hp_hold_notice(msgtype, s, len);
			return 0;
		}
		if (nheld_msgs > 0)
			hp_release_held(false);
		return prev_comm->putmessage(msgtype, s, len);
	}
	/*
	 * Whatever comes next goes after the notices held before it.  Our own
	 * YHA01 error has waited already, and a dying backend does not wait.
	 */
	may_wait = !fatal;
	if (nheld_msgs > 0 &&
		!hp_release_held(may_wait && !(code && strcmp(code, "YHA01") == 0)))
		may_wait = false;		/* it just failed: do not wait twice */

	switch (msgtype)
	{
		case 'E':
			{
				int			rc;

				/* our own YHA01 names no value; nor do we wait while exiting */
				if ((code && strcmp(code, "YHA01") == 0) || !hp_sync_pending() ||
					(may_wait && hp_wait_durable_nothrow(hp_sync_enqueued)))
					rc = prev_comm->putmessage(msgtype, s, len);
				else
				{
					withheld++;
					rc = hp_send_redacted_error(s, len);
				}

				/*
				 * The statement failed and its transaction rolls back: what
				 * it read reached the client only through this message,
				 * which waited or was withheld.  Later statements need not
				 * wait for its records (reading again waits for them all:
				 * the queue is written in order).
				 */
				hp_sync_enqueued = 0;
				return rc;
			}
		case 'Z':
			ok = !hp_sync_pending() ||
				(may_wait && hp_wait_durable_nothrow(hp_sync_enqueued));
			if (!ok)
				ereport(FATAL,
						(errcode(ERRCODE_HP_AUDIT_UNAVAILABLE),
						 errmsg("health_pass audit log is not being written: closing the session"),
						 errdetail("Rows of a protected table were read under health_pass.audit_sync and their audit records were not committed within %d ms (health_pass.audit_timeout).",
								   hp_audit_timeout_ms)));
			return prev_comm->putmessage(msgtype, s, len);
		case 'S':				/* ParameterStatus */
		case 'A':				/* NotificationResponse */
			if (!hp_sync_pending() ||
				(may_wait && hp_wait_durable_nothrow(hp_sync_enqueued)))
				return prev_comm->putmessage(msgtype, s, len);
			withheld++;
			hp_log_withheld(1, msgtype);
			return 0;
		default:				/* rows, CommandComplete, ...: carried above */
			return prev_comm->putmessage(msgtype, s, len);
	}
}

/* PQcommMethods.putmessage */
static int
hp_putmessage(char msgtype, const char *s, size_t len)
{
	int			rc;

	if (in_gate ||
		(nheld_msgs == 0 &&
		 (hp_sync_enqueued == 0 ||
		  (msgtype != 'N' && msgtype != 'E' && msgtype != 'S' &&
		   msgtype != 'A' && msgtype != 'Z'))))
		return prev_comm->putmessage(msgtype, s, len);
	in_gate = true;
	PG_TRY();
	{
		rc = hp_gate_message(msgtype, s, len);
	}
	PG_FINALLY();
	{
		in_gate = false;
	}
	PG_END_TRY();
	return rc;
}

/* Install the hooks; called from _PG_init when preloaded */
void
hp_send_init(void)
{
	prev_comm = PqCommMethods;
	hp_comm = *prev_comm;
	hp_comm.putmessage = hp_putmessage;
	PqCommMethods = &hp_comm;
	RegisterXactCallback(hp_send_xact, NULL);
}
