/*
 * chain.c
 *    The audit log's hash chain: SHA-256 of a record chained to the hash
 *    of the record before it.  The writer computes it when it writes a
 *    record, audit_verify() when it checks one; both call this one function.
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "audit/hp_audit.h"

/* Feed one field to the digest: 4-byte big-endian length, then bytes */
static void
hp_hash_field(EVP_MD_CTX *ctx, const char *s)
{
	uint8		len[4];
	size_t		slen = s ? strlen(s) : 0;
	uint32		n = s ? (uint32) slen : 0xFFFFFFFF;

	len[0] = n >> 24;
	len[1] = n >> 16;
	len[2] = n >> 8;
	len[3] = n;
	EVP_DigestUpdate(ctx, len, 4);
	if (s)
		EVP_DigestUpdate(ctx, s, slen);
}

/* Feed a 64-bit integer, big-endian */
static void
hp_hash_int(EVP_MD_CTX *ctx, int64 v)
{
	uint8		b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8) ((uint64) v >> (56 - 8 * i));
	EVP_DigestUpdate(ctx, b, 8);
}

/*
 * SHA-256 of a record chained to the previous hash: the same function the
 * writer uses to write and audit_verify() uses to check.  NULL fields hash
 * differently from empty ones.
 */
void
hp_record_hash(const uint8 *prev, const HpEntry *e, uint8 *out)
{
	/* one context and one fetched SHA-256 per process, reused per record */
	static EVP_MD_CTX *ctx = NULL;
	static EVP_MD *sha256 = NULL;
	unsigned int len = 0;

	if (ctx == NULL)
		ctx = EVP_MD_CTX_new();
	if (sha256 == NULL)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (ctx == NULL || sha256 == NULL ||
		EVP_DigestInit_ex(ctx, sha256, NULL) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not start a SHA-256 digest for the audit chain")));
	EVP_DigestUpdate(ctx, prev, 32);
	hp_hash_int(ctx, e->id);
	hp_hash_int(ctx, e->logged_at);
	hp_hash_field(ctx, e->session_user_name);
	hp_hash_field(ctx, e->current_user_name);
	hp_hash_field(ctx, e->client_addr);
	hp_hash_field(ctx, e->application_name);
	hp_hash_int(ctx, e->backend_pid);
	hp_hash_int(ctx, e->statement_id);
	hp_hash_int(ctx, e->relid);
	hp_hash_field(ctx, e->subject);
	hp_hash_field(ctx, e->purpose);
	hp_hash_field(ctx, hp_outcome_name((HpOutcome) e->outcome));
	hp_hash_field(ctx, e->reason);
	/* a shipped record's node; a local record hashes as before 0.10.0 */
	if (e->node)
		hp_hash_field(ctx, e->node);
	EVP_DigestFinal_ex(ctx, out, &len);
}
