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
 *
 * In front of the probes, each backend keeps a Bloom filter of every hash
 * physically in the table (every tuple version, read with SnapshotAny: a
 * superset of what any snapshot sees).  "Not in the filter" is an answer
 * only while the filter is current, and currency is proven without trusting
 * invalidation messages: every insertion into a hash index writes the
 * index's metapage and, for a WAL-logged index, sets its LSN, under the
 * metapage's exclusive lock, before the inserting transaction can commit.
 * The filter remembers the metapage LSN read before its build (and the
 * relfilenodes); a check reads the LSN again after its snapshot was taken.
 * Any row that snapshot sees was indexed before, so an unchanged LSN means
 * no row the filter lacks.  When the index is not WAL-logged in this
 * transaction (wal_level minimal, new relfilenode) or its LSN is zero, the
 * filter is not used.  A stale filter is rebuilt at once for a small table,
 * else after HP_REV_STABLE_CHECKS checks that found the LSN unchanged (the
 * probes answer meanwhile), so a table that changes all the time costs
 * probes, not rebuilds.  docs/design/revocation.md has the argument.
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/genam.h"
#include "access/hash.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "verify/hp_verify.h"

const char *const hp_rev_type_names[HP_REV_NTYPES] = {
	"UCI", "COUNTRYCODEUCI", "SIGNATURE"
};

/* SHA-256 of a || b, truncated into out (HP_REV_HASH_LEN bytes) */
static void
rev_digest(const uint8 *a, size_t alen, const uint8 *b, size_t blen, uint8 *out)
{
	uint8		md[32];

	hp_sha256(a, alen, b, blen, md);
	memcpy(out, md, HP_REV_HASH_LEN);
}

/* The revocation hashes of a parsed pass */
void
hp_revocation_hashes(const HpCose *c, HpRevHashes *h)
{
	hp_revocation_hashes_of(c, HP_REV_ALL_TYPES, h);
}

/*
 * Those of its hashes whose type is in types (bit 1 << HpRevType): a
 * revocation check needs no hash of a type the table holds no entry of
 * (hp_revscan_types())
 */
void
hp_revocation_hashes_of(const HpCose *c, uint32 types, HpRevHashes *h)
{
	size_t		siglen = c->sig_len;

	memset(h, 0, sizeof(*h));
	if (c->uvci != NULL && (types & (1u << HP_REV_UCI)))
	{
		rev_digest(c->uvci, c->uvci_len, NULL, 0, h->hash[HP_REV_UCI]);
		h->present[HP_REV_UCI] = true;
	}
	if (c->uvci != NULL && (types & (1u << HP_REV_COUNTRYCODEUCI)))
	{
		if (c->iss != NULL)
		{
			rev_digest(c->iss, c->iss_len, c->uvci, c->uvci_len,
					   h->hash[HP_REV_COUNTRYCODEUCI]);
			h->present[HP_REV_COUNTRYCODEUCI] = true;
		}
	}
	/*
	 * Absent when there are no bytes to hash (an empty signature, or one
	 * byte under ES256): the digest of nothing would be one hash shared by
	 * every such pass
	 */
	if (c->sig != NULL && (types & (1u << HP_REV_SIGNATURE)))
	{
		if (c->has_alg && c->alg_is_int && c->alg == HP_ALG_ES256)
			siglen /= 2;		/* r of r || s */
		if (siglen > 0)
		{
			rev_digest(c->sig, siglen, NULL, 0, h->hash[HP_REV_SIGNATURE]);
			h->present[HP_REV_SIGNATURE] = true;
		}
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

/* The per-backend Bloom filter (see the header comment) */
#define HP_REV_SMALL_TABLE		100000	/* tuples: rebuilt at once */
#define HP_REV_STABLE_CHECKS	256 /* checks at one LSN before a rebuild */

typedef struct RevFilter
{
	bool		valid;
	Oid			relid;
	RelFileNode heap_node;
	RelFileNode index_node;
	XLogRecPtr	lsn;			/* metapage LSN read before the build */
	uint64	   *words;			/* one 64-bit block per key, 4 bits set */
	uint32		mask;			/* number of words - 1 (a power of two) */
	uint32		types;			/* 1 << HpRevType of every type a tuple has */
	Oid			types_index;	/* an index on hash_type when built, or 0 */
	AttrNumber	types_att;		/* hash_type's column number then */
	XLogRecPtr	seen_lsn;		/* LSN the stale checks below saw */
	uint32		seen_checks;
} RevFilter;

static RevFilter filter;

/* The filter's word and bits of a hash (SHA-256 output: uniform bytes) */
static inline uint64
filter_bits(const uint8 *h, uint32 *word)
{
	*word = ((uint32) h[0] | (uint32) h[1] << 8 | (uint32) h[2] << 16
			 | (uint32) h[3] << 24) & filter.mask;
	return (UINT64CONST(1) << (h[4] & 63)) | (UINT64CONST(1) << (h[5] & 63))
		| (UINT64CONST(1) << (h[6] & 63)) | (UINT64CONST(1) << (h[7] & 63));
}

/*
 * The LSN of the hash index's metapage, or InvalidXLogRecPtr when it cannot
 * vouch for the index's content (not WAL-logged, or never logged)
 */
static XLogRecPtr
index_lsn(Relation rel, Relation idx, double *ntuples)
{
	Buffer		buf;
	Page		page;
	XLogRecPtr	lsn;

	if (!RelationNeedsWAL(idx) || !RelationNeedsWAL(rel))
		return InvalidXLogRecPtr;
	buf = ReadBuffer(idx, HASH_METAPAGE);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	lsn = PageGetLSN(page);
	*ntuples = HashPageGetMeta(page)->hashm_ntuples;
	UnlockReleaseBuffer(buf);
	return lsn;
}

/*
 * An index of rel with column att (hash_type), or InvalidOid.  While one
 * exists, an UPDATE of the column is never HOT, so it inserts into the hash
 * index too and moves its LSN: the filter's types stay current with its
 * hashes.  The same index must still be there when they are used; one
 * dropped and made again (another OID) may have let HOT updates through in
 * between.
 */
static Oid
hp_type_index(Relation rel, AttrNumber att)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		HeapTuple	it = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index ix;

		if (!HeapTupleIsValid(it))
			continue;
		ix = (Form_pg_index) GETSTRUCT(it);

		/*
		 * Only a valid index: while CREATE INDEX CONCURRENTLY builds one,
		 * transactions that opened the table before it existed may still
		 * update hash_type HOT (a reviewer's sequence); once it is valid,
		 * they have all ended
		 */
		for (int k = 0; k < ix->indnatts && !OidIsValid(found) &&
			 ix->indisvalid && ix->indisready && ix->indislive; k++)
			if (ix->indkey.values[k] == att)
				found = lfirst_oid(lc);
		ReleaseSysCache(it);
		if (OidIsValid(found))
			break;
	}
	list_free(indexes);
	return found;
}

/* Build the filter from every tuple of the table; lsn was read before */
static void
filter_build(const HpRevRef *r, Relation rel, Relation idx, XLogRecPtr lsn,
			 double ntuples)
{
	TableScanDesc scan;
	TupleTableSlot *slot;
	uint64		want = (uint64) Max(ntuples, (double) rel->rd_rel->reltuples);
	uint32		nwords = 64;

	filter.valid = false;
	/* 16 bits a key: under 1% false positives at the estimate */
	/* (at most 32 MB: past 16 million entries the false positives grow) */
	while (nwords < want / 4 + 1 && nwords < ((uint32) 1 << 22))
		nwords <<= 1;
	if (filter.words == NULL || filter.mask + 1 != nwords)
	{
		if (filter.words != NULL)
		{
			pfree(filter.words);
			filter.words = NULL;
		}
		filter.words = MemoryContextAllocHuge(TopMemoryContext, (Size) nwords * sizeof(uint64));
		filter.mask = nwords - 1;
	}
	memset(filter.words, 0, (Size) nwords * sizeof(uint64));

	filter.types = 0;
	filter.types_index = hp_type_index(rel, r->att_type);
	filter.types_att = r->att_type;

	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, SnapshotAny, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, r->att_hash, &isnull);
		bytea	   *b;
		uint32		w;
		uint64		bits;

		if (isnull)
			continue;
		b = DatumGetByteaPP(d);
		if (VARSIZE_ANY_EXHDR(b) < 8)
			continue;			/* never equal to a 16-byte hash */
		bits = filter_bits((const uint8 *) VARDATA_ANY(b), &w);
		filter.words[w] |= bits;
		/* its type (one that is none of the three never counts: row_counts) */
		d = slot_getattr(slot, r->att_type, &isnull);
		if (!isnull)
		{
			text	   *type = DatumGetTextPP(d);

			for (int t = 0; t < HP_REV_NTYPES; t++)
				if (VARSIZE_ANY_EXHDR(type) == strlen(hp_rev_type_names[t]) &&
					memcmp(VARDATA_ANY(type), hp_rev_type_names[t], VARSIZE_ANY_EXHDR(type)) == 0)
					filter.types |= 1u << t;
		}
		CHECK_FOR_INTERRUPTS();
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);

	filter.relid = r->relid;
	filter.heap_node = rel->rd_node;
	filter.index_node = idx->rd_node;
	filter.lsn = lsn;
	filter.valid = true;
	elog(DEBUG1, "health_pass: revocation filter built: %u words, index LSN %X/%X",
		 nwords, LSN_FORMAT_ARGS(lsn));
}

/*
 * Whether the filter is current for the table as a snapshot taken before
 * this call sees it, so that it may answer for that snapshot; may rebuild
 * it first.  checks is how many checks the caller will make with the
 * answer (a stale filter of a large table is rebuilt after
 * HP_REV_STABLE_CHECKS of them at one LSN).
 */
static bool
filter_current(const HpRevRef *r, Relation rel, Relation idx, uint32 checks)
{
	double		ntuples = 0;
	XLogRecPtr	lsn = index_lsn(rel, idx, &ntuples);

	if (lsn == InvalidXLogRecPtr)
		return false;
	if (!filter.valid || filter.relid != r->relid || filter.lsn != lsn
		|| !RelFileNodeEquals(filter.heap_node, rel->rd_node)
		|| !RelFileNodeEquals(filter.index_node, idx->rd_node))
	{
		if (filter.seen_lsn != lsn)
		{
			filter.seen_lsn = lsn;
			filter.seen_checks = 0;
		}
		/*
		 * A batch counts as its checks, but a rebuild reads the whole
		 * table (about 90 ms at a million entries) where a probe costs
		 * about 75 us: a batch waits for one check per 1,024 entries
		 */
		filter.seen_checks = Min(filter.seen_checks + (uint64) checks, PG_UINT32_MAX);
		if (ntuples > HP_REV_SMALL_TABLE &&
			filter.seen_checks < (checks > 1 ? Max(HP_REV_STABLE_CHECKS, ntuples / 1024) :
								  HP_REV_STABLE_CHECKS))
			return false;
		filter_build(r, rel, idx, lsn, ntuples);
	}
	return true;
}

/* Whether the (current) filter proves that none of the hashes is in the table */
static bool
filter_excludes(const HpRevHashes *h)
{
	for (int t = 0; t < HP_REV_NTYPES; t++)
	{
		uint32		w;
		uint64		bits;

		if (!h->present[t])
			continue;
		bits = filter_bits(h->hash[t], &w);
		if ((filter.words[w] & bits) == bits)
			return false;		/* maybe there: the probes decide */
	}
	return true;
}

/*
 * Begin checking passes against health_pass.revocation as snapshot snap
 * sees it, about checks of them (one for check(), a batch's size for
 * issue_batch()): the table and its hash index are opened, and the filter
 * is made current, once.  hp_revscan_end() closes them; after an error the
 * transaction's abort releases them.
 */
void
hp_revscan_begin(HpRevScan *s, const HpRevRef *r, Snapshot snap, uint32 checks)
{
	memset(s, 0, sizeof(*s));
	s->ref = r;
	s->snap = snap;
	s->cxt = CurrentMemoryContext;
	s->rel = table_open(r->relid, AccessShareLock);
	s->idx = index_open(r->hash_index, AccessShareLock);
	if (s->idx->rd_rel->relam != HASH_AM_OID || s->idx->rd_index->indrelid != r->relid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("health_pass.revocation_hash_idx is not the hash index on health_pass.revocation (hash)")));
	s->use_filter = filter_current(r, s->rel, s->idx, checks);

	/*
	 * The types the filter saw hold only while a change of hash_type has
	 * inserted into the hash index ever since it was built: while the index
	 * on hash_type it found then (the primary key) is still there
	 * (hp_type_index())
	 */
	if (s->use_filter && filter.types != HP_REV_ALL_TYPES &&	/* else nothing to skip */
		OidIsValid(filter.types_index) && filter.types_att == r->att_type)
	{
		List	   *indexes = RelationGetIndexList(s->rel);

		s->types_tracked = list_member_oid(indexes, filter.types_index);
		list_free(indexes);
	}
}

/*
 * The hash types (bits 1 << HpRevType) the table may hold an entry of as
 * the scan's snapshot sees it: those the current filter saw (every tuple,
 * dead ones too) while hash_type is an indexed column, else all.  A pass's hash of another type cannot be
 * revoked, so it need not be computed.
 */
uint32
hp_revscan_types(const HpRevScan *s)
{
	return s->use_filter && s->types_tracked ? filter.types : HP_REV_ALL_TYPES;
}

/* Is any of these hashes revoked at time at? */
bool
hp_revscan_check(HpRevScan *s, const HpRevHashes *h, TimestampTz at)
{
	ScanKeyData key;
	union
	{
		int32		align;
		char		bytes[VARHDRSZ + HP_REV_HASH_LEN];
	}			val;

	MemoryContext old;
	bool		found = false;

	if (s->use_filter && filter_excludes(h))
		return false;

	/*
	 * The scan is made at the first probe and used until hp_revscan_end():
	 * in the context that was current at begin, not the caller's now
	 * (issue_batch() checks each pass in a context reset after it)
	 */
	old = MemoryContextSwitchTo(s->cxt);
	if (s->scan == NULL)
	{
		s->slot = table_slot_create(s->rel, NULL);
		s->scan = index_beginscan(s->rel, s->idx, s->snap, 1, 0);
	}
	SET_VARSIZE(val.bytes, VARHDRSZ + HP_REV_HASH_LEN);
	for (int t = 0; t < HP_REV_NTYPES && !found; t++)
	{
		if (!h->present[t])
			continue;
		memcpy(val.bytes + VARHDRSZ, h->hash[t], HP_REV_HASH_LEN);
		ScanKeyInit(&key, 1, HTEqualStrategyNumber, F_BYTEAEQ,
					PointerGetDatum(val.bytes));
		index_rescan(s->scan, &key, 1, NULL, 0);
		while (!found && index_getnext_slot(s->scan, ForwardScanDirection, s->slot))
			found = row_counts(s->slot, s->ref, (HpRevType) t, h->hash[t], at);
	}
	MemoryContextSwitchTo(old);
	return found;
}

void
hp_revscan_end(HpRevScan *s)
{
	if (s->scan != NULL)
	{
		index_endscan(s->scan);
		ExecDropSingleTupleTableSlot(s->slot);
	}
	index_close(s->idx, AccessShareLock);
	table_close(s->rel, AccessShareLock);
	s->rel = s->idx = NULL;
}

/*
 * Is any of the pass's hashes revoked at time at, as snapshot snap sees
 * health_pass.revocation?  (Only the hashes of types the table holds are
 * computed.)
 */
bool
hp_revoked(const HpRevRef *r, const HpCose *c, TimestampTz at, Snapshot snap)
{
	HpRevScan	s;
	HpRevHashes h;
	bool		found;

	hp_revscan_begin(&s, r, snap, 1);
	hp_revocation_hashes_of(c, hp_revscan_types(&s), &h);
	found = hp_revscan_check(&s, &h, at);
	hp_revscan_end(&s);
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
