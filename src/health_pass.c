/*
 * health_pass.c
 *    Module entry point and settings.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "hp.h"

PG_MODULE_MAGIC;

/* health_pass.clock_skew: seconds of tolerance on iat and exp */
int			hp_clock_skew = 0;

void		_PG_init(void);

/* Define settings; works whether or not the library is preloaded */
void
_PG_init(void)
{
	DefineCustomIntVariable("health_pass.clock_skew",
							"Seconds of tolerance when checking iat and exp.",
							NULL,
							&hp_clock_skew,
							0, 0, 86400,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("health_pass");
}
