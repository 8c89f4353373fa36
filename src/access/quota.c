/*
 * quota.c
 *    Shared counters of the distinct subjects read through each access rule
 *    over a sliding window, rebuilt from the audit log after a restart.
 *
 *    A quota belongs to the rule (grantee, table, purpose), not to the role
 *    that reads: every role that reads through a rule counts against that
 *    rule's max_subjects, so making member roles, or SET ROLE to another
 *    member, buys no extra subjects.  A subject is counted by the digest of
 *    the text its audit record keeps (subject.c); a NULL subject is a subject
 *    of its own on every row.
 *
 *    Memory is fixed at server start: health_pass.quota_capacity subject
 *    entries and HP_MAX_COUNTERS rule counters, in shared hash tables that
 *    never grow (HASH_FIXED_SIZE).  A subject entry is live until expires_at
 *    (its last read + the rule's per); a counter holds how many entries of
 *    its rule exist, live or not.  When a rule reaches its limit, or the
 *    table is full, expired entries are swept first; when the table is still
 *    full, only the read that needs a new entry is refused (53400, naming
 *    the setting): reads of subjects already counted, and rules without a
 *    quota, go on.
 *
 *    After a server start or crash restart, the counters of a database are
 *    rebuilt from its audit log before any quota in it is checked
 *    (hp_quota_ready): every "allowed" record still within the period of
 *    the rule that admits it now is counted again, newest first, up to the
 *    rule's max_subjects (older reads of a rule at its limit expire before
 *    the newer ones, so they cannot change when it falls below).  What the
 *    log held durably is what the counts say; with audit_sync off, a crash
 *    loses the last records and their counts alike.
 *
 * Locks: quota_lock (exclusive) guards both tables and the load states;
 * it is never held across anything that can raise an error but the
 * "cannot happen" hash corruption checks in dynahash.  The rebuild reads
 * the log without it and takes it per record.
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "access/tableam.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "access/hp_access.h"

/* A rule, as quotas know it */
typedef struct HpCounterKey
{
	Oid			dbid;
	Oid			grantee;
	Oid			relid;
	uint32		purpose_hash;
} HpCounterKey;

typedef struct HpCounterEntry
{
	HpCounterKey key;
	int			count;			/* subject entries of this rule */
	TimestampTz next_expiry;	/* none of its entries expires before this */
	TimestampTz incomplete_until;	/* the rebuild could not count them all */
} HpCounterEntry;

typedef struct HpSubjectKey
{
	HpCounterKey rule;
	uint8		subject[HP_SUBJECT_KEY_LEN];
} HpSubjectKey;

typedef struct HpSubjectEntry
{
	HpSubjectKey key;
	TimestampTz expires_at;
} HpSubjectEntry;

/* Per queue slot (one per audited database): are its counters rebuilt? */
typedef struct HpQuotaLoad
{
	Oid			dbid;
	int			loader;			/* pid rebuilding them, or 0 */
	bool		loaded;
} HpQuotaLoad;

typedef struct HpQuotaShared
{
	TimestampTz next_sweep;		/* no entry expires before this */
	uint64		null_subjects;	/* for the keys of NULL subjects */
	HpQuotaLoad loads[FLEXIBLE_ARRAY_MEMBER];	/* health_pass.max_databases */
} HpQuotaShared;

#define HP_MAX_COUNTERS 4096

static HTAB *subjects = NULL;
static HTAB *counters = NULL;
static HpQuotaShared *qshared = NULL;

/* Bytes of shared memory for both tables and the load states */
Size
hp_quota_shmem_size(void)
{
	Size		s = hash_estimate_size(hp_quota_capacity, sizeof(HpSubjectEntry));

	s = add_size(s, hash_estimate_size(HP_MAX_COUNTERS, sizeof(HpCounterEntry)));
	return add_size(s, add_size(offsetof(HpQuotaShared, loads),
								mul_size(hp_max_databases, sizeof(HpQuotaLoad))));
}

/* Guards the quota tables and load states (given by access/shmem.c) */
static LWLock *quota_lock = NULL;

/* Create or attach to the tables; caller holds AddinShmemInitLock */
void
hp_quota_shmem_init(LWLock *lock)
{
	HASHCTL		ctl;
	bool		found;

	quota_lock = lock;
	ctl.keysize = sizeof(HpSubjectKey);
	ctl.entrysize = sizeof(HpSubjectEntry);
	subjects = ShmemInitHash("health_pass quota subjects", hp_quota_capacity,
							 hp_quota_capacity, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	ctl.keysize = sizeof(HpCounterKey);
	ctl.entrysize = sizeof(HpCounterEntry);
	counters = ShmemInitHash("health_pass quota counters", HP_MAX_COUNTERS,
							 HP_MAX_COUNTERS, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	qshared = ShmemInitStruct("health_pass quota state",
							  add_size(offsetof(HpQuotaShared, loads),
									   mul_size(hp_max_databases, sizeof(HpQuotaLoad))),
							  &found);
	if (!found)
		memset(qshared, 0, offsetof(HpQuotaShared, loads) +
			   hp_max_databases * sizeof(HpQuotaLoad));
}

/* The counter key of a rule, in this database */
static void
hp_counter_key(const HpRule *r, HpCounterKey *k)
{
	memset(k, 0, sizeof(*k));
	k->dbid = MyDatabaseId;
	k->grantee = r->grantee;
	k->relid = r->relid;
	k->purpose_hash = hash_bytes((const unsigned char *) r->purpose, strlen(r->purpose));
}

/*
 * Remove expired subject entries, of one rule when only is given, of all
 * otherwise, keeping the counters right; returns when the first of those
 * left expires.  A sweep of all also frees the counters of rules that hold
 * no subject, but keep's.  Caller holds quota_lock.
 */
static TimestampTz
hp_quota_sweep(const HpCounterKey *only, const HpCounterKey *keep, TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	HpSubjectEntry *e;
	TimestampTz next = DT_NOEND;

	hash_seq_init(&seq, subjects);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		HpCounterEntry *c;

		if (only && memcmp(&e->key.rule, only, sizeof(HpCounterKey)) != 0)
			continue;
		if (e->expires_at > now)
		{
			if (e->expires_at < next)
				next = e->expires_at;
			continue;
		}
		c = hash_search(counters, &e->key.rule, HASH_FIND, NULL);
		if (c && c->count > 0)
			c->count--;
		hash_search(subjects, &e->key, HASH_REMOVE, NULL);
	}
	if (only == NULL)
	{
		HpCounterEntry *c;

		/* counters of rules that hold nothing any more (a dropped rule's) */
		hash_seq_init(&seq, counters);
		while ((c = hash_seq_search(&seq)) != NULL)
			if (c->count == 0 && c->incomplete_until <= now &&
				(keep == NULL || memcmp(&c->key, keep, sizeof(HpCounterKey)) != 0))
				hash_search(counters, &c->key, HASH_REMOVE, NULL);
		qshared->next_sweep = next;
	}
	return next;
}

/*
 * Count subject into rule: a new entry (true), or a later expiry of one
 * that exists (false), or nothing when the tables are full (*full).
 * Caller holds quota_lock.
 */
static bool
hp_quota_enter(HpCounterEntry *c, const HpSubjectKey *sk, TimestampTz expires,
			   TimestampTz now, bool *full)
{
	HpSubjectEntry *e;
	bool		found;

	*full = false;
	e = hash_search(subjects, sk, HASH_ENTER_NULL, &found);
	if (e == NULL && now >= qshared->next_sweep)
	{
		hp_quota_sweep(NULL, &c->key, now);	/* c stays */
		e = hash_search(subjects, sk, HASH_ENTER_NULL, &found);
	}
	if (e == NULL)
	{
		*full = true;
		return false;
	}
	if (found)
	{
		if (e->expires_at < expires)
			e->expires_at = expires;
		return false;
	}
	e->expires_at = expires;
	c->count++;
	if (expires < qshared->next_sweep)
		qshared->next_sweep = expires;
	if (expires < c->next_expiry)
		c->next_expiry = expires;
	return true;
}

/* The counter of a rule, made on first use; NULL when none is free */
static HpCounterEntry *
hp_counter_get(const HpCounterKey *ck)
{
	bool		found;
	HpCounterEntry *c = hash_search(counters, ck, HASH_ENTER_NULL, &found);

	if (c != NULL && !found)
	{
		c->count = 0;
		c->next_expiry = DT_NOEND;
		c->incomplete_until = 0;
	}
	return c;
}

static void
hp_quota_full_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("health_pass cannot count another subject for this rule: the quota tracker is full"),
			 errdetail("It holds %d live subjects (health_pass.quota_capacity) and %d rules.",
					   hp_quota_capacity, HP_MAX_COUNTERS),
			 errhint("Raise health_pass.quota_capacity (takes a server restart) to at least the sum of max_subjects of the rules with a quota.")));
}

/*
 * Record that a role read, through rule, the subject with this key (16
 * bytes; NULL for a NULL subject, a subject of its own) now.  Returns
 * false, leaving the counters alone, when that would make more than
 * max_subjects distinct subjects within per; *count is then the number
 * already read.  Raises 53400 when the subject cannot be counted.
 */
bool
hp_quota_admit(const HpRule *rule, const uint8 *subject_key, int *count)
{
	HpSubjectKey sk;
	HpCounterEntry *c;
	HpSubjectEntry *e;
	TimestampTz now = GetCurrentTimestamp();
	bool		full;

	/* a standby's reads count against the primary's counters (audit/ship.c) */
	if (RecoveryInProgress())
		return hp_ship_quota_admit(rule->grantee, rule->relid, rule->purpose,
								   subject_key, count);

	memset(&sk, 0, sizeof(sk));
	hp_counter_key(rule, &sk.rule);

	LWLockAcquire(quota_lock, LW_EXCLUSIVE);
	if (subject_key)
		memcpy(sk.subject, subject_key, HP_SUBJECT_KEY_LEN);
	else
	{
		/* a NULL subject: a key no value's digest has (its last byte) */
		uint64		n = ++qshared->null_subjects;

		memcpy(sk.subject, &n, sizeof(n));
		memset(sk.subject + sizeof(n), 0xFF, HP_SUBJECT_KEY_LEN - sizeof(n));
	}

	e = subject_key ? hash_search(subjects, &sk, HASH_FIND, NULL) : NULL;
	if (e && e->expires_at > now)
	{
		e->expires_at = now + rule->per_us;	/* a live subject costs nothing more */
		LWLockRelease(quota_lock);
		return true;
	}

	c = hp_counter_get(&sk.rule);
	if (c == NULL || c->incomplete_until > now)
	{
		LWLockRelease(quota_lock);
		hp_quota_full_error();
	}
	if (c->count >= rule->max_subjects && now >= c->next_expiry)
		c->next_expiry = hp_quota_sweep(&sk.rule, NULL, now);
	e = subject_key ? hash_search(subjects, &sk, HASH_FIND, NULL) : NULL;
	if (e == NULL && c->count >= rule->max_subjects)
	{
		*count = c->count;
		LWLockRelease(quota_lock);
		return false;
	}
	/* a new entry, or an expired one live again (it is counted already) */
	(void) hp_quota_enter(c, &sk, now + rule->per_us, now, &full);
	if (full)
	{
		LWLockRelease(quota_lock);
		hp_quota_full_error();
	}
	*count = c->count;
	LWLockRelease(quota_lock);
	return true;
}

/*
 * The reason an allowed record read under a quota carries: the rule it was
 * counted against, by the oids of its grantee and table (what the rebuild
 * reads; short, as every such record carries it)
 */
#define HP_QUOTA_REASON "quota of rule %u/%u"

void
hp_quota_reason(const HpRule *rule, char *reason)
{
	snprintf(reason, HP_REASON_LEN, HP_QUOTA_REASON, rule->grantee, rule->relid);
}

/* The load state of this database's counters */
static HpQuotaLoad *
hp_quota_load_state(void)
{
	HpQueue    *q = hp_queue_for_database(MyDatabaseId, true);

	return &qshared->loads[hp_queue_slot(q)];
}

/* Role oids by name, cached for one rebuild */
typedef struct HpRoleName
{
	NameData	name;
	Oid			roleid;
} HpRoleName;

/* Count one record of the log again, if a rule with a quota admits it now */
static void
hp_quota_count_record(const HpEntry *r, HTAB *roles, TimestampTz now)
{
	HpRoleName *rn;
	NameData	name;
	bool		found;
	const HpRule *rule;
	HpSubjectKey sk;
	HpCounterEntry *c;
	TimestampTz expires;
	bool		full;
	Oid			grantee,
				relid;

	if (r->outcome != HP_ALLOWED || r->purpose == NULL)
		return;
	if (r->reason && sscanf(r->reason, HP_QUOTA_REASON, &grantee, &relid) == 2)
	{
		/* the rule it was counted against, if it still exists */
		rule = hp_rule_exact(grantee, relid, r->purpose);
	}
	else
	{
		/* a record of 0.6.0: the rule that admits its role now */
		if (r->current_user_name == NULL || strlen(r->current_user_name) >= NAMEDATALEN)
			return;
		namestrcpy(&name, r->current_user_name);
		rn = hash_search(roles, &name, HASH_ENTER, &found);
		if (!found)
			rn->roleid = get_role_oid(r->current_user_name, true);
		if (!OidIsValid(rn->roleid))
			return;
		rule = hp_rule_for(rn->roleid, (Oid) r->relid, r->purpose);
	}
	if (rule == NULL || rule->max_subjects == 0)
		return;
	expires = (TimestampTz) r->logged_at + rule->per_us;
	if (expires <= now)
		return;

	memset(&sk, 0, sizeof(sk));
	hp_counter_key(rule, &sk.rule);
	if (r->subject)
		hp_subject_digest(r->subject, sk.subject);
	else
	{
		/* a NULL subject counts once per record: key it by the record id */
		memcpy(sk.subject, &r->id, sizeof(r->id));
		memset(sk.subject + sizeof(r->id), 0xFE, HP_SUBJECT_KEY_LEN - sizeof(r->id));
	}

	LWLockAcquire(quota_lock, LW_EXCLUSIVE);
	c = hp_counter_get(&sk.rule);
	if (c == NULL)
	{
		/* no counter free: reads under this rule are refused while so */
		LWLockRelease(quota_lock);
		return;
	}
	/* newest first: at the limit, older subjects expire before these */
	if (c->count < rule->max_subjects || hash_search(subjects, &sk, HASH_FIND, NULL))
	{
		(void) hp_quota_enter(c, &sk, expires, now, &full);
		if (full && expires > c->incomplete_until)
			c->incomplete_until = expires;
	}
	LWLockRelease(quota_lock);
}

/* Forget every counter of database dbid (dropped, or about to be rebuilt) */
void
hp_quota_forget(Oid dbid)
{
	HASH_SEQ_STATUS seq;
	HpSubjectEntry *e;
	HpCounterEntry *c;

	if (subjects == NULL)
		return;
	LWLockAcquire(quota_lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, subjects);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.rule.dbid == dbid)
			hash_search(subjects, &e->key, HASH_REMOVE, NULL);
	hash_seq_init(&seq, counters);
	while ((c = hash_seq_search(&seq)) != NULL)
		if (c->key.dbid == dbid)
			hash_search(counters, &c->key, HASH_REMOVE, NULL);
	LWLockRelease(quota_lock);
}

/*
 * Rebuild this database's counters from its audit log: blocks newest
 * first through the primary key, until a few blocks in a row end before
 * the longest period of a rule with a quota.
 */
static void
hp_quota_rebuild(TimestampTz deadline)
{
	Oid			relid = hp_extension_relation_oid("audit_block");
	int64		longest = hp_quota_longest_period();
	TimestampTz now = GetCurrentTimestamp();
	Relation	rel;
	HpBlockScan bs;
	HTAB	   *roles;
	HASHCTL		ctl;
	MemoryContext cxt,
				blockcxt,
				old;
	int			old_blocks = 0;

	hp_quota_forget(MyDatabaseId);
	if (!OidIsValid(relid) || longest <= 0)
		return;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass quota rebuild",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	ctl.keysize = sizeof(NameData);
	ctl.entrysize = sizeof(HpRoleName);
	ctl.hcxt = cxt;
	roles = hash_create("health_pass quota roles", 64, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/*
	 * Never queue behind a lock without a bound: whoever holds or awaits a
	 * conflicting one, the wait ends at audit_timeout (and the next reader
	 * tries again)
	 */
	while (!ConditionalLockRelationOid(relid, AccessShareLock))
	{
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_HP_AUDIT_UNAVAILABLE),
					 errmsg("health_pass cannot rebuild quota counts: health_pass.audit_block is locked"),
					 errhint("A superuser holds or awaits a strong lock on the audit log; health_pass.audit_timeout bounds this wait.")));
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
	rel = table_open(relid, NoLock);
	/* its primary key too (REINDEX holds that one) */
	while (OidIsValid(RelationGetPrimaryKeyIndex(rel)) &&
		   !ConditionalLockRelationOid(RelationGetPrimaryKeyIndex(rel), AccessShareLock))
	{
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_HP_AUDIT_UNAVAILABLE),
					 errmsg("health_pass cannot rebuild quota counts: the primary key of health_pass.audit_block is locked"),
					 errhint("A superuser holds or awaits a strong lock on the audit log; health_pass.audit_timeout bounds this wait.")));
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
	/* after a restart every block written before it is visible to any snapshot */
	hp_block_scan_begin(&bs, rel, AccessShareLock,
						ActiveSnapshotSet() ? GetActiveSnapshot() : GetLatestSnapshot());
	blockcxt = AllocSetContextCreate(cxt, "health_pass quota block", ALLOCSET_DEFAULT_SIZES);
	while (hp_block_scan_next(&bs))
	{
		bool		isnull;
		Datum		max_at = slot_getattr(bs.slot, 4, &isnull);
		Datum		records;
		HpBlock		b;
		const char *why = NULL;

		CHECK_FOR_INTERRUPTS();
		if (isnull || DatumGetTimestampTz(max_at) + longest <= now)
		{
			/* ids grow with time: a few old blocks in a row end the walk */
			if (++old_blocks >= 8)
				break;
			continue;
		}
		old_blocks = 0;
		records = slot_getattr(bs.slot, 6, &isnull);
		if (isnull)
			continue;
		MemoryContextSwitchTo(blockcxt);
		if (!hp_block_unpack(DatumGetByteaPP(records), &b, &why))
			ereport(WARNING,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("health_pass skipped a damaged audit block while rebuilding quotas: %s", why),
					 errhint("Run health_pass.audit_verify().")));
		else
			for (int i = b.n - 1; i >= 0; i--)
				hp_quota_count_record(&b.entries[i], roles, now);
		MemoryContextSwitchTo(cxt);
		MemoryContextReset(blockcxt);
	}
	hp_block_scan_end(&bs);
	table_close(rel, AccessShareLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/*
 * Make sure this database's counters are what its audit log says: rebuild
 * them once after a server start, waiting (up to audit_timeout) while
 * another backend does.
 */
void
hp_quota_ready(void)
{
	static bool ready = false;	/* this backend saw them rebuilt */
	HpQuotaLoad *ld;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   hp_audit_timeout_ms);

	if (ready)
		return;
	/* a standby counts on the primary; it rebuilds here once promoted */
	if (RecoveryInProgress())
		return;
	ld = hp_quota_load_state();
	for (;;)
	{
		bool		mine = false;
		int			loader;

		LWLockAcquire(quota_lock, LW_EXCLUSIVE);
		if (ld->dbid != MyDatabaseId)
		{
			/* the queue slot serves another database now */
			ld->dbid = MyDatabaseId;
			ld->loaded = false;
			ld->loader = 0;
		}
		if (ld->loaded)
		{
			LWLockRelease(quota_lock);
			ready = true;
			return;
		}
		loader = ld->loader;
		if (loader == 0)
		{
			ld->loader = MyProcPid;
			mine = true;
		}
		LWLockRelease(quota_lock);

		/*
		 * A loader that died (its error path clears the mark; a crash does
		 * not) is replaced, unless another backend did so meanwhile.  Its pid
		 * is looked up with quota_lock released: ProcArrayLock is not taken
		 * under it (hp_shmem.h, rule 2).
		 */
		if (!mine && BackendPidGetProc(loader) == NULL)
		{
			LWLockAcquire(quota_lock, LW_EXCLUSIVE);
			if (ld->dbid == MyDatabaseId && !ld->loaded && ld->loader == loader)
			{
				ld->loader = MyProcPid;
				mine = true;
			}
			LWLockRelease(quota_lock);
		}
		if (mine)
			break;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_HP_AUDIT_UNAVAILABLE),
					 errmsg("health_pass quota counts of this database are still being rebuilt from the audit log"),
					 errhint("Try again; health_pass.audit_timeout bounds this wait.")));
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}

	PG_TRY();
	{
		hp_quota_rebuild(deadline);
	}
	PG_CATCH();
	{
		LWLockAcquire(quota_lock, LW_EXCLUSIVE);
		if (ld->loader == MyProcPid)
			ld->loader = 0;
		LWLockRelease(quota_lock);
		PG_RE_THROW();
	}
	PG_END_TRY();

	LWLockAcquire(quota_lock, LW_EXCLUSIVE);
	ld->loaded = true;
	ld->loader = 0;
	LWLockRelease(quota_lock);
	ready = true;
}

PG_FUNCTION_INFO_V1(hp_audit_quota_admit);

/*
 * _audit_quota_admit(grantee, relid, purpose, subject_key) on the primary:
 * what hp_quota_admit() says of the rule (grantee, relid, purpose) as this
 * server has it, for a standby's read (audit/ship.c).  Returns (admitted,
 * subjects); subjects -1 when this server has no such rule with a quota.
 * subject_key NULL: a NULL subject.  Who may call it is who has EXECUTE
 * (revoked from PUBLIC): a call counts a subject against a rule.
 */
Datum
hp_audit_quota_admit(PG_FUNCTION_ARGS)
{
	TupleDesc	rdesc;
	Datum		out[2];
	bool		outnull[2] = {false, false};
	const HpRule *rule;
	bytea	   *key = PG_ARGISNULL(3) ? NULL : PG_GETARG_BYTEA_PP(3);
	int			count = -1;
	bool		admitted = false;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "_audit_quota_admit must return a composite type");
	hp_require_preload();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a quota question needs the rule's grantee, table and purpose")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_HP_AUDIT_STANDBY),
				 errmsg("this server is a standby: quotas are counted on the primary"),
				 errhint("Point health_pass.primary_conninfo of the standby at the primary.")));
	if (key && VARSIZE_ANY_EXHDR(key) != HP_SUBJECT_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a subject key is %d bytes", HP_SUBJECT_KEY_LEN)));
	rule = hp_rule_exact(PG_GETARG_OID(0), PG_GETARG_OID(1),
						 text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (rule && rule->max_subjects > 0)
	{
		hp_quota_ready();
		count = 0;				/* a live subject's admission leaves it alone */
		admitted = hp_quota_admit(rule, key ? (const uint8 *) VARDATA_ANY(key) : NULL, &count);
	}
	out[0] = BoolGetDatum(admitted);
	out[1] = Int32GetDatum(count);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(rdesc), out, outnull)));
}
