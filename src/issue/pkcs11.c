/*
 * pkcs11.c
 *    Signing keys in a PKCS#11 token (key_ref = a pkcs11: URI, RFC 7512).
 */
#include "postgres.h"

#include "issue/hp_signing.h"

void
hp_p11_check_uri(const char *uri)
{
}

HpP11Key *
hp_p11_open(const char *keyname, const char *uri, int alg)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("key: pkcs11: keys are not built yet")));
	return NULL;
}

void
hp_p11_sign(HpP11Key *k, const char *keyname, int alg,
			const uint8 *digest, uint8 *sig, size_t *sig_len)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("sign: pkcs11: keys are not built yet")));
}
