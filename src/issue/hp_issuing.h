/*
 * hp_issuing.h
 *    Issuing passes (issue.c, uvci.c, schema.c): what the files of the
 *    issue subsystem share beyond the signing interface (hp_issue.h).
 */
#ifndef HP_ISSUING_H
#define HP_ISSUING_H

#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "issue/hp_issue.h"

/* schema.c: the DCC schema rules of schema_errors(), as text[] */
extern ArrayType *hp_schema_errors(Jsonb *jb);
/*
 * What hp_schema_check() found of a payload it has no errors for: the kind
 * of its one entry ('v', 't' or 'r') and that entry's ci (in the jsonb, in
 * the server's encoding)
 */
typedef struct HpSchemaFound
{
	char		kind;
	const char *ci;
	int			ci_len;
} HpSchemaFound;

/* ... NULL when there are none, else the messages (no array built) */
extern ArrayBuildState *hp_schema_check(Jsonb *jb, HpSchemaFound *found);

/* schema.c: a small integer read from a numeric's stored form, or false */
extern bool hp_numeric_small_integer(Numeric num, int64 *v);
/* uvci.c: why a ci is not a UVCI issue() may sign for country, or NULL */
extern const char *hp_uvci_problem(const char *u, size_t len, const char *country);

#endif
