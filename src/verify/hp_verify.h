/*
 * hp_verify.h
 *    Verifying a pass against the trust list: public keys of the trust
 *    list's certificates (keys.c), verdicts (check.c) and certificate
 *    details (trust.c).  Depends on pass, codec and common.
 */
#ifndef HP_VERIFY_H
#define HP_VERIFY_H

#include "access/attnum.h"
#include "datatype/timestamp.h"
#include "utils/snapshot.h"

#include "pass/hp_pass.h"

/* Verdict reasons, in the order they are reported */
typedef enum HpReason
{
	HP_R_UNKNOWN_KEY = 0,
	HP_R_UNSUPPORTED_ALG,
	HP_R_BAD_SIGNATURE,
	HP_R_KEY_REVOKED,			/* the DSC is marked revoked in the trust list */
	HP_R_REVOKED,				/* one of the pass's hashes is in health_pass.revocation */
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

/*
 * revocation.c: the EU gateway's revocation hashes of a pass (SHA-256
 * truncated to HP_REV_HASH_LEN bytes) and their lookup in
 * health_pass.revocation (docs/design/revocation.md)
 */
#define HP_REV_HASH_LEN 16
typedef enum HpRevType
{
	HP_REV_UCI = 0,
	HP_REV_COUNTRYCODEUCI,
	HP_REV_SIGNATURE,
	HP_REV_NTYPES
} HpRevType;

#define HP_REV_ALL_TYPES ((1u << HP_REV_NTYPES) - 1)

typedef struct HpRevHashes
{
	bool		present[HP_REV_NTYPES]; /* UCI and COUNTRYCODEUCI need a ci (and iss) */
	uint8		hash[HP_REV_NTYPES][HP_REV_HASH_LEN];
} HpRevHashes;

/* Where health_pass.revocation is; resolved once per call site */
typedef struct HpRevRef
{
	Oid			relid;
	Oid			hash_index;		/* revocation_hash_idx: hash index on hash */
	AttrNumber	att_hash;
	AttrNumber	att_type;
	AttrNumber	att_expires;
} HpRevRef;

extern const char *const hp_rev_type_names[HP_REV_NTYPES];
extern void hp_revocation_hashes(const HpCose *c, HpRevHashes *h);
extern void hp_revocation_hashes_of(const HpCose *c, uint32 types, HpRevHashes *h);
extern void hp_revocation_ref(HpRevRef *r);
extern bool hp_revoked(const HpRevRef *r, const HpCose *c, TimestampTz at,
					   Snapshot snap);

/* Many checks under one snapshot (issue_batch()): see revocation.c */
typedef struct HpRevScan
{
	const HpRevRef *ref;
	Snapshot	snap;
	struct RelationData *rel;
	struct RelationData *idx;
	bool		use_filter;		/* the filter is current for snap */
	bool		types_tracked;	/* ... and its hash types too (hash_type indexed) */
	MemoryContext cxt;			/* the caller's at begin: the scan lives there */
	struct IndexScanDescData *scan; /* begun at the first probe */
	struct TupleTableSlot *slot;
} HpRevScan;

extern void hp_revscan_begin(HpRevScan *s, const HpRevRef *r, Snapshot snap, uint32 checks);
extern uint32 hp_revscan_types(const HpRevScan *s);
extern bool hp_revscan_check(HpRevScan *s, const HpRevHashes *h, TimestampTz at);
extern void hp_revscan_end(HpRevScan *s);

/* check.c: defines health_pass.clock_skew */
extern void hp_verify_init(void);
extern int	hp_key_usage_bits(Datum d, bool isnull);

#endif
