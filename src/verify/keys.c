/*
 * keys.c
 *    Public keys of document signer certificates and COSE signature checks.
 *
 * The key cache maps the exact DER bytes of a certificate to its parsed key
 * and a ready verify context.  It is content-addressed: an entry is found
 * only by the very bytes it was parsed from (hash, then full comparison), so
 * it can never change a result; whether a certificate is trusted is always
 * decided by the trust list row read under the caller's snapshot.  The
 * cache lives for the backend, holds at most HP_KEY_CACHE_MAX entries and
 * is emptied whole when full.
 */
#include "postgres.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "verify/hp_verify.h"

#define HP_KEY_CACHE_MAX 1024

typedef enum HpKeyType
{
	HP_KEY_UNSUPPORTED,
	HP_KEY_EC_P256,
	HP_KEY_RSA
} HpKeyType;

typedef struct HpKeyTag
{
	uint32		hash;
	uint32		len;
} HpKeyTag;

struct HpKey
{
	HpKeyTag	tag;			/* hash table key; must be first */
	uint8	   *der;			/* copy of the certificate, for comparison */
	EVP_PKEY   *pkey;
	EVP_PKEY_CTX *vctx;			/* verify context: SHA-256, PSS for RSA */
	HpKeyType	type;
	bool		cached;
};

static HTAB *key_cache = NULL;
static EVP_MD *sha256_md = NULL;
static EVP_MD_CTX *md_ctx = NULL;

/* Free the OpenSSL objects and the DER copy of a key */
static void
key_free_contents(HpKey *k)
{
	EVP_PKEY_CTX_free(k->vctx);
	EVP_PKEY_free(k->pkey);
	if (k->der)
		pfree(k->der);
	k->vctx = NULL;
	k->pkey = NULL;
	k->der = NULL;
}

/* Parse DER into k (type, pkey, verify context); false if not a certificate */
static bool
key_parse(HpKey *k, const uint8 *der, size_t len)
{
	const unsigned char *p = der;
	X509	   *x = d2i_X509(NULL, &p, (long) len);
	EVP_PKEY_CTX *ctx;

	k->pkey = NULL;
	k->vctx = NULL;
	k->type = HP_KEY_UNSUPPORTED;
	if (x == NULL || p != der + len)
	{
		X509_free(x);
		ERR_clear_error();
		return false;
	}
	k->pkey = X509_get_pubkey(x);
	X509_free(x);
	if (k->pkey == NULL)
	{
		ERR_clear_error();
		return false;
	}
	if (EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_EC)
	{
		char		group[64];
		size_t		glen;

		if (EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME,
										   group, sizeof(group), &glen) &&
			strcmp(group, "prime256v1") == 0)
			k->type = HP_KEY_EC_P256;
	}
	else if (EVP_PKEY_get_base_id(k->pkey) == EVP_PKEY_RSA &&
			 EVP_PKEY_get_bits(k->pkey) >= 2048)
		k->type = HP_KEY_RSA;

	if (k->type != HP_KEY_UNSUPPORTED)
	{
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
		if (ctx == NULL ||
			EVP_PKEY_verify_init(ctx) != 1 ||
			EVP_PKEY_CTX_set_signature_md(ctx, sha256_md) != 1 ||
			(k->type == HP_KEY_RSA &&
			 (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
			  EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) != 1 ||
			  EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, sha256_md) != 1)))
		{
			EVP_PKEY_CTX_free(ctx);
			k->type = HP_KEY_UNSUPPORTED;
		}
		else
			k->vctx = ctx;
	}
	ERR_clear_error();
	return true;
}

/* Create the process-wide digest objects and the cache on first use */
static void
keys_init(void)
{
	HASHCTL		ctl;

	if (sha256_md == NULL)
	{
		sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
		md_ctx = EVP_MD_CTX_new();
		if (sha256_md == NULL || md_ctx == NULL)
			elog(ERROR, "could not initialise SHA-256 in OpenSSL");
	}
	if (key_cache == NULL)
	{
		ctl.keysize = sizeof(HpKeyTag);
		ctl.entrysize = sizeof(HpKey);
		ctl.hcxt = TopMemoryContext;
		key_cache = hash_create("health_pass key cache", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

/* Empty the cache, freeing every key */
static void
key_cache_reset(void)
{
	HASH_SEQ_STATUS st;
	HpKey	   *k;

	hash_seq_init(&st, key_cache);
	while ((k = hash_seq_search(&st)) != NULL)
		key_free_contents(k);
	hash_destroy(key_cache);
	key_cache = NULL;
	keys_init();
}

/*
 * The key of the certificate der[0..len), from the cache when it holds the
 * same bytes.  NULL when the bytes are not a certificate.  A key not kept
 * in the cache (hash collision) must be given back with hp_key_release.
 */
HpKey *
hp_key_get(const uint8 *der, size_t len)
{
	HpKeyTag	tag;
	HpKey	   *k;
	bool		found;
	uint8	   *copy;

	keys_init();
	tag.hash = hash_bytes(der, (int) len);
	tag.len = (uint32) len;
	k = hash_search(key_cache, &tag, HASH_FIND, NULL);
	if (k != NULL)
	{
		if (memcmp(k->der, der, len) == 0)
			return k;
		/* a collision: parse a private copy */
		k = palloc0(sizeof(HpKey));
		if (!key_parse(k, der, len))
		{
			pfree(k);
			return NULL;
		}
		return k;
	}
	if (hash_get_num_entries(key_cache) >= HP_KEY_CACHE_MAX)
		key_cache_reset();
	copy = MemoryContextAlloc(TopMemoryContext, len);
	memcpy(copy, der, len);
	k = hash_search(key_cache, &tag, HASH_ENTER, &found);
	k->der = copy;
	k->cached = true;
	if (!key_parse(k, der, len))
	{
		key_free_contents(k);
		hash_search(key_cache, &tag, HASH_REMOVE, NULL);
		return NULL;
	}
	return k;
}

/* Give back a key from hp_key_get */
void
hp_key_release(HpKey *key)
{
	if (key != NULL && !key->cached)
	{
		key_free_contents(key);
		pfree(key);
	}
}

/* Feed a CBOR byte-string head for len bytes to the digest */
static int
digest_bstr_head(size_t len)
{
	uint8		h[9];
	int			n;

	if (len < 24)
		h[0] = 0x40 | (uint8) len, n = 1;
	else if (len < 0x100)
		h[0] = 0x58, h[1] = (uint8) len, n = 2;
	else if (len < 0x10000)
		h[0] = 0x59, h[1] = (uint8) (len >> 8), h[2] = (uint8) len, n = 3;
	else
	{
		h[0] = 0x5a;
		for (int i = 0; i < 4; i++)
			h[1 + i] = (uint8) (len >> (24 - 8 * i));
		n = 5;
	}
	return EVP_DigestUpdate(md_ctx, h, n);
}

/* SHA-256 of the COSE Sig_structure ["Signature1", prot, h'', payload] */
bool
hp_sig_digest(const HpCose *c, uint8 *out)
{
	static const uint8 head[] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'};
	static const uint8 empty_aad = 0x40;
	unsigned int olen;

	keys_init();
	if (EVP_DigestInit_ex(md_ctx, sha256_md, NULL) == 1 &&
		EVP_DigestUpdate(md_ctx, head, sizeof(head)) == 1 &&
		digest_bstr_head(c->prot_len) == 1 &&
		EVP_DigestUpdate(md_ctx, c->prot, c->prot_len) == 1 &&
		EVP_DigestUpdate(md_ctx, &empty_aad, 1) == 1 &&
		digest_bstr_head(c->payload_len) == 1 &&
		EVP_DigestUpdate(md_ctx, c->payload, c->payload_len) == 1 &&
		EVP_DigestFinal_ex(md_ctx, out, &olen) == 1 && olen == 32)
		return true;
	ERR_clear_error();
	return false;
}

/* Append a DER INTEGER for the big-endian unsigned n[0..32); 0 if zero */
static int
der_integer(const uint8 *n, uint8 *out)
{
	int			i = 0;
	int			o = 0;

	while (i < 32 && n[i] == 0)
		i++;
	if (i == 32)
		return 0;
	out[o++] = 0x02;
	out[o++] = (uint8) (32 - i + ((n[i] & 0x80) ? 1 : 0));
	if (n[i] & 0x80)
		out[o++] = 0x00;
	memcpy(out + o, n + i, 32 - i);
	return o + 32 - i;
}

/*
 * Verify the pass signature with key.  The algorithm comes from the
 * protected header only and must match the key: ES256 with a P-256 key and
 * a raw 64-byte r||s; PS256 with RSA >= 2048 bits, PSS, SHA-256, MGF1
 * SHA-256 and a 32-byte salt.  digest is hp_sig_digest(c), computed once by
 * the caller however many keys it tries.  Returns the reason when *ok is
 * false.
 */
HpReason
hp_key_verify(HpKey *key, const HpCose *c, const uint8 *digest, bool *ok)
{
	int			rc;

	*ok = false;
	if (!c->has_alg || !c->alg_is_int ||
		(c->alg != HP_ALG_ES256 && c->alg != HP_ALG_PS256))
		return HP_R_UNSUPPORTED_ALG;
	if ((c->alg == HP_ALG_ES256 && key->type != HP_KEY_EC_P256) ||
		(c->alg == HP_ALG_PS256 && key->type != HP_KEY_RSA))
		return HP_R_BAD_SIGNATURE;
	if (c->alg == HP_ALG_ES256)
	{
		uint8		der[2 + 2 * 35];
		int			rl,
					sl;

		if (c->sig_len != 64)
			return HP_R_BAD_SIGNATURE;
		rl = der_integer(c->sig, der + 2);
		sl = rl ? der_integer(c->sig + 32, der + 2 + rl) : 0;
		if (rl == 0 || sl == 0)
			return HP_R_BAD_SIGNATURE;
		der[0] = 0x30;
		der[1] = (uint8) (rl + sl);
		rc = EVP_PKEY_verify(key->vctx, der, 2 + rl + sl, digest, 32);
	}
	else
	{
		if (c->sig_len != (size_t) EVP_PKEY_get_size(key->pkey))
			return HP_R_BAD_SIGNATURE;
		rc = EVP_PKEY_verify(key->vctx, c->sig, c->sig_len, digest, 32);
	}
	if (rc != 1)
	{
		ERR_clear_error();
		return HP_R_BAD_SIGNATURE;
	}
	*ok = true;
	return HP_R_COUNT;
}
