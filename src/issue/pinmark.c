/*
 * pinmark.c
 *    Wrong-PIN marks shared by every backend (docs/design/signing.md, "A
 *    wrong PIN").
 *
 *    A token locks its user PIN after a few failed logins.  Every backend
 *    that signs logs in for itself (pkcs11.c), so a wrong PIN in
 *    health_pass.pkcs11_pin_file would be tried once by each new backend,
 *    and a pool of connections would lock the token within seconds.  So a
 *    login that fails with a PIN error (CKR_PIN_INCORRECT, CKR_PIN_INVALID,
 *    CKR_PIN_LEN_RANGE) leaves a mark in shared memory, keyed by the PIN's
 *    source: the module setting, the token (label, manufacturer, model,
 *    serial) and the PIN file (device, inode, size, modification time).
 *    While the mark is there no backend logs in with that PIN: they fail at
 *    once with YHK04.  Changing the PIN file (writing it again, even the
 *    same bytes; replacing it; naming another file) changes the key, and
 *    the next backend tries once.
 *
 *    A login in progress is marked too (TRYING, with its pid): a backend
 *    that finds one waits for its answer (up to PIN_WAIT_MS, interruptibly)
 *    instead of trying the same PIN at the same moment, so of many backends
 *    that start together after the file changed only one tries.  A TRYING
 *    mark whose process is gone, or older than PIN_STALE_MS, is taken over.
 *
 * Shared memory: the segment "health_pass pin marks" (PIN_MARKS entries,
 *    about 4 kB), requested by this file's own shmem_request_hook and laid
 *    out by its shmem_startup_hook, installed by hp_pin_marks_install() from
 *    _PG_init (hp_issue_init) when the library is preloaded and chained to
 *    the hooks installed before (access/shmem.c's).  It is this file's alone:
 *    nothing else reads it.  Without preloading there is no segment and the
 *    mark is the backend's own (pkcs11.c), as signing works unpreloaded.
 *
 * Lock rule: one spinlock, PinMarks.mutex, guards every field of every
 *    entry.  It is held only to find, compare and copy entries: no call out
 *    of this file, no palloc, no ereport, no system call and no other lock
 *    while it is held; never across C_Login.  It is the segment's only lock,
 *    so there is no order to keep with the locks of access/shmem.c.
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "common/hp_common.h"
#include "issue/hp_signing.h"

#define PIN_MARKS     64
#define PIN_WAIT_MS   30000		/* wait at most this long for another backend's login */
#define PIN_STALE_MS  60000		/* a TRYING mark this old is taken over */

typedef enum
{
	PIN_FREE = 0,
	PIN_TRYING,					/* a backend is logging in with this PIN now */
	PIN_FAILED					/* a login with this PIN failed with a PIN error */
} PinState;

typedef struct PinMark
{
	uint8		key[HP_PIN_KEY_LEN];	/* SHA-256 of the PIN's source */
	PinState	state;
	int			pid;			/* TRYING: who */
	TimestampTz since;			/* when the state was set */
	unsigned long rv;			/* FAILED: the token's answer */
} PinMark;

typedef struct PinMarks
{
	slock_t		mutex;			/* guards everything below (lock rule above) */
	PinMark		e[PIN_MARKS];
} PinMarks;

static PinMarks *marks = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
pin_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(PinMarks)));
}

static void
pin_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	marks = ShmemInitStruct("health_pass pin marks", sizeof(PinMarks), &found);
	if (!found)
	{
		memset(marks, 0, sizeof(PinMarks));
		SpinLockInit(&marks->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init, while shared_preload_libraries is being processed */
void
hp_pin_marks_install(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = pin_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = pin_shmem_startup;
}

/* The marks are shared (the library was preloaded) */
bool
hp_pin_marks_shared(void)
{
	return marks != NULL;
}

/* The entry of key, or NULL; with the mutex held */
static PinMark *
find_mark(const uint8 *key)
{
	for (int i = 0; i < PIN_MARKS; i++)
		if (marks->e[i].state != PIN_FREE &&
			memcmp(marks->e[i].key, key, HP_PIN_KEY_LEN) == 0)
			return &marks->e[i];
	return NULL;
}

/*
 * A free entry, or the one to give up for a new mark: the oldest TRYING
 * mark if any (its login is slow or gone), else the oldest FAILED one.
 * With the mutex held.
 */
static PinMark *
free_mark(void)
{
	PinMark    *old = NULL;

	for (int i = 0; i < PIN_MARKS; i++)
	{
		PinMark    *m = &marks->e[i];

		if (m->state == PIN_FREE)
			return m;
		if (old == NULL ||
			(m->state == PIN_TRYING && old->state != PIN_TRYING) ||
			(m->state == old->state && m->since < old->since))
			old = m;
	}
	return old;
}

/*
 * Before a login with the PIN whose source is key: returns when this
 * backend may try it (and then holds its TRYING mark: call hp_pin_settle()
 * whatever happens next, before any error).  Raises YHK04 when a login
 * with it failed before (in any backend), YHK03 when another backend's
 * login with it does not finish in time.  Nothing on the caller's stack
 * needs wiping when it raises: the PIN is read after it returns.
 */
void
hp_pin_claim(const uint8 *key, const char *keyname)
{
	TimestampTz start = GetCurrentTimestamp();

	if (marks == NULL)
		return;
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		PinMark    *m;
		PinState	state = PIN_FREE;
		int			pid = 0;
		unsigned long rv = 0;
		bool		stale = false;

		SpinLockAcquire(&marks->mutex);
		m = find_mark(key);
		if (m != NULL)
		{
			state = m->state;
			pid = m->pid;
			rv = m->rv;
			stale = state == PIN_TRYING &&
				(pid == MyProcPid || TimestampDifferenceExceeds(m->since, now, PIN_STALE_MS));
		}
		if (m == NULL || stale)
		{
			if (m == NULL)
				m = free_mark();
			memcpy(m->key, key, HP_PIN_KEY_LEN);
			m->state = PIN_TRYING;
			m->pid = MyProcPid;
			m->since = now;
			m->rv = 0;
			SpinLockRelease(&marks->mutex);
			return;
		}
		SpinLockRelease(&marks->mutex);

		if (state == PIN_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_HP_PIN_REFUSED),
					 errmsg("key: login to the token of signing key \"%s\" failed before with this PIN file (%s); not tried again by any backend until the file changes",
							hp_key_label(keyname), hp_p11_rv_name(rv)),
					 errdetail("A token locks its PIN after a few failed logins, so a PIN it refused once is not offered again."),
					 errhint("Put the right PIN in health_pass.pkcs11_pin_file (writing the file again, even unchanged, lets the next backend try once).")));
		/* TRYING by another backend: gone? */
		if (kill(pid, 0) != 0 && errno == ESRCH)
		{
			SpinLockAcquire(&marks->mutex);
			m = find_mark(key);
			if (m != NULL && m->state == PIN_TRYING && m->pid == pid)
				m->since = 0;	/* stale: the next round takes it over */
			SpinLockRelease(&marks->mutex);
			continue;
		}
		if (TimestampDifferenceExceeds(start, now, PIN_WAIT_MS))
			ereport(ERROR,
					(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
					 errmsg("key: another backend's login to the token of signing key \"%s\" with this PIN file did not finish within %d s",
							hp_key_label(keyname), PIN_WAIT_MS / 1000)));
		CHECK_FOR_INTERRUPTS();
		pg_usleep(5000L);
	}
}

/*
 * After the login hp_pin_claim() let this backend try: a PIN error (rv)
 * leaves the FAILED mark; anything else (success, another error, no login
 * made) removes the mark.  Never raises.
 */
void
hp_pin_settle(const uint8 *key, bool pin_error, unsigned long rv)
{
	PinMark    *m;
	TimestampTz now;

	if (marks == NULL)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&marks->mutex);
	m = find_mark(key);
	if (m != NULL && m->state == PIN_TRYING && m->pid == MyProcPid)
	{
		if (pin_error)
		{
			m->state = PIN_FAILED;
			m->since = now;
			m->rv = rv;
		}
		else
			m->state = PIN_FREE;
	}
	else if (m == NULL && pin_error)
	{
		/* our TRYING mark was given up meanwhile: mark anyway */
		m = free_mark();
		memcpy(m->key, key, HP_PIN_KEY_LEN);
		m->state = PIN_FAILED;
		m->pid = MyProcPid;
		m->since = now;
		m->rv = rv;
	}
	SpinLockRelease(&marks->mutex);
}
