/*
 * health_pass.c
 *    Module entry point and settings.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "hp.h"
#include "hp_access.h"

PG_MODULE_MAGIC;

/* health_pass.clock_skew: seconds of tolerance on iat and exp */
int			hp_clock_skew = 0;

/* health_pass.purpose: why this session reads protected tables */
char	   *hp_purpose = NULL;

/* health_pass.audit_sync: rows wait until their records are durable */
bool		hp_audit_sync = false;

/* health_pass.audit_timeout: longest wait for the audit writer, in ms */
int			hp_audit_timeout_ms = 5000;

/* health_pass.audit_queue_size: records per database queue */
int			hp_queue_size = 8192;

/* health_pass.max_databases: databases that can audit at the same time;
 * each takes one of max_worker_processes for good (its writer), so the
 * default leaves a default server (8) room for parallel query */
int			hp_max_databases = 4;

/* health_pass.quota_capacity: subjects the quota counters can hold */
int			hp_quota_capacity = 100000;

/* health_pass.audit_superusers: audit reads by roles that bypass the gate */
bool		hp_audit_superusers = true;

/* health_pass.denial_interval: seconds a (role, table, reason) denial is
 * counted after it was recorded, before a summary with the count (0: every
 * denial recorded) */
int			hp_denial_interval_s = 10;

/* health_pass.denial_slots: (role, table, reason) keys counted at a time */
int			hp_denial_slots = 1024;

/* Loaded through shared_preload_libraries (hooks and shared memory on) */
bool		hp_preloaded = false;

void		_PG_init(void);

/*
 * OID of relation relname of the extension's schema, or InvalidOid when it
 * does not exist.  Found through pg_extension.extnamespace, not by the
 * schema's name: a schema a superuser renamed is still found.
 */
Oid
hp_relation_oid(const char *relname)
{
	return hp_extension_relation_oid(relname);
}

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

/* Define settings; hooks and shared memory only when preloaded */
void
_PG_init(void)
{
	DefineCustomIntVariable("health_pass.clock_skew",
							"Seconds of tolerance when checking iat and exp.",
							NULL, &hp_clock_skew, 0, 0, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("health_pass.purpose",
							   "Why this session reads protected tables; matched against access rules.",
							   NULL, &hp_purpose, "",
							   PGC_USERSET, 0, hp_check_purpose, NULL, NULL);
	DefineCustomBoolVariable("health_pass.audit_sync",
							 "Hold rows of protected tables until their audit records are committed and flushed to disk.",
							 NULL, &hp_audit_sync, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("health_pass.audit_timeout",
							"Longest wait for the audit writer before a read fails.",
							NULL, &hp_audit_timeout_ms, 5000, 10, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomBoolVariable("health_pass.audit_superusers",
							 "Audit every row of a protected table that a superuser or a role with BYPASSRLS reads.",
							 NULL, &hp_audit_superusers, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("health_pass.denial_interval",
							"After a denied read is recorded, further denials of the same role, table and reason are counted for this long, then recorded as one summary with the count (0: record every denial).",
							NULL, &hp_denial_interval_s, 10, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("health_pass.audit_queue_size",
								"Audit records each database's queue holds.",
								NULL, &hp_queue_size, 8192, 64, 1024 * 1024,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomIntVariable("health_pass.max_databases",
								"Databases that can audit reads at the same time (one queue and writer each).",
								"Each database's writer is a background worker started with the server: max_worker_processes must hold them and at least one more.",
								&hp_max_databases, 4, 1, 1024,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomIntVariable("health_pass.quota_capacity",
								"Distinct (role, table, subject) reads the quota counters hold.",
								NULL, &hp_quota_capacity, 100000, 1000, 10 * 1000 * 1000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomIntVariable("health_pass.denial_slots",
								"(role, table, reason) keys whose denials can be counted at the same time; beyond them every denial is recorded.",
								NULL, &hp_denial_slots, 1024, 16, 1024 * 1024,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		hp_preloaded = true;
		hp_writer_register();
		hp_shmem_request();
		hp_gate_init();
		hp_plan_init();
		hp_paths_init();
		hp_send_init();
	}
	hp_policy_init();
	MarkGUCPrefixReserved("health_pass");
}
