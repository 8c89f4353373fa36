/*
 * hp_access.h
 *    Row-level access to protected tables: the policy (which table is
 *    protected, which role may read it for which purpose), the gate in the
 *    executor that decides each row, quotas, the planner and utility hooks
 *    that keep user code and DDL away from rows it may not see, and the
 *    shared memory owner.  Every decision is recorded through the audit
 *    subsystem below (hp_audit.h); nothing here is needed by it.
 */
#ifndef HP_ACCESS_H
#define HP_ACCESS_H

#include "postgres.h"

#include "executor/execdesc.h"
#include "nodes/plannodes.h"

#include "audit/hp_audit.h"

/* A quota refused the read */
#define ERRCODE_HP_QUOTA_EXCEEDED     MAKE_SQLSTATE('Y','H','Q','0','1')

/* access.c: settings and the subsystem's start */
extern char *hp_purpose;
extern int	hp_quota_capacity;
extern bool hp_audit_superusers;
extern void hp_access_init(void);

/* subject.c */
extern char *hp_subject_text(FmgrInfo *out, Datum d);
extern void hp_subject_digest(const char *recorded, uint8 *out);

/* policy.c */
/* The longest quota period honoured: 100 years (allow() refuses more) */
#define HP_MAX_PER_US ((int64) 100 * 36525 * USECS_PER_DAY / 100)

typedef struct HpRule
{
	Oid			grantee;
	Oid			relid;
	char		purpose[HP_PURPOSE_LEN];
	int			max_subjects;	/* 0: no quota */
	int64		per_us;
} HpRule;

extern AttrNumber hp_protected_attnum(Oid relid);
extern bool hp_any_protected(void);
extern const HpRule *hp_rule_for(Oid roleid, Oid relid, const char *purpose);
extern void hp_policy_init(void);
extern bool hp_protected_needs_policy(Oid relid);
extern bool hp_protected_probed(Oid relid);
extern List *hp_protected_relids(void);
extern int64 hp_quota_longest_period(void);
extern const HpRule *hp_rule_exact(Oid grantee, Oid relid, const char *purpose);

/* quota.c */
extern Size hp_quota_shmem_size(void);
extern void hp_quota_shmem_init(LWLock *lock);
extern void hp_quota_ready(void);
extern bool hp_quota_admit(const HpRule *rule, const uint8 *subject_key, int *count);
extern void hp_quota_reason(const HpRule *rule, char *reason);
extern void hp_quota_forget(Oid dbid);

/* send.c */
extern void hp_send_init(void);
extern void hp_send_sync(void);
extern bool hp_send_in_utility(void);
extern void hp_send_utility_enter(void);
extern void hp_send_utility_leave(void);
extern void hp_send_wrap(QueryDesc *qd, DestReceiver **saved);
extern void hp_send_unwrap(QueryDesc *qd, DestReceiver *saved);

/* plan.c */
extern void hp_plan_init(void);

/* paths.c */
extern void hp_paths_init(void);

/* gate.c: LEAKPROOF as the gate relies on it (PostgreSQL's mark, and a
 * pinned search_path for a user function that resolves names when it runs) */
extern bool hp_func_leakproof(Oid fn);
extern bool hp_runs_untrusted_leakproof(Node *node);

/* probe.c */
extern Oid	hp_probe_trigger(Oid relid, Oid funcoid, char *enabled);
extern Oid	hp_probe_function_oid(bool missing_ok);

/* gate.c: a row a write's key conflicts with (probe.c) */
extern void hp_gate_probe(EState *estate, Relation rel, AttrNumber attnum,
						  TupleTableSlot *existing);

/* ddl.c */
extern void hp_ddl_init(void);
extern void hp_ddl_check(PlannedStmt *pstmt);
extern List *hp_ddl_fk_before(Node *node);
extern void hp_ddl_fk_after(Node *node, List *before);

/* gate.c */
extern void hp_gate_init(void);
extern void hp_note_audit_superusers(Node *stmt, bool before);
extern bool hp_runs_leaky_code(Node *node);

#endif
