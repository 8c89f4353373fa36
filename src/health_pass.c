/*
 * health_pass.c
 *    Module entry point: each subsystem defines its own settings and, when
 *    the library is preloaded, installs its hooks and background workers.
 *    The layout and the direction of dependencies: docs/architecture.md.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "access/hp_access.h"
#include "issue/hp_issue.h"
#include "verify/hp_verify.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	hp_preloaded = process_shared_preload_libraries_in_progress;
	hp_verify_init();
	hp_audit_init();
	hp_access_init();
	hp_issue_init();
	MarkGUCPrefixReserved("health_pass");
}
