/*
 * settings.c
 *    The audit subsystem's settings, and its start: the writers are
 *    registered as background workers when the library is preloaded.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "audit/hp_audit.h"

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

/* health_pass.denial_interval: seconds a (role, table, reason) denial is
 * counted after it was recorded, before a summary with the count (0: every
 * denial recorded) */
int			hp_denial_interval_s = 10;

/* health_pass.denial_slots: (role, table, reason) keys counted at a time */
int			hp_denial_slots = 1024;

/* health_pass.primary_conninfo: on a standby, where its audit records go
 * (libpq connection string; a password belongs in a password file) */
char	   *hp_primary_conninfo = NULL;

/* health_pass.node_name: how the primary's records name this standby
 * ("": cluster_name, else "standby") */
char	   *hp_node_name = NULL;

/* A node name is letters, digits and "_.:-", 1 to 63 of them, or empty */
static bool
hp_check_node_name(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' ||
		hp_node_name_ok(*newval, strlen(*newval)))
		return true;
	GUC_check_errdetail("A node name is 1 to %d letters, digits, \"_\", \".\", \":\" or \"-\".",
						HP_NODE_MAX);
	return false;
}

/* Define the settings; register the writers when preloaded */
void
hp_audit_init(void)
{
	DefineCustomBoolVariable("health_pass.audit_sync",
							 "Hold rows of protected tables until their audit records are committed and flushed to disk.",
							 NULL, &hp_audit_sync, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("health_pass.audit_timeout",
							"Longest wait for the audit writer before a read fails.",
							NULL, &hp_audit_timeout_ms, 5000, 10, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("health_pass.denial_interval",
							"After a denied read is recorded, further denials of the same role, table and reason are counted for this long, then recorded as one summary with the count (0: record every denial).",
							NULL, &hp_denial_interval_s, 10, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	if (!hp_preloaded)
		return;
	DefineCustomStringVariable("health_pass.primary_conninfo",
							   "On a standby: connection string of the primary, where the audit records of this standby's reads are written.",
							   "Empty: protected tables cannot be read on a standby. The role it connects as needs EXECUTE on health_pass._audit_ship() and health_pass._audit_quota_admit() there.",
							   &hp_primary_conninfo, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("health_pass.node_name",
							   "How the primary's audit records name this standby (empty: cluster_name, else \"standby\").",
							   NULL, &hp_node_name, "",
							   PGC_SIGHUP, 0, hp_check_node_name, NULL, NULL);
	DefineCustomIntVariable("health_pass.audit_queue_size",
							"Audit records each database's queue holds.",
							NULL, &hp_queue_size, 8192, 64, 1024 * 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("health_pass.max_databases",
							"Databases that can audit reads at the same time (one queue and writer each).",
							"Each database's writer is a background worker started with the server: max_worker_processes must hold them and at least one more.",
							&hp_max_databases, 4, 1, 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("health_pass.denial_slots",
							"(role, table, reason) keys whose denials can be counted at the same time; beyond them every denial is recorded.",
							NULL, &hp_denial_slots, 1024, 16, 1024 * 1024,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	hp_writer_register();
}
