/*
 * common.c
 *    Whether health_pass was preloaded, byte helpers, and the search_path
 *    its SQL runs under.
 */
#include "postgres.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include "utils/guc.h"

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

/*
 * Pin search_path for the SQL that follows (hp_common.h).  A role that puts
 * a schema of its own before pg_catalog would otherwise have its operators
 * and functions (an =(bigint, integer), a max(bigint), a type named int8)
 * chosen over the built-in ones: run as whoever health_pass runs the SQL
 * as, and deciding what the query answers.
 */
int
hp_search_path_pin(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/* The search_path from before hp_search_path_pin() returned nest */
void
hp_search_path_restore(int nest)
{
	AtEOXact_GUC(true, nest);
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

/*
 * SHA-256 of a || b into out[32] (either part may be empty).  The digest is
 * fetched and its context made once per process: EVP_sha256() in a call
 * fetches it from the provider every time, which costs as much as hashing
 * a short text.
 */
void
hp_sha256(const void *a, size_t alen, const void *b, size_t blen, uint8 *out)
{
	static EVP_MD *md = NULL;
	static EVP_MD_CTX *ctx = NULL;
	unsigned int n = 0;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (ctx == NULL)
		ctx = EVP_MD_CTX_new();
	if (md == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		(alen > 0 && EVP_DigestUpdate(ctx, a, alen) != 1) ||
		(blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1) ||
		EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != 32)
	{
		ERR_clear_error();
		elog(ERROR, "health_pass could not compute a SHA-256 digest");
	}
}
