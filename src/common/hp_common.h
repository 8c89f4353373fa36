/*
 * hp_common.h
 *    The few helpers every subsystem of health_pass uses: whether the
 *    library was preloaded, the extension's own catalog objects, and byte
 *    helpers.  Depends on nothing else of health_pass.
 *
 * Subsystems and the direction of their dependencies (docs/architecture.md):
 *
 *    codec  <-  pass  <-  verify            the pass: text to verdict
 *    audit  <-  access                      who reads what, and the record
 *    common <-  every subsystem
 *
 * A file includes headers of its own subsystem, of the subsystems it
 * depends on, and of common; never of a subsystem above it.
 */
#ifndef HP_COMMON_H
#define HP_COMMON_H

#include "postgres.h"

/* common.c */
extern bool hp_preloaded;		/* loaded through shared_preload_libraries */
extern bool hp_shmem_attached;	/* ... and this process attached to our shared memory */
extern void hp_require_preload(void);

/*
 * Top-level statements this backend began: the access hooks count each
 * client statement (a query, a utility statement, each FETCH or Execute);
 * a cache valid for one statement keys on it (issue/keys.c's memo)
 */
extern uint64 hp_statement_count;
extern bytea *hp_bytea(const uint8 *b, size_t len);
extern void hp_sha256(const void *a, size_t alen, const void *b, size_t blen, uint8 *out);

/*
 * SQL health_pass runs through SPI finds no name through the caller's
 * search_path: hp_search_path_pin() sets it to "pg_catalog, pg_temp" at a
 * new GUC nest level (as a function's SET clause would) and returns that
 * level; hp_search_path_restore(level) on success gives the caller's back.
 * An error pops it with the (sub)transaction's abort.
 */
extern int	hp_search_path_pin(void);
extern void hp_search_path_restore(int nest);

/*
 * catalog.c: the extension's objects, found through pg_extension by OID,
 * never by schema name (a schema a superuser renamed is still found)
 */
extern Oid	hp_extension_namespace(void);
extern Oid	hp_extension_owner(void);
extern Oid	hp_extension_relation_oid(const char *relname);

#endif
