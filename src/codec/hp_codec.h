/*
 * hp_codec.h
 *    The pure decoding layer of health_pass: base45, zlib, CBOR, COSE/CWT.
 *
 * Nothing declared here allocates memory through PostgreSQL or raises an
 * error: every function reports failure through an HpErr, so the same code
 * runs in the backend, in inspect() (which must never raise) and under the
 * libFuzzer harness.  Every decoder is bounded by the limits below.
 */
#ifndef HP_CODEC_H
#define HP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Documented limits (see README, "Limits") */
#define HP_MAX_TEXT        16384	/* characters of HC1: text accepted */
#define HP_MAX_INFLATED    65536	/* bytes a zlib stream may inflate to */
#define HP_MAX_DEPTH       16		/* CBOR nesting depth, tags included */
#define HP_MAX_ITEMS       4096		/* CBOR data items in one message */
#define HP_MAX_COUNT       1024		/* elements of one CBOR array or map */
#define HP_MAX_TAGS        3		/* tags stacked on one CBOR item */
#define HP_MAX_MAP_KEYS    64		/* entries of a map in headers, claims, payload */

/* Decoding stages, in order; a failure names the first that failed */
typedef enum HpStage
{
	HP_STAGE_NONE = 0,
	HP_STAGE_PREFIX,
	HP_STAGE_BASE45,
	HP_STAGE_ZLIB,
	HP_STAGE_COSE,
	HP_STAGE_CWT,
	HP_STAGE_HCERT
} HpStage;

typedef struct HpErr
{
	HpStage		stage;
	char		msg[160];
} HpErr;

/* Kinds of certificate; values match the key_usage bits of the trust list */
typedef enum HpKind
{
	HP_KIND_NONE = 0,
	HP_KIND_VACCINATION = 1,
	HP_KIND_TEST = 2,
	HP_KIND_RECOVERY = 4
} HpKind;

/* COSE algorithm identifiers we know by name */
#define HP_ALG_ES256   (-7)
#define HP_ALG_PS256   (-37)

/* A parsed COSE_Sign1 / CWT / hcert; all pointers point into the message */
typedef struct HpCose
{
	const uint8_t *prot;		/* protected header bstr contents */
	size_t		prot_len;
	const uint8_t *payload;		/* payload bstr contents (the CWT) */
	size_t		payload_len;
	const uint8_t *sig;
	size_t		sig_len;
	const uint8_t *kid;			/* NULL when no kid in either header */
	size_t		kid_len;
	bool		kid_protected;
	bool		has_alg;		/* alg from the protected header only */
	bool		alg_is_int;
	int64_t		alg;
	const uint8_t *iss;			/* claim 1, text */
	size_t		iss_len;
	bool		has_iat;
	bool		has_exp;
	int64_t		iat;			/* seconds since the epoch */
	int64_t		exp;
	const uint8_t *hcert;		/* encoded item of claim -260 -> 1 */
	size_t		hcert_len;
	int			kind;			/* HpKind of the first of v, t, r present */
	const uint8_t *uvci;		/* "ci" of the first entry, if any */
	size_t		uvci_len;
} HpCose;

extern const char *hp_stage_name(HpStage stage);
extern void hp_seterr(HpErr *err, HpStage stage, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* base45.c */
extern size_t hp_base45_decoded_max(size_t len);
extern bool hp_base45_decode(const char *in, size_t len, uint8_t *out,
							 size_t *outlen, HpErr *err);
extern size_t hp_base45_encoded_len(size_t len);
extern void hp_base45_encode(const uint8_t *in, size_t len, char *out);

/* compress.c */
extern bool hp_inflate(const uint8_t *in, size_t len, uint8_t *out,
					   size_t cap, size_t *outlen, HpErr *err);
extern bool hp_deflate(const uint8_t *in, size_t len, uint8_t *out,
					   size_t *outlen);
extern size_t hp_deflate_bound(size_t len);

/* cose.c */
extern bool hp_cose_parse(const uint8_t *buf, size_t len, HpCose *out,
						  HpErr *err);
extern bool hp_decode_text(const char *text, size_t len, uint8_t *b45buf,
						   uint8_t *zbuf, const uint8_t **cose,
						   size_t *cose_len, HpCose *out, HpErr *err);
extern const char *hp_alg_name(const HpCose *c);
extern const char *hp_kind_name(int kind);

#endif
