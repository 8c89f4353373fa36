/*
 * access.c
 *    The access subsystem's settings, and its start.  When the library is
 *    preloaded this is where every hook health_pass uses is installed, in
 *    this order (a hook installed later runs first):
 *
 *      shmem_request_hook, shmem_startup_hook   shmem.c: all shared memory
 *      ExecutorStart/Run/Finish_hook            gate.c: the row gate
 *      planner_hook, get_relation_info_hook,
 *      ProcessUtility_hook                      plan.c: no parallel plans or
 *                                               index-only scans that hide the
 *                                               subject; COPY TO through the
 *                                               executor; DDL and database
 *                                               commands (ddl.c); nesting and
 *                                               statement end for audit_sync
 *                                               (send.c)
 *      row_security_policy_hook_permissive      ddl.c: protected tables without
 *                                               row security of their own
 *      set_rel_pathlist_hook                    paths.c: leaky quals off paths
 *      PqCommMethods, an XactCallback           send.c: audit_sync over every
 *                                               protocol message
 *
 *    The policy cache's invalidation callbacks are registered preloaded or
 *    not (policy.c).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "access/hp_access.h"
#include "access/hp_shmem.h"

/* health_pass.purpose: why this session reads protected tables */
char	   *hp_purpose = NULL;

/* health_pass.quota_capacity: subjects the quota counters can hold */
int			hp_quota_capacity = 100000;

/* health_pass.audit_superusers: audit reads by roles that bypass the gate */
bool		hp_audit_superusers = true;

/* health_pass.purpose may not exceed what an audit record holds */
static bool
hp_check_purpose(char **newval, void **extra, GucSource source)
{
	if (*newval && strlen(*newval) >= HP_PURPOSE_LEN)
	{
		GUC_check_errdetail("A purpose is at most %d bytes.", HP_PURPOSE_LEN - 1);
		return false;
	}
	return true;
}

/* Define the settings; when preloaded, shared memory and the hooks */
void
hp_access_init(void)
{
	DefineCustomStringVariable("health_pass.purpose",
							   "Why this session reads protected tables; matched against access rules.",
							   NULL, &hp_purpose, "",
							   PGC_USERSET, 0, hp_check_purpose, NULL, NULL);
	DefineCustomBoolVariable("health_pass.audit_superusers",
							 "Audit every row of a protected table that a superuser or a role with BYPASSRLS reads.",
							 NULL, &hp_audit_superusers, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	if (hp_preloaded)
	{
		DefineCustomIntVariable("health_pass.quota_capacity",
								"Distinct (role, table, subject) reads the quota counters hold.",
								NULL, &hp_quota_capacity, 100000, 1000, 10 * 1000 * 1000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		hp_shmem_install();
		hp_gate_init();
		hp_plan_init();
		hp_ddl_init();
		hp_paths_init();
		hp_send_init();
	}
	hp_policy_init();
}
