/*
 * common.c
 *    Whether health_pass was preloaded, and byte helpers.
 */
#include "postgres.h"

#include "common/hp_common.h"

/* Loaded through shared_preload_libraries (hooks and shared memory on) */
bool		hp_preloaded = false;

/* This process attached to health_pass's shared memory (access/shmem.c) */
bool		hp_shmem_attached = false;

/* Top-level statements begun (counted by access/plan.c and access/gate.c) */
uint64		hp_statement_count = 0;

/* Raise unless the library was preloaded (hooks and shared memory exist) */
void
hp_require_preload(void)
{
	if (!hp_preloaded || !hp_shmem_attached)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("health_pass must be loaded by shared_preload_libraries"),
				 errhint("Add health_pass to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* A bytea holding a copy of b[0..len) */
bytea *
hp_bytea(const uint8 *b, size_t len)
{
	bytea	   *r = palloc(VARHDRSZ + len);

	SET_VARSIZE(r, VARHDRSZ + len);
	memcpy(VARDATA(r), b, len);
	return r;
}
