/*
 * hp_pass.h
 *    The health_pass.pass type: its on-disk form, parsing a stored pass
 *    into its COSE parts (codec), and the payload as jsonb.  Depends on
 *    codec and common.
 */
#ifndef HP_PASS_H
#define HP_PASS_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/jsonb.h"

#include "codec/hp_codec.h"
#include "common/hp_common.h"

/* On-disk format of health_pass.pass: a format byte, then the bytes */
#define HP_FORMAT_EU_DCC  1		/* COSE_Sign1 of an EU DCC, as received */

typedef struct HealthPass
{
	int32		vl_len_;		/* varlena header */
	uint8		format;
	uint8		data[FLEXIBLE_ARRAY_MEMBER];
} HealthPass;

#define HP_DATA_LEN(p)  (VARSIZE(p) - offsetof(HealthPass, data))
#define DatumGetHealthPassP(d)  ((HealthPass *) PG_DETOAST_DATUM(d))
#define PG_GETARG_PASS_P(n)  DatumGetHealthPassP(PG_GETARG_DATUM(n))

/* pass.c */
extern void hp_pass_parse(HealthPass *p, HpCose *c);
extern char *hp_utf8_to_server(const uint8 *s, size_t len, int *outlen);

/* json.c */
extern Jsonb *hp_hcert_to_jsonb(const uint8 *buf, size_t len);

#endif
