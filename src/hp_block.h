/*
 * hp_block.h
 *    The packed layout of audit records: one audit_block row holds a run of
 *    consecutive records, with the session fields they share written once.
 *
 * Like hp_codec.h, nothing here allocates through PostgreSQL or raises an
 * error, so the same decoder runs in the backend and under libFuzzer.  A
 * block is written by the audit writer, but a superuser can store any bytes
 * in it: the decoder treats it as untrusted input, bounded by the limits
 * below, and never reads outside it.
 */
#ifndef HP_BLOCK_H
#define HP_BLOCK_H

/* Highest outcome code a block may hold (HpOutcome's last; checked in hp_access.h) */
#define HP_BLOCK_MAX_OUTCOME 4

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HP_BLOCK_RECORDS   256		/* records the writer packs per block */
#define HP_BLOCK_MAX_BYTES (1024 * 1024)	/* largest block packed or unpacked */
#define HP_BLOCK_MAX_TEXT  65535	/* longest text field in a block */
#define HP_BLOCK_MIN_ENTRY 39		/* bytes of the smallest packed record */

/* One audit record, as packed, unpacked, hashed and shown by audit_log */
typedef struct HpEntry
{
	int64_t		id;
	int64_t		logged_at;		/* TimestampTz */
	const char *session_user_name;
	const char *current_user_name;
	const char *client_addr;	/* NULL: not a network client */
	const char *application_name;
	int32_t		backend_pid;
	int64_t		statement_id;
	uint32_t	relid;
	const char *subject;		/* NULL: a denied statement */
	const char *purpose;
	uint8_t		outcome;		/* HpOutcome, at most HP_BLOCK_MAX_OUTCOME */
	const char *reason;
	uint8_t		hash[32];
} HpEntry;

/* A decoded block: the hash its first record chains to, and its records */
typedef struct HpBlock
{
	uint8_t		prev_hash[32];
	int			n;
	HpEntry    *entries;
} HpBlock;

/* Bytes hp_block_encode() may need for these entries */
extern size_t hp_block_encoded_max(const HpEntry *e, int n);

/*
 * Pack n entries chained to prev into out; ctx is scratch for 2 * n ints.
 * Returns the bytes written, or 0 when they would pass cap or
 * HP_BLOCK_MAX_BYTES or a text field is longer than HP_BLOCK_MAX_TEXT.
 */
extern size_t hp_block_encode(const uint8_t *prev, const HpEntry *e, int n,
							  int *ctx, uint8_t *out, size_t cap);

/* Memory for the decoder: palloc in the backend, malloc under the fuzzer */
typedef void *(*HpAlloc) (void *arg, size_t size);

/*
 * Unpack a block into b, taking memory for entries and strings from alloc
 * (at most three calls, sized by the block's bytes and counts).  False,
 * with *why set, when the bytes are not a well-formed block.
 */
extern bool hp_block_decode(const uint8_t *buf, size_t len, HpAlloc alloc,
							void *arg, HpBlock *b, const char **why);

/* Bytes of the subject bloom filter of a block of n records */
extern size_t hp_bloom_size(int n);

/* Add (relid, subject) to a bloom filter of size bytes */
extern void hp_bloom_add(uint8_t *bloom, size_t size, uint32_t relid, const char *subject);

/* False when (relid, subject) is certainly not in the filter */
extern bool hp_bloom_test(const uint8_t *bloom, size_t size, uint32_t relid,
						  const char *subject);

#endif							/* HP_BLOCK_H */
