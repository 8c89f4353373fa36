/*
 * shmem.c
 *    The owner of health_pass's shared memory and LWLocks: every structure
 *    and every lock rule is listed in hp_shmem.h.  Each subsystem says how
 *    much it needs and lays out its part; this file installs the hooks
 *    for them and hands out the locks of the "health_pass" tranche.  One
 *    exception, listed in hp_shmem.h: the signing subsystem's wrong-PIN
 *    marks (issue/pinmark.c) have hooks of their own and one spinlock, so
 *    that src/issue/ does not depend on src/access/.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "access/hp_access.h"
#include "access/hp_shmem.h"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * The root of our shared memory: where the tranche's locks are.  Looked up
 * once, by the process that creates the memory, and read from here by every
 * process that attaches (as pg_stat_statements keeps its lock): a process
 * started by EXEC_BACKEND does not know the tranche requests.
 */
typedef struct HpShmemRoot
{
	LWLockPadded *locks;
} HpShmemRoot;

/*
 * The tranche's locks, in this order: the queues' (slots_lock, then one
 * per queue), then quota_lock, then denials_lock
 */
static int
hp_shmem_lock_count(void)
{
	return hp_queue_lock_count() + 2;
}

/* shmem_request_hook: reserve the memory and the locks of every part */
static void
hp_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HpShmemRoot)));
	RequestAddinShmemSpace(hp_queue_shmem_size());
	RequestAddinShmemSpace(hp_denials_shmem_size());
	RequestAddinShmemSpace(hp_quota_shmem_size());
	RequestNamedLWLockTranche("health_pass", hp_shmem_lock_count());
}

/* shmem_startup_hook: lay out every part, or attach to it */
static void
hp_shmem_startup_hook(void)
{
	HpShmemRoot *root;
	LWLockPadded *locks;
	int			nqueue = hp_queue_lock_count();
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	root = ShmemInitStruct("health_pass", sizeof(HpShmemRoot), &found);
	if (!found)
		root->locks = GetNamedLWLockTranche("health_pass");
	locks = root->locks;
	hp_queue_shmem_init(locks);
	hp_quota_shmem_init(&locks[nqueue].lock);
	hp_denials_shmem_init(&locks[nqueue + 1].lock);
	LWLockRelease(AddinShmemInitLock);
	hp_shmem_attached = true;
}

void
hp_shmem_install(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hp_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hp_shmem_startup_hook;
}
