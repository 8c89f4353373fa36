/*
 * revocation.c
 *    The EU gateway's revocation hashes of a pass, and whether any of them
 *    is in health_pass.revocation (docs/design/revocation.md).
 *
 * Three hashes, each SHA-256 truncated to its first 16 bytes:
 *   UCI             the UTF-8 bytes of the certificate entry's "ci", as written
 *   COUNTRYCODEUCI  the CWT's iss (claim 1) followed by that "ci"
 *   SIGNATURE       the COSE_Sign1 signature: for ES256 its first half (r),
 *                   for every other algorithm all of it
 *
 * The lookup reads health_pass.revocation through its hash index on hash
 * (revocation_hash_idx) under the snapshot check() reads the trust list
 * with: one index scan, rescanned for each hash the pass has (one bucket
 * page each; a btree descent costs three or four pages at a million
 * entries).  A hash index keeps only a 32-bit hash code of each key, so an
 * entry it returns is fetched and its bytes compared (row_counts): a pass
 * whose hashes share no code with any entry reads no heap page.  A row
 * counts when its hash bytes and hash_type are those of the pass's hash and
 * it has not expired (expires NULL or >= at).
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "verify/hp_verify.h"

const char *const hp_rev_type_names[HP_REV_NTYPES] = {
	"UCI", "COUNTRYCODEUCI", "SIGNATURE"
};

/* SHA-256 of a || b, truncated into out (HP_REV_HASH_LEN bytes) */
static void
rev_digest(const uint8 *a, size_t alen, const uint8 *b, size_t blen, uint8 *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8		md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (ctx == NULL
		|| EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1
		|| (alen > 0 && EVP_DigestUpdate(ctx, a, alen) != 1)
		|| (blen > 0 && EVP_DigestUpdate(ctx, b, blen) != 1)
		|| EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < HP_REV_HASH_LEN)
	{
		EVP_MD_CTX_free(ctx);
		elog(ERROR, "could not compute SHA-256");
	}
	EVP_MD_CTX_free(ctx);
	memcpy(out, md, HP_REV_HASH_LEN);
}

/* The revocation hashes of a parsed pass */
void
hp_revocation_hashes(const HpCose *c, HpRevHashes *h)
{
	size_t		siglen = c->sig_len;

	memset(h, 0, sizeof(*h));
	if (c->uvci != NULL)
	{
		rev_digest(c->uvci, c->uvci_len, NULL, 0, h->hash[HP_REV_UCI]);
		h->present[HP_REV_UCI] = true;
		if (c->iss != NULL)
		{
			rev_digest(c->iss, c->iss_len, c->uvci, c->uvci_len,
					   h->hash[HP_REV_COUNTRYCODEUCI]);
			h->present[HP_REV_COUNTRYCODEUCI] = true;
		}
	}
	if (c->sig != NULL)
	{
		if (c->has_alg && c->alg_is_int && c->alg == HP_ALG_ES256)
			siglen /= 2;		/* r of r || s */
		rev_digest(c->sig, siglen, NULL, 0, h->hash[HP_REV_SIGNATURE]);
		h->present[HP_REV_SIGNATURE] = true;
	}
}

/* Find health_pass.revocation and its primary key */
void
hp_revocation_ref(HpRevRef *r)
{
	r->relid = hp_extension_relation_oid("revocation");
	r->hash_index = hp_extension_relation_oid("revocation_hash_idx");
	if (!OidIsValid(r->relid) || !OidIsValid(r->hash_index))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("health_pass.revocation or its hash index is missing"),
				 errhint("This library needs the extension at version 0.9.0 or later: ALTER EXTENSION health_pass UPDATE.")));
	r->att_hash = get_attnum(r->relid, "hash");
	r->att_type = get_attnum(r->relid, "hash_type");
	r->att_expires = get_attnum(r->relid, "expires");
	if (r->att_hash == InvalidAttrNumber || r->att_type == InvalidAttrNumber
		|| r->att_expires == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("health_pass.revocation has no column \"hash\", \"hash_type\" or \"expires\"")));
}

/*
 * Whether a found row is an unexpired entry of hash type t with exactly
 * these hash bytes.  A hash index is lossy (it keeps a 32-bit hash code of
 * the key), so the bytes are compared here: at a million entries, a few
 * passes in ten thousand share a hash code with some entry.
 */
static bool
row_counts(TupleTableSlot *slot, const HpRevRef *r, HpRevType t,
		   const uint8 *hash, TimestampTz at)
{
	bool		isnull;
	Datum		d;
	text	   *type;
	bytea	   *stored;

	d = slot_getattr(slot, r->att_hash, &isnull);
	if (isnull)
		return false;
	stored = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(stored) != HP_REV_HASH_LEN
		|| memcmp(VARDATA_ANY(stored), hash, HP_REV_HASH_LEN) != 0)
		return false;
	d = slot_getattr(slot, r->att_type, &isnull);
	if (isnull)
		return false;
	type = DatumGetTextPP(d);
	if (VARSIZE_ANY_EXHDR(type) != strlen(hp_rev_type_names[t])
		|| memcmp(VARDATA_ANY(type), hp_rev_type_names[t], VARSIZE_ANY_EXHDR(type)) != 0)
		return false;
	d = slot_getattr(slot, r->att_expires, &isnull);
	return isnull || DatumGetTimestampTz(d) >= at;
}

/*
 * Is any of the pass's hashes revoked at time at, as snapshot snap sees
 * health_pass.revocation?
 */
bool
hp_revoked(const HpRevRef *r, const HpRevHashes *h, TimestampTz at, Snapshot snap)
{
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key;
	bool		found = false;
	union
	{
		int32		align;
		char		bytes[VARHDRSZ + HP_REV_HASH_LEN];
	}			val;

	rel = table_open(r->relid, AccessShareLock);
	idx = index_open(r->hash_index, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, snap, 1, 0);
	SET_VARSIZE(val.bytes, VARHDRSZ + HP_REV_HASH_LEN);
	for (int t = 0; t < HP_REV_NTYPES && !found; t++)
	{
		if (!h->present[t])
			continue;
		memcpy(val.bytes + VARHDRSZ, h->hash[t], HP_REV_HASH_LEN);
		ScanKeyInit(&key, 1, HTEqualStrategyNumber, F_BYTEAEQ,
					PointerGetDatum(val.bytes));
		index_rescan(scan, &key, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			if (row_counts(slot, r, (HpRevType) t, h->hash[t], at))
			{
				found = true;
				break;
			}
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

PG_FUNCTION_INFO_V1(hp_revocation_hashes_sql);
/* revocation_hashes(p) -> (uci bytea, countrycodeuci bytea, signature bytea) */
Datum
hp_revocation_hashes_sql(PG_FUNCTION_ARGS)
{
	HpCose		c;
	HpRevHashes h;
	TupleDesc	desc;
	Datum		values[HP_REV_NTYPES];
	bool		nulls[HP_REV_NTYPES];

	hp_pass_parse(PG_GETARG_PASS_P(0), &c);
	hp_revocation_hashes(&c, &h);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "revocation_hashes() must return a composite type");
	desc = BlessTupleDesc(desc);
	for (int t = 0; t < HP_REV_NTYPES; t++)
	{
		nulls[t] = !h.present[t];
		values[t] = nulls[t] ? (Datum) 0
			: PointerGetDatum(hp_bytea(h.hash[t], HP_REV_HASH_LEN));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
