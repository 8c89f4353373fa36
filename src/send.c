/*
 * send.c
 *    health_pass.audit_sync: a DestReceiver placed in front of the real one
 *    for the top-level query.  A row goes through at once when every record
 *    this backend queued is already durable; otherwise rows are held in a
 *    tuplestore and released, up to HP_HOLD at a time, only after the writer
 *    has committed and flushed the records queued so far.  So no row reaches
 *    the client before its audit record is on disk, at one flush per batch
 *    of rows.
 */
#include "postgres.h"

#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "hp_access.h"

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

/* rShutdown: release what is held, then shut the real receiver down */
static void
hp_send_shutdown(DestReceiver *self)
{
	HpSendDest *d = (HpSendDest *) self;

	hp_send_release(d);
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
