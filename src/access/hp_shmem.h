/*
 * hp_shmem.h
 *    The one owner of health_pass's shared memory (shmem.c): it reserves
 *    the memory and the LWLocks of every subsystem in the shmem request
 *    hook and has each lay out its part in the shmem startup hook.  Shared
 *    memory exists only when the library is in shared_preload_libraries.
 *
 * What lives there, who owns each part, and what guards it:
 *
 *    (Not through this file: the wrong-PIN marks of issue/pinmark.c, a
 *        64-entry "health_pass pin marks" segment with its own shmem hooks
 *        and one spinlock, held only to read or set a mark; its lock rule
 *        is in that file's header.)
 *
 *    HpQueueSet (audit/queue.c, "health_pass queues"): one HpQueue per
 *        database that audits (health_pass.max_databases), each with a ring
 *        of health_pass.audit_queue_size HpRecords, their ready flags
 *        (atomics) and reservation times.
 *          slots_lock   which database holds which queue slot: a slot's dbid
 *                       and forgotten flag are written under slots_lock (and
 *                       q->lock, except when a free slot is claimed: the
 *                       claimer then takes q->lock to ask for a writer, which
 *                       is what makes the claim visible to one)
 *          q->lock      one per queue: its counters, writer state and ring
 *                       reservations (a backend copies its record into the
 *                       reserved slot after releasing it, then publishes it
 *                       with a write barrier and the ready flag)
 *        On a standby q->lock also guards the shipper's state (ship_state,
 *        ship_error, the primary's last known head); on a primary, the
 *        last record number each standby shipped (shipped[]).  audit/ship.c
 *        takes it only to copy them, never across a libpq call.
 *        next_statement_id is an atomic, read without a lock.
 *
 *    Denial counts (audit/denials.c, "health_pass denials"): a fixed-size
 *        hash of (database, table, outcome, roles, reason) counts and a tally
 *        per session user and database.
 *          denials_lock guards both and the entry counter's writers; the
 *                       counter is atomic so the writer reads it unlocked
 *
 *    Quota counters (access/quota.c, "health_pass quota ..."): subjects read
 *        per rule, counters per rule and the rebuild state per queue slot.
 *          quota_lock   guards all three
 *
 * Lock rules (as in pg_stat_statements, every rule is here):
 *    1. Order: slots_lock before any q->lock; at most one q->lock at a time.
 *    2. quota_lock and denials_lock are leaves: no other LWLock (ours or
 *       PostgreSQL's, such as ProcArrayLock) is acquired while either is
 *       held, and neither is acquired while another health_pass LWLock is
 *       held.
 *    3. Nothing that can raise an error, wait for another process, or take
 *       a heavyweight lock runs while any of these LWLocks is held: a backend
 *       that waits for the writer (hp_enqueue, hp_wait_durable) does so on
 *       the queue's condition variable or its latch after releasing q->lock;
 *       hash tables are fixed-size and entered with HASH_ENTER_NULL.
 *    4. The writer takes heavyweight locks on audit_block only with no
 *       LWLock held: first conditionally, then waiting at most a bounded
 *       lock_timeout (audit/writer.c, hp_writer_lock).
 *    5. AddinShmemInitLock is held only while the startup hook lays out or
 *       attaches to the structures above.
 */
#ifndef HP_SHMEM_H
#define HP_SHMEM_H

/*
 * The lock pointers are looked up once, by the process that creates the
 * memory, and kept in shared memory ("health_pass", shmem.c), so a process
 * that only attaches never needs the tranche's name.
 */

/* Install the shmem request and startup hooks (from _PG_init, preloaded) */
extern void hp_shmem_install(void);

#endif
