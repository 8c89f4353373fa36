/*
 * hp_audit.h
 *    The audit log: records as they wait in shared memory (one queue per
 *    database, queue.c), the background writer that appends them to
 *    health_pass.audit_block (writer.c), their packed form (hp_block.h) and
 *    hash chain (chain.c), counted denials (denials.c), and the SQL
 *    functions that read and verify the log (records.c, functions.c).
 *    Depends on common only: the access subsystem above decides what is
 *    recorded; this one makes sure it is, or the read fails.
 *
 *    Shared memory is reserved and attached by its owner, access/shmem.c
 *    (every lock and the order they are taken in: access/hp_shmem.h); this
 *    subsystem says how much it needs (hp_queue_shmem_size,
 *    hp_denials_shmem_size) and lays its part out (hp_*_shmem_init).
 */
#ifndef HP_AUDIT_H
#define HP_AUDIT_H

#include "postgres.h"

#include "access/attnum.h"
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lockdefs.h"
#include "utils/snapshot.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

#include "audit/hp_block.h"
#include "common/hp_common.h"

/* Sizes of the text fields an audit record carries (bytes, with the NUL) */
#define HP_SUBJECT_LEN   128	/* longer subject texts are recorded by digest */
#define HP_SUBJECT_DIGEST_LEN 71	/* "sha256:" and 64 hex digits */
#define HP_SUBJECT_KEY_LEN 16	/* bytes of SHA-256 quotas count a subject by */
#define HP_PURPOSE_LEN   64		/* health_pass.purpose is at most 63 bytes */
#define HP_REASON_LEN    256	/* break-glass and denial reasons, truncated */
#define HP_ADDR_LEN      48		/* numeric IPv6 address */
#define HP_APPNAME_LEN   NAMEDATALEN

/* What audit_status() shows of a stalled writer (docs/design/writer.md) */
#define HP_WAIT_ERROR_LEN 160	/* the error a failed batch ended with */

/* Standbys a primary's queue remembers the last shipped record of */
#define HP_SHIPPERS 8

/* A read could not be audited in time: the writer is missing, stalled or blocked */
#define ERRCODE_HP_AUDIT_UNAVAILABLE  MAKE_SQLSTATE('Y','H','A','0','1')

/* One audit record as it waits in shared memory for the writer */
typedef struct HpRecord
{
	TimestampTz logged_at;
	int64		statement_id;
	Oid			relid;
	int32		backend_pid;
	uint8		outcome;		/* HpOutcome */
	bool		subject_null;
	bool		client_addr_null;
	NameData	session_user_name;
	NameData	current_user_name;
	char		client_addr[HP_ADDR_LEN];
	char		application_name[HP_APPNAME_LEN];
	char		subject[HP_SUBJECT_LEN];
	char		purpose[HP_PURPOSE_LEN];	/* "" means no purpose */
	char		reason[HP_REASON_LEN];		/* "" means no reason */
	char		node[HP_NODE_MAX + 1];	/* "" this server; else the standby
										 * that read (shipped, ship.c) */
} HpRecord;

/*
 * One database's queue: a ring of records between the backends (producers)
 * and that database's writer (consumer).  Sequence numbers only grow (also
 * across a dropped database's slot being reused); record seq lives in slot
 * seq % hp_queue_size.  A backend reserves seq under the lock, copies its
 * record into the slot after releasing it, and then publishes it by setting
 * ready[slot] to seq + 1 (after a write barrier); the writer takes only the
 * run of published records from "written" on.  Records in [written, head) are
 * queued and not yet committed to audit_log; records in [durable, written)
 * are committed but their commit may not be flushed to disk yet (the writer
 * commits asynchronously and flushes when a backend waits for durability).
 */
typedef struct HpQueue
{
	LWLock	   *lock;			/* guards this struct and its ring */
	Oid			dbid;			/* InvalidOid: slot free */
	int			writer_pid;		/* 0: no writer running */
	Latch	   *writer_latch;
	bool		writer_wanted;	/* a backend asked for a writer (none runs) */
	TimestampTz hold_until;		/* no writer starts before (hp_writer_stop) */
	bool		forgotten;		/* dropped while a worker held it: freed as it exits */
	Latch	   *standby_latch;	/* the slot's worker, waiting for a database */
	TimestampTz claimed_at;		/* when that worker last took the database up */
	uint64		head;			/* next sequence number to hand out */
	uint64		written;		/* every record below this is committed */
	uint64		durable;		/* ... and below this flushed to disk */
	uint64		sync_wanted;	/* a backend waits for durable to reach this */
	XLogRecPtr	written_lsn;	/* end of the commit record of "written" */
	uint64		committed_batches;	/* writer transactions so far */
	bool		writer_dozing;	/* idle writer in a long sleep: wake it */
	Oid			head_relid;		/* the audit_log last_id and last_hash are of */
	int64		last_id;		/* audit_log.id of the last record written */
	uint8		last_hash[32];	/* and its hash */
	ConditionVariable progress; /* broadcast when written or durable moves */
	uint64		base;			/* head when this database got the slot */
	HpRecord   *ring;			/* hp_queue_size records */
	pg_atomic_uint64 *ready;	/* per slot: seq + 1 once record seq is in it */
	TimestampTz *reserved_at;	/* per slot: when it was reserved (under lock) */

	/*
	 * Why the writer is not writing (docs/design/writer.md), cleared when a
	 * batch commits.  wait_since: when the writer began to wait for a lock
	 * on the audit log, or began the first transaction that failed (0: not
	 * waiting).  wait_is_lock: waiting for wait_mode on wait_tag (the
	 * writer sets it before it waits); else wait_error is the message its
	 * last transaction failed with.
	 */
	TimestampTz wait_since;
	bool		wait_is_lock;
	LOCKTAG		wait_tag;
	LOCKMODE	wait_mode;
	char		wait_error[HP_WAIT_ERROR_LEN];

	/*
	 * On a standby (ship.c): the slot's worker ships the queue to the
	 * primary instead of writing it.  ship_state says whether backends may
	 * queue records (HP_SHIP_UP), must fail at once (HP_SHIP_DOWN, with
	 * ship_error) or wait for the worker to find out (HP_SHIP_UNKNOWN).
	 * primary_last_id and primary_last_hash: the primary's chain head as
	 * its last answer gave it (primary_known), what a promotion reports
	 * as lost when this server's log has not reached it.
	 */
	uint8		ship_state;
	TimestampTz ship_since;
	char		ship_error[HP_WAIT_ERROR_LEN];
	bool		primary_known;
	int64		primary_last_id;
	uint8		primary_last_hash[32];

	/*
	 * On a primary: per standby (node, boot time) that shipped, the number
	 * of its next record not yet queued here, so a batch shipped again
	 * after a lost answer is not written twice (ship.c).  The least
	 * recently used entry makes room for a new standby.
	 */
	struct
	{
		char		node[HP_NODE_MAX + 1];
		TimestampTz boot;
		uint64		next_seq;
		uint64		queued_upto;	/* this queue's seq + 1 of the last
									 * record queued for it */
		int			busy_pid;	/* a backend in _audit_ship() for it */
		TimestampTz used_at;
	}			shipped[HP_SHIPPERS];
} HpQueue;

/* HpQueue.ship_state */
#define HP_SHIP_UNKNOWN 0
#define HP_SHIP_UP 1
#define HP_SHIP_DOWN 2

/* A standby cannot have its reads audited now: shipping is off or the primary unreachable */
#define ERRCODE_HP_AUDIT_STANDBY  MAKE_SQLSTATE('Y','H','A','0','2')

/* The queues in shared memory: one per database that audits (health_pass.max_databases) */
typedef struct HpQueueSet
{
	LWLock	   *slots_lock;		/* guards claiming a queue slot */
	pg_atomic_uint64 next_statement_id;
	TimestampTz made_at;		/* when this memory was laid out: a standby
								 * names its queues' numbering by it (ship.c) */
	HpQueue		queues[FLEXIBLE_ARRAY_MEMBER];
} HpQueueSet;

/* settings.c */
extern bool hp_audit_sync;
extern int	hp_audit_timeout_ms;
extern int	hp_queue_size;
extern int	hp_max_databases;
extern int	hp_denial_interval_s;
extern int	hp_denial_slots;
extern char *hp_primary_conninfo;
extern char *hp_node_name;
extern void hp_audit_init(void);

/* ship.c: a standby's records written into the primary's chain */
extern void hp_standby_admit(HpQueue *q);
extern bool hp_ship_main(HpQueue *q, Oid dbid);
extern const char *hp_node_name_now(void);
extern bool hp_ship_quota_admit(Oid grantee, Oid relid, const char *purpose,
								const uint8 *subject_key, int *count);

/* queue.c */
extern HpQueueSet *hp_queues;
extern int	hp_queue_lock_count(void);
extern Size hp_queue_shmem_size(void);
extern void hp_queue_shmem_init(LWLockPadded *locks);
extern int	hp_queue_slot(const HpQueue *q);
extern HpQueue *hp_queue_for_database(Oid dbid, bool create);
extern void hp_record_session(HpRecord *rec);
extern void hp_copy_field(char *dst, size_t size, const char *src);
extern uint64 hp_enqueue(const HpRecord *rec);
extern bool hp_enqueue_ext(const HpRecord *rec, TimestampTz now, bool wait, uint64 *seqp);
extern void hp_queue_prefetch_next(void);
extern void hp_wait_durable(uint64 upto);
extern bool hp_wait_durable_nothrow(uint64 upto);
extern bool hp_records_pending(void);
extern bool hp_slot_ready(HpQueue *q, uint64 seq);
extern bool hp_sync_pending(void);
extern uint64 hp_last_enqueued;
extern uint64 hp_sync_enqueued;
extern int64 hp_next_statement_id(void);
extern void hp_writer_stop(Oid dbid);
extern void hp_queue_forget(Oid dbid);
extern void hp_queue_free_locked(HpQueue *q);

/* denials.c */
extern Size hp_denials_shmem_size(void);
extern void hp_denials_shmem_init(LWLock *lock);
extern void hp_denial_audit(const HpRecord *rec);
extern void hp_denials_flush(Oid dbid, bool all);
extern void hp_denials_forget(Oid dbid);

/* writer.c */
#define HP_WRITER_HOLD_MS 1000	/* after hp_writer_stop, no writer for this long */
extern void hp_writer_register(void);
extern void hp_writer_request(HpQueue *q);

/* event.c: an issued or revoked pass; hp_audit_event returns once durable */
extern void hp_audit_event_template(HpRecord *tmpl, Oid actor);
extern uint64 hp_audit_event_queue(const HpRecord *tmpl, HpOutcome outcome, Oid relid,
								   const char *subject, const char *purpose,
								   const char *reason);
extern void hp_audit_event(HpOutcome outcome, Oid relid, const char *subject,
						   const char *purpose, const char *reason, Oid actor);

/* chain.c */
extern void hp_record_hash(const uint8 *prev, const HpEntry *e, uint8 *out);

/* records.c */
extern bool hp_node_name_ok(const char *s, size_t len);
extern void hp_entry_of_record(const HpRecord *r, HpEntry *e);
extern void hp_block_summary(const HpEntry *e, int n, Datum *values, bool *nulls);
extern void hp_block_form(const uint8 *prev, const HpEntry *e, int n,
						  Datum *values, bool *nulls);
extern bool hp_block_unpack(bytea *records, HpBlock *b, const char **why);
extern void hp_audit_refuse_unless_superuser(const char *what);
extern void hp_audit_who_read(FunctionCallInfo fcinfo, Oid tbl, const char *subject);

/* keyindex.c: the subject index (docs/design/audit_index.md) */
typedef enum HpKeyUrgency
{
	HP_KEY_IDLE,				/* the queue is empty: any index work */
	HP_KEY_SHORT,				/* after a short batch */
	HP_KEY_BUSY					/* after a full batch: only what must not wait */
} HpKeyUrgency;
extern bool hp_keyidx_writer_step(int64 written, HpKeyUrgency urgency);
extern void hp_keyidx_clamp(int64 head);
extern int	hp_keyidx_lookup(Snapshot snap, const int64 *keys, int nkeys, int64 **blocks,
							 int64 *mark);

/* An anchor of the chain: a row of health_pass.audit_anchor (records.c) */
typedef struct HpAnchor
{
	int64		id;				/* first: sorted as an int64 */
	uint8		hash[32];
	bool		archived;		/* kind 'archived' (else 'verified') */
	bool		recorded;		/* a record of its kind names it (audit_verify) */
} HpAnchor;
extern int	hp_anchors_read(HpAnchor **out, Snapshot snap);

/* A scan of audit_block newest block first (records.c) */
typedef struct HpBlockScan
{
	struct RelationData *idx;
	struct SnapshotData *snap;
	struct TupleTableSlot *slot;	/* the current block's row */
	struct IndexScanDescData *scan;
} HpBlockScan;
extern void hp_block_scan_begin(HpBlockScan *bs, struct RelationData *rel, LOCKMODE lockmode,
								struct SnapshotData *snap);
extern bool hp_block_scan_next(HpBlockScan *bs);
extern void hp_block_scan_end(HpBlockScan *bs);
extern size_t hp_db_text_valid(void *arg, const char *s, size_t len);
extern char *hp_fields_text(uint32 bad);

#endif
