/*
 * quota.c
 *    Shared counters of distinct subjects read, per (role, table), over a
 *    sliding window.  Every session of the cluster sees the same counters,
 *    so a bulk pull cannot be spread over connections.  They live in shared
 *    memory: they survive reconnects, not a server restart.
 *
 *    A subject entry is live until expires_at (last read + the rule's per).
 *    A counter holds how many subject entries of its (role, table) exist,
 *    live or not; expired ones are swept when a counter reaches its limit,
 *    so the check never undercounts.
 */
#include "postgres.h"

#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "hp_access.h"

typedef struct HpSubjectKey
{
	Oid			roleid;
	Oid			relid;
	uint64		subject_hash;
} HpSubjectKey;

typedef struct HpSubjectEntry
{
	HpSubjectKey key;
	TimestampTz expires_at;
} HpSubjectEntry;

typedef struct HpCounterKey
{
	Oid			roleid;
	Oid			relid;
} HpCounterKey;

typedef struct HpCounterEntry
{
	HpCounterKey key;
	int			count;
} HpCounterEntry;

#define HP_MAX_COUNTERS 4096

static HTAB *subjects = NULL;
static HTAB *counters = NULL;

/* Bytes of shared memory for both tables */
Size
hp_quota_shmem_size(void)
{
	return add_size(hash_estimate_size(hp_quota_capacity, sizeof(HpSubjectEntry)),
					hash_estimate_size(HP_MAX_COUNTERS, sizeof(HpCounterEntry)));
}

/* Create or attach to the tables; caller holds AddinShmemInitLock */
void
hp_quota_shmem_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(HpSubjectKey);
	ctl.entrysize = sizeof(HpSubjectEntry);
	subjects = ShmemInitHash("health_pass quota subjects", hp_quota_capacity,
							 hp_quota_capacity, &ctl, HASH_ELEM | HASH_BLOBS);
	ctl.keysize = sizeof(HpCounterKey);
	ctl.entrysize = sizeof(HpCounterEntry);
	counters = ShmemInitHash("health_pass quota counters", HP_MAX_COUNTERS,
							 HP_MAX_COUNTERS, &ctl, HASH_ELEM | HASH_BLOBS);
}

/*
 * Remove expired subject entries, of one (role, table) when only is given,
 * of all otherwise, keeping the counters right.
 */
static void
hp_quota_sweep(const HpCounterKey *only, TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	HpSubjectEntry *e;

	hash_seq_init(&seq, subjects);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		HpCounterKey ck;
		HpCounterEntry *c;

		if (e->expires_at > now)
			continue;
		if (only && (e->key.roleid != only->roleid || e->key.relid != only->relid))
			continue;
		ck.roleid = e->key.roleid;
		ck.relid = e->key.relid;
		c = hash_search(counters, &ck, HASH_FIND, NULL);
		if (c && c->count > 0)
			c->count--;
		hash_search(subjects, &e->key, HASH_REMOVE, NULL);
	}
}

/*
 * Record that roleid read the subject of relid with this hash (the gate's)
 * now.  Returns false, leaving the counters alone, when that would make more
 * than max_subjects distinct subjects within per_us; *count is then the
 * number already read.
 */
bool
hp_quota_admit(Oid roleid, Oid relid, uint64 subject_hash,
			   int max_subjects, int64 per_us, int *count)
{
	HpSubjectKey sk;
	HpCounterKey ck;
	HpSubjectEntry *e;
	HpCounterEntry *c;
	TimestampTz now = GetCurrentTimestamp();
	bool		found;

	memset(&sk, 0, sizeof(sk));
	sk.roleid = roleid;
	sk.relid = relid;
	sk.subject_hash = subject_hash;
	ck.roleid = roleid;
	ck.relid = relid;

	LWLockAcquire(hp_shared->quota_lock, LW_EXCLUSIVE);
	e = hash_search(subjects, &sk, HASH_FIND, NULL);
	if (e && e->expires_at > now)
	{
		e->expires_at = now + per_us;	/* a live subject costs nothing more */
		LWLockRelease(hp_shared->quota_lock);
		return true;
	}

	c = hash_search(counters, &ck, HASH_ENTER_NULL, &found);
	if (c == NULL)
	{
		LWLockRelease(hp_shared->quota_lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("health_pass quota tracker has no room for another role and table"),
				 errdetail("At most %d (role, table) pairs are counted at once.", HP_MAX_COUNTERS)));
	}
	if (!found)
		c->count = 0;
	if (c->count >= max_subjects)
	{
		hp_quota_sweep(&ck, now);
		e = hash_search(subjects, &sk, HASH_FIND, NULL);
	}
	if (e == NULL && c->count >= max_subjects)
	{
		*count = c->count;
		LWLockRelease(hp_shared->quota_lock);
		return false;
	}

	if (e == NULL)
	{
		e = hash_search(subjects, &sk, HASH_ENTER_NULL, &found);
		if (e == NULL)
		{
			hp_quota_sweep(NULL, now);
			e = hash_search(subjects, &sk, HASH_ENTER_NULL, &found);
		}
		if (e == NULL)
		{
			LWLockRelease(hp_shared->quota_lock);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("health_pass quota tracker is full"),
					 errdetail("It holds %d subjects (health_pass.quota_capacity).",
							   hp_quota_capacity)));
		}
		c->count++;
	}
	e->expires_at = now + per_us;
	*count = c->count;
	LWLockRelease(hp_shared->quota_lock);
	return true;
}
