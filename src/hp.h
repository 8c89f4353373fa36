/*
 * hp.h
 *    Backend-side declarations shared by the health_pass C files.
 */
#ifndef HP_H
#define HP_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/jsonb.h"

#include "hp_codec.h"

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

/* Verdict reasons, in the order they are reported */
typedef enum HpReason
{
	HP_R_UNKNOWN_KEY = 0,
	HP_R_UNSUPPORTED_ALG,
	HP_R_BAD_SIGNATURE,
	HP_R_KEY_USAGE,
	HP_R_KEY_NOT_VALID,
	HP_R_MISSING_CLAIMS,
	HP_R_NOT_YET_VALID,
	HP_R_EXPIRED,
	HP_R_COUNT
} HpReason;

/* A parsed public key from a DSC, held by the key cache */
typedef struct HpKey HpKey;

/* pass.c */
extern void hp_pass_parse(HealthPass *p, HpCose *c);
extern void hp_raise_decode_error(const HpErr *err, int sqlstate);
extern bytea *hp_bytea(const uint8 *b, size_t len);
extern char *hp_utf8_to_server(const uint8 *s, size_t len, int *outlen);

/* json.c */
extern Jsonb *hp_hcert_to_jsonb(const uint8 *buf, size_t len);

/* keys.c */
extern HpKey *hp_key_get(const uint8 *der, size_t len);
extern void hp_key_release(HpKey *key);
extern bool hp_sig_digest(const HpCose *c, uint8 *out);
extern HpReason hp_key_verify(HpKey *key, const HpCose *c, const uint8 *digest,
							  bool *ok);

/* health_pass.c */
extern int	hp_clock_skew;
extern Oid	hp_relation_oid(const char *relname);

#endif
