/*
 * hp_verify.h
 *    Verifying a pass against the trust list: public keys of the trust
 *    list's certificates (keys.c), verdicts (check.c) and certificate
 *    details (trust.c).  Depends on pass, codec and common.
 */
#ifndef HP_VERIFY_H
#define HP_VERIFY_H

#include "pass/hp_pass.h"

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

/* keys.c */
extern HpKey *hp_key_get(const uint8 *der, size_t len);
extern void hp_key_release(HpKey *key);
extern bool hp_sig_digest(const HpCose *c, uint8 *out);
extern HpReason hp_key_verify(HpKey *key, const HpCose *c, const uint8 *digest,
							  bool *ok);

/* check.c: defines health_pass.clock_skew */
extern void hp_verify_init(void);

#endif
