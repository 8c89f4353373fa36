/*
 * denials.c
 *    Denied reads are recorded once per (role, table, reason) and interval,
 *    with a count, so that a loop of denied statements cannot flood the
 *    audit log (issue 12, item 7; docs/design/denials.md).
 *
 *    Every denied record goes through hp_denial_audit(): the gate's
 *    decisions (no purpose, no rule; also for COPY TO and the existing row
 *    of INSERT ... ON CONFLICT DO UPDATE, which are decided there) and
 *    refused DDL (ddl.c).  A fixed-size shared hash table, sized at server
 *    start by health_pass.denial_slots, is keyed by (database, table,
 *    outcome, session user, current user, reason): the exact key.  The first denial of a
 *    key is queued at once, as before, and opens an interval of
 *    health_pass.denial_interval; later denials of the key within it are
 *    only counted (the last one's session fields kept).  When the interval
 *    is over, one summary record carries the count: queued by the next
 *    denial of the key, or by the database's audit writer
 *    (hp_denials_flush(), called from its main loop).
 *
 *    Overflow.  A denial is never recorded one by one again for want of a
 *    slot.  One session user holds at most denial_slots / 8 exact keys and
 *    one database at most denial_slots / 2 (all of them when
 *    max_databases is 1).  A denial whose exact key has no entry and no
 *    room is counted into its (database, outcome, session user) overflow
 *    entry, which needs a free slot but no share; when there is none, into
 *    its (database, outcome) overflow entry.  The table has
 *    max_databases x (outcomes) slots beyond denial_slots that only those
 *    last entries use, and there are at most that many of them (a database
 *    needs a queue to record anything), so they always find a slot.
 *    Overflow entries work as the exact ones: the first denial of an
 *    interval is recorded at once (its own reason, table and roles), the
 *    summary says how many more there were and that they were of several
 *    tables, roles and reasons.
 *
 *    Locking.  One LWLock (denials_lock in access/hp_shmem.h) guards the hash
 *    table, every entry in it, the tally table (exact entries per session
 *    user and per database) and the count of slots used.  It is taken exclusively, only around
 *    hash lookups and plain copies: nothing done under it can raise an
 *    error (HASH_ENTER_NULL, not HASH_ENTER, on the fixed-size table) or
 *    wait, and no other lock is taken while it is held.  Queueing
 *    (hp_enqueue, which may wait and fail with YHA01) always happens after
 *    it is released.  An entry whose summary is being queued is marked
 *    busy under the lock; no other process changes or removes a busy
 *    entry (a denial of its key meanwhile is recorded), and the process
 *    that marked it clears it or removes it under the lock again.  The
 *    entries counter is atomic so that the writer's check for an empty
 *    table takes no lock.
 *
 *    Loss.  A summary is queued without waiting (hp_enqueue_ext, wait
 *    false), so nothing between taking a count and queueing it can raise
 *    an error or serve an interrupt; when the queue has no room the count
 *    stays in its entry for the next attempt.  Counts live in shared
 *    memory.  A writer asked to stop queues and writes every count of its
 *    database first (hp_denials_flush(dbid, true)); a crash or an
 *    immediate shutdown loses those not yet summarized, as it loses
 *    records still in the queue; the first denial of each interval was
 *    queued at once.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"

/* How precisely an entry counts its denials */
typedef enum HpDenialLevel
{
	HP_DENIAL_EXACT,			/* (database, table, outcome, users, reason) */
	HP_DENIAL_USER,				/* (database, outcome, session user) */
	HP_DENIAL_DATABASE			/* (database, outcome): in the reserve */
} HpDenialLevel;

/* The reasons of the overflow keys, and so of their summaries */
#define HP_DENIAL_USER_REASON \
	"denials of several tables, roles and reasons by this session user beyond its share of health_pass.denial_slots"
#define HP_DENIAL_DATABASE_REASON \
	"denials of several tables, users and reasons in this database while health_pass.denial_slots was full"

/* What makes two denials the same */
typedef struct HpDenialKey
{
	Oid			dbid;
	Oid			relid;
	int32		outcome;
	NameData	session_user_name;
	NameData	current_user_name;
	char		reason[HP_REASON_LEN];	/* zero-padded */
} HpDenialKey;

/* One key's interval */
typedef struct HpDenial
{
	HpDenialKey key;
	int32		level;			/* HpDenialLevel */
	TimestampTz due;			/* the interval ends */
	bool		busy;			/* its summary is being queued: hands off */
	bool		has_first_seq;
	uint64		first_seq;		/* queue position of the recorded denial */
	char		purpose[HP_PURPOSE_LEN];	/* ... and its purpose */
	int64		count;			/* denials counted since, not recorded */
	TimestampTz first_at;		/* logged_at of the first of them */
	bool		purpose_varied; /* one of them had another purpose */
	HpRecord	last;			/* the last of them */
} HpDenial;

/* Exact entries held by a session user (dbid 0) or a database (user "") */
typedef struct HpDenialTallyKey
{
	Oid			dbid;
	NameData	user;
} HpDenialTallyKey;

typedef struct HpDenialTally
{
	HpDenialTallyKey key;
	int32		n;
} HpDenialTally;

typedef struct HpDenials
{
	LWLock	   *lock;
	pg_atomic_uint32 entries;	/* entries in the table */
	int32		used;			/* exact and session-user entries (<= slots) */
} HpDenials;

/* The writer looks for ended intervals at most this often */
#define HP_DENIAL_SCAN_MS 100
/* ... and queues at most this many summaries per look */
#define HP_DENIAL_FLUSH_BATCH 32

static HpDenials *denials = NULL;
static HTAB *denial_table = NULL;
static HTAB *tally_table = NULL;

/* Slots beyond denial_slots for the (database, outcome) overflow entries */
static long
hp_denial_reserve(void)
{
	return (long) hp_max_databases * (HP_OUTCOME_LAST + 1);
}

/* Exact entries one session user may hold */
static int32
hp_denial_user_cap(void)
{
	return Max(1, hp_denial_slots / 8);
}

/* Exact entries one database may hold */
static int32
hp_denial_db_cap(void)
{
	return hp_max_databases > 1 ? Max(1, hp_denial_slots / 2) : hp_denial_slots;
}

/* Tallies: one per session user and per database holding exact entries */
static long
hp_denial_tallies(void)
{
	return (long) hp_denial_slots + hp_max_databases;
}

/* Bytes of shared memory for the tables */
Size
hp_denials_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(HpDenials));

	size = add_size(size, hash_estimate_size(hp_denial_slots + hp_denial_reserve(),
											 sizeof(HpDenial)));
	return add_size(size, hash_estimate_size(hp_denial_tallies(), sizeof(HpDenialTally)));
}

/* Create or attach to the table; caller (access/shmem.c) holds AddinShmemInitLock */
void
hp_denials_shmem_init(LWLock *lock)
{
	HASHCTL		ctl;
	bool		found;

	denials = ShmemInitStruct("health_pass denials", sizeof(HpDenials), &found);
	if (!found)
	{
		denials->lock = lock;
		pg_atomic_init_u32(&denials->entries, 0);
		denials->used = 0;
	}
	ctl.keysize = sizeof(HpDenialKey);
	ctl.entrysize = sizeof(HpDenial);
	denial_table = ShmemInitHash("health_pass denial counts",
								 hp_denial_slots + hp_denial_reserve(),
								 hp_denial_slots + hp_denial_reserve(), &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	ctl.keysize = sizeof(HpDenialTallyKey);
	ctl.entrysize = sizeof(HpDenialTally);
	tally_table = ShmemInitHash("health_pass denial tallies", hp_denial_tallies(),
								hp_denial_tallies(), &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

/* The tally of session user user (dbid 0) or database dbid (user NULL) */
static HpDenialTally *
hp_denial_tally(Oid dbid, const char *user, bool create)
{
	HpDenialTallyKey tk;
	HpDenialTally *t;
	bool		found;

	memset(&tk, 0, sizeof(tk));
	tk.dbid = dbid;
	if (user)
		strlcpy(NameStr(tk.user), user, NAMEDATALEN);
	t = hash_search(tally_table, &tk, create ? HASH_ENTER_NULL : HASH_FIND, &found);
	if (t != NULL && create && !found)
		t->n = 0;
	return t;
}

/* Count an exact entry of (dbid, user) in or out; caller holds the lock */
static void
hp_denial_tally_add(Oid dbid, const char *user, int32 delta)
{
	HpDenialTally *t = hp_denial_tally(dbid, user, delta > 0);

	if (t == NULL)
		return;					/* cannot happen: sized for every holder */
	t->n += delta;
	if (t->n <= 0)
	{
		HpDenialTallyKey tk = t->key;

		hash_search(tally_table, &tk, HASH_REMOVE, NULL);
	}
}

/* May a new entry of key at level be made?  Caller holds the lock. */
static bool
hp_denial_room(const HpDenialKey *key, HpDenialLevel level)
{
	HpDenialTally *t;

	if (level == HP_DENIAL_DATABASE)
		return true;			/* in the reserve */
	if (denials->used >= hp_denial_slots)
		return false;
	if (level == HP_DENIAL_USER)
		return true;
	t = hp_denial_tally(InvalidOid, NameStr(key->session_user_name), false);
	if (t != NULL && t->n >= hp_denial_user_cap())
		return false;
	t = hp_denial_tally(key->dbid, NULL, false);
	if (t != NULL && t->n >= hp_denial_db_cap())
		return false;
	return true;
}

/*
 * A new entry of key at level, counted in; NULL when it has no room (or
 * exists already: *found).  Caller holds the lock; raises nothing.
 */
static HpDenial *
hp_denial_enter(const HpDenialKey *key, HpDenialLevel level, bool *found)
{
	HpDenial   *d;

	*found = false;
	if (!hp_denial_room(key, level))
	{
		d = hash_search(denial_table, key, HASH_FIND, NULL);
		*found = (d != NULL);
		return NULL;
	}
	d = hash_search(denial_table, key, HASH_ENTER_NULL, found);
	if (d == NULL || *found)
		return NULL;
	d->level = level;
	pg_atomic_add_fetch_u32(&denials->entries, 1);
	if (level != HP_DENIAL_DATABASE)
		denials->used++;
	if (level == HP_DENIAL_EXACT)
	{
		hp_denial_tally_add(InvalidOid, NameStr(key->session_user_name), 1);
		hp_denial_tally_add(key->dbid, NULL, 1);
	}
	return d;
}

/* Remove entry d and count it out.  Caller holds the lock; raises nothing. */
static void
hp_denial_remove(HpDenial *d)
{
	HpDenialKey key = d->key;
	int32		level = d->level;

	hash_search(denial_table, &key, HASH_REMOVE, NULL);
	pg_atomic_sub_fetch_u32(&denials->entries, 1);
	if (level != HP_DENIAL_DATABASE)
		denials->used--;
	if (level == HP_DENIAL_EXACT)
	{
		hp_denial_tally_add(InvalidOid, NameStr(key.session_user_name), -1);
		hp_denial_tally_add(key.dbid, NULL, -1);
	}
}

/* The key of rec, in database dbid */
static void
hp_denial_key(const HpRecord *rec, Oid dbid, HpDenialKey *key)
{
	memset(key, 0, sizeof(HpDenialKey));
	key->dbid = dbid;
	key->relid = rec->relid;
	key->outcome = rec->outcome;
	strlcpy(NameStr(key->session_user_name), NameStr(rec->session_user_name), NAMEDATALEN);
	strlcpy(NameStr(key->current_user_name), NameStr(rec->current_user_name), NAMEDATALEN);
	strlcpy(key->reason, rec->reason, HP_REASON_LEN);
}

/* The overflow key of rec at level (HP_DENIAL_USER or HP_DENIAL_DATABASE) */
static void
hp_denial_overflow_key(const HpRecord *rec, Oid dbid, HpDenialLevel level, HpDenialKey *key)
{
	memset(key, 0, sizeof(HpDenialKey));
	key->dbid = dbid;
	key->relid = InvalidOid;
	key->outcome = rec->outcome;
	if (level == HP_DENIAL_USER)
	{
		strlcpy(NameStr(key->session_user_name), NameStr(rec->session_user_name), NAMEDATALEN);
		strlcpy(key->reason, HP_DENIAL_USER_REASON, HP_REASON_LEN);
	}
	else
		strlcpy(key->reason, HP_DENIAL_DATABASE_REASON, HP_REASON_LEN);
}

/* t in UTC as "YYYY-MM-DD HH:MM:SS.ffffff+00", whatever the TimeZone */
static void
hp_utc_text(TimestampTz t, char *buf, size_t len)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
	{
		strlcpy(buf, "?", len);
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00",
			 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int) fsec);
}

/*
 * The summary record of an interval (d->count > 0): the last counted
 * denial's fields, with the reason
 *   "<reason>: <count> more denied statements from <t1> to <t2>"
 * and "; purpose varied" appended when a counted denial's purpose differed
 * from the recorded one's.  The suffix is kept whole; the reason before it
 * is cut when they do not fit.
 */
static void
hp_denial_summary(const HpDenial *d, HpRecord *out)
{
	char		t1[40],
				t2[40],
				suffix[160];
	int			room,
				len;

	*out = d->last;
	hp_utc_text(d->first_at, t1, sizeof(t1));
	hp_utc_text(d->last.logged_at, t2, sizeof(t2));
	snprintf(suffix, sizeof(suffix), ": " INT64_FORMAT " more denied statements from %s to %s%s",
			 d->count, t1, t2, d->purpose_varied ? "; purpose varied" : "");
	room = HP_REASON_LEN - 1 - (int) strlen(suffix);
	len = strlen(d->key.reason);
	if (len > room)
		len = pg_mbcliplen(d->key.reason, len, room);
	snprintf(out->reason, HP_REASON_LEN, "%.*s%s", len, d->key.reason, suffix);
}

/*
 * A counted denial under audit_sync: the statement ends only once the
 * record that opened its interval is durable (send.c waits for
 * hp_sync_enqueued, and rows it holds for hp_last_enqueued).
 */
static void
hp_denial_wait_for(uint64 seq)
{
	if (!hp_audit_sync)
		return;
	(void) hp_queue_for_database(MyDatabaseId, true);	/* send.c waits on it */
	hp_last_enqueued = Max(hp_last_enqueued, seq + 1);
	hp_sync_enqueued = Max(hp_sync_enqueued, seq + 1);
}

/*
 * Queue the summary of an interval that is over, without waiting (so with
 * no interrupt or error between taking the count and giving it back).  The
 * caller marked the entry busy and copied it to snap; nobody else touches a
 * busy entry.  Queued: the entry goes.  Not queued (the queue is full or
 * stalled): the entry is left as it was, over and holding its count, for
 * the next denial or the writer to try again.  Returns whether it was
 * queued.
 */
static bool
hp_denial_queue_summary(const HpDenial *snap, TimestampTz now)
{
	HpRecord	summary;
	HpDenial   *d;
	bool		queued;

	hp_denial_summary(snap, &summary);
	/* reserved now: an old logged_at would look like a stalled queue */
	queued = hp_enqueue_ext(&summary, now, false, NULL);

	LWLockAcquire(denials->lock, LW_EXCLUSIVE);
	d = hash_search(denial_table, &snap->key, HASH_FIND, NULL);
	if (d != NULL && queued)
		hp_denial_remove(d);
	else if (d != NULL)
		d->busy = false;
	LWLockRelease(denials->lock);
	return queued;
}

/*
 * A quota refusal names a subject whose row the gate saw: the refusal
 * tells the reader that the subject exists, so each subject is recorded.
 * Counted under the shared key (role, table, reason) it was not: after the
 * first refusal of an interval, a reader past its quota probed which
 * subjects exist, one refusal each, and only the first was named (and a
 * full table's overflow entries name none).  These records do not go
 * through the shared table: each (table, current user, subject) is
 * recorded once per interval by this backend; a repeat within it goes to
 * the shared table and is counted there as any denial, so a loop over one
 * subject still records it once (and its count), and subjects can only be
 * probed as fast as statements are refused.  A remembered refusal is forgotten after the
 * interval; at most QUOTA_SEEN are remembered (then all are forgotten).
 * A denial that names a subject (a write whose key matched the row of a
 * subject the role may not read: access/probe.c) tells as much and is
 * recorded the same way, keyed apart by its outcome.
 */
#define QUOTA_SEEN	4096

typedef struct QuotaSeenKey
{
	Oid			dbid;
	Oid			relid;
	uint8		outcome;		/* quota_exceeded, or denied (a write's probe) */
	NameData	current_user_name;
	char		subject[HP_SUBJECT_LEN];	/* zero-padded */
} QuotaSeenKey;

typedef struct QuotaSeen
{
	QuotaSeenKey key;
	TimestampTz due;
} QuotaSeen;

static HTAB *quota_seen = NULL;

static bool
hp_quota_refusal_audit(const HpRecord *rec)
{
	QuotaSeenKey key;
	QuotaSeen  *e;
	bool		found;

	if (quota_seen == NULL || hash_get_num_entries(quota_seen) >= QUOTA_SEEN)
	{
		HASHCTL		ctl;

		if (quota_seen != NULL)
			hash_destroy(quota_seen);
		ctl.keysize = sizeof(QuotaSeenKey);
		ctl.entrysize = sizeof(QuotaSeen);
		ctl.hcxt = TopMemoryContext;
		quota_seen = hash_create("health_pass quota refusals", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.relid = rec->relid;
	key.outcome = rec->outcome;
	strlcpy(NameStr(key.current_user_name), NameStr(rec->current_user_name), NAMEDATALEN);
	strlcpy(key.subject, rec->subject, HP_SUBJECT_LEN);
	e = hash_search(quota_seen, &key, HASH_FIND, NULL);
	if (e != NULL && e->due > rec->logged_at)
		return false;			/* recorded within the interval: count it */
	/* queued first: an error (YHA01, 54000) leaves nothing remembered */
	(void) hp_enqueue(rec);
	e = hash_search(quota_seen, &key, HASH_ENTER, &found);
	e->due = TimestampTzPlusMilliseconds(rec->logged_at, (int64) hp_denial_interval_s * 1000);
	return true;
}

/*
 * Record one denial (outcome denied or quota_exceeded; rec->logged_at just
 * read): queued when it is the first of its key in an interval, counted
 * otherwise.  Its key is the exact one when that has an entry or room for
 * one, else its session user's overflow key, else its database's.  Raises
 * only what hp_enqueue raises (YHA01, 54000), and then has counted nothing
 * and lost no earlier count.
 */
void
hp_denial_audit(const HpRecord *rec)
{
	HpDenialKey key;
	HpDenialLevel level = HP_DENIAL_EXACT;
	HpDenial   *d;
	HpDenial	snap;
	bool		have_snap = false;
	bool		found;
	TimestampTz now = rec->logged_at;
	uint64		seq;

	if (hp_denial_interval_s <= 0 || denials == NULL || !OidIsValid(MyDatabaseId))
	{
		(void) hp_enqueue(rec);
		return;
	}
	/*
	 * a subject refused for the first time in the interval (by a quota, or
	 * denied when a write's key matched its row: probe.c): recorded now; a
	 * repeat is counted as any denial (below)
	 */
	if ((rec->outcome == HP_QUOTA_EXCEEDED || rec->outcome == HP_DENIED) &&
		!rec->subject_null && hp_quota_refusal_audit(rec))
		return;
	/* its one error (54000) now, before a count moves */
	(void) hp_queue_for_database(MyDatabaseId, true);
	hp_denial_key(rec, MyDatabaseId, &key);

	LWLockAcquire(denials->lock, LW_EXCLUSIVE);
	d = hash_search(denial_table, &key, HASH_FIND, NULL);
	if (d == NULL && !hp_denial_room(&key, level))
	{
		/* no room for its own entry: its session user's overflow entry */
		level = HP_DENIAL_USER;
		hp_denial_overflow_key(rec, MyDatabaseId, level, &key);
		d = hash_search(denial_table, &key, HASH_FIND, NULL);
		if (d == NULL && !hp_denial_room(&key, level))
		{
			/* the table is full: its database's, in the reserve */
			level = HP_DENIAL_DATABASE;
			hp_denial_overflow_key(rec, MyDatabaseId, level, &key);
			d = hash_search(denial_table, &key, HASH_FIND, NULL);
		}
	}
	if (d != NULL && !d->busy && d->due > now)
	{
		/* within the interval: count it */
		bool		has_seq = d->has_first_seq;

		seq = d->first_seq;
		if (d->count == 0)
			d->first_at = rec->logged_at;
		d->count++;
		if (strcmp(d->purpose, rec->purpose) != 0)
			d->purpose_varied = true;
		d->last = *rec;
		LWLockRelease(denials->lock);
		if (has_seq)
			hp_denial_wait_for(seq);
		return;
	}
	if (d != NULL && d->busy)
	{
		/* another process is queueing its summary: record this one */
		LWLockRelease(denials->lock);
		(void) hp_enqueue(rec);
		return;
	}
	if (d != NULL && d->count > 0)
	{
		/* the interval is over: its summary goes before this record */
		d->busy = true;
		snap = *d;
		have_snap = true;
	}
	else if (d != NULL)
		hp_denial_remove(d);
	LWLockRelease(denials->lock);

	if (have_snap && !hp_denial_queue_summary(&snap, GetCurrentTimestamp()))
	{
		/* no room for it: this denial is recorded, the count stays */
		(void) hp_enqueue(rec);
		return;
	}

	seq = hp_enqueue(rec);

	/* this record opens the key's next interval */
	LWLockAcquire(denials->lock, LW_EXCLUSIVE);
	d = hp_denial_enter(&key, level, &found);
	if (d != NULL)
	{
		d->due = TimestampTzPlusMilliseconds(now, (int64) hp_denial_interval_s * 1000);
		d->busy = false;
		d->has_first_seq = true;
		d->first_seq = seq;
		strlcpy(d->purpose, rec->purpose, HP_PURPOSE_LEN);
		d->count = 0;
		d->first_at = 0;
		d->purpose_varied = false;
		memset(&d->last, 0, sizeof(HpRecord));
	}

	/*
	 * found: another backend's record opened an interval meanwhile (two
	 * records, nothing lost).  NULL and not found: others took the room
	 * since we looked; the next denial of the key goes to an overflow
	 * entry (this one is recorded, nothing lost).
	 */
	LWLockRelease(denials->lock);
}

/*
 * Called by database dbid's audit writer on each turn of its loop: queue
 * the summaries of that database's intervals that are over (all of them,
 * over or not, when all: the writer is stopping), and free their slots.  Returns at once when the table is empty, and looks at most
 * every HP_DENIAL_SCAN_MS.  Never waits and raises nothing: a summary that
 * does not fit in the queue now stays, for the next turn.
 */
void
hp_denials_flush(Oid dbid, bool all)
{
	static TimestampTz last_scan = 0;
	static HpDenial batch[HP_DENIAL_FLUSH_BATCH];
	HASH_SEQ_STATUS status;
	HpDenial   *d;
	TimestampTz now;
	int			n = 0;

	if (denials == NULL || pg_atomic_read_u32(&denials->entries) == 0)
		return;
	now = GetCurrentTimestamp();
	if (!all && !TimestampDifferenceExceeds(last_scan, now, HP_DENIAL_SCAN_MS))
		return;
	last_scan = now;

	LWLockAcquire(denials->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, denial_table);
	while ((d = hash_seq_search(&status)) != NULL)
	{
		if (d->key.dbid != dbid || (d->due > now && !all) || d->busy)
			continue;
		if (d->count > 0)
		{
			d->busy = true;
			batch[n++] = *d;
			if (n == HP_DENIAL_FLUSH_BATCH)
			{
				hash_seq_term(&status);
				break;			/* the rest on the next turn */
			}
		}
		else
		{
			/* removing the entry just returned is allowed during a scan */
			hp_denial_remove(d);
		}
	}
	LWLockRelease(denials->lock);

	for (int i = 0; i < n; i++)
		(void) hp_denial_queue_summary(&batch[i], now);
}
/* A dropped database's counts go with its audit log */
void
hp_denials_forget(Oid dbid)
{
	HASH_SEQ_STATUS status;
	HpDenial   *d;

	if (denials == NULL || pg_atomic_read_u32(&denials->entries) == 0)
		return;
	LWLockAcquire(denials->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, denial_table);
	while ((d = hash_seq_search(&status)) != NULL)
		if (d->key.dbid == dbid)
			hp_denial_remove(d);
	LWLockRelease(denials->lock);
}
