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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Outcome of a read, as stored in a record and shown in audit_log.outcome.
 * The decoder reads any byte; hp_entry_check() reports one above
 * HP_OUTCOME_LAST.
 */
typedef enum HpOutcome
{
	HP_ALLOWED = 0,
	HP_DENIED,
	HP_QUOTA_EXCEEDED,
	HP_BREAK_GLASS,
	HP_SUPERUSER,				/* a superuser or BYPASSRLS role: audited, not gated */
	HP_ISSUED,					/* a pass was signed (subject: its UVCI) */
	HP_REVOKED,					/* a pass was revoked (subject: its UVCI) */
	HP_FAILOVER,				/* the chain continues on a new timeline
								 * (a promoted standby, a restored backup) */
	HP_ARCHIVED,				/* old blocks were archived and dropped: a new anchor */
	HP_VERIFIED					/* the chain was verified up to a checkpoint */
} HpOutcome;

#define HP_OUTCOME_LAST HP_VERIFIED

/* audit_log.outcome text of an outcome: "unknown" for a byte past the last */
extern const char *hp_outcome_name(HpOutcome outcome);

#define HP_BLOCK_RECORDS   256		/* records the writer packs per block */
#define HP_BLOCK_MAX_BYTES (1024 * 1024)	/* largest block packed or unpacked */
#define HP_BLOCK_MAX_TEXT  65535	/* longest text field in a block */
#define HP_NODE_MAX 63			/* longest node name (health_pass.node_name) */
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
	uint8_t		outcome;		/* HpOutcome; a forged block may hold any byte */
	const char *reason;
	uint8_t		hash[32];
	const char *node;			/* NULL: this server; else the standby that
								 * read (shipped records, block version 2) */
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

/*
 * The 64-bit key of (relid, subject) in the subject index of audit_block
 * (_audit_keys(), docs/design/audit_index.md): the hash the bloom filter
 * probes with.  HP_KEY_UNREADABLE is the key of a block that does not decode.
 */
extern uint64_t hp_subject_key(uint32_t relid, const char *subject);
#define HP_KEY_UNREADABLE 0

/* Bytes of the subject bloom filter of a block of n records */
extern size_t hp_bloom_size(int n);

/* Add (relid, subject) to a bloom filter of size bytes */
extern void hp_bloom_add(uint8_t *bloom, size_t size, uint32_t relid, const char *subject);

/* False when (relid, subject) is certainly not in the filter */
extern bool hp_bloom_test(const uint8_t *bloom, size_t size, uint32_t relid,
						  const char *subject);

/*
 * Checking records.  The writer checks every queued record before it chains
 * it (hp_record_check) and writes one that fails in a safe form; the readers
 * check every unpacked entry (hp_entry_check) and show a field that fails in
 * a safe form.  Both are pure: text validity in the database encoding comes
 * from the caller, so the fuzzer runs them too.  See docs/design/records.md.
 */

/* Fields that can be invalid: bit (1 << field) in a check's result */
typedef enum HpField
{
	HP_F_SESSION_USER = 0,		/* the text fields first, in HpRawRecord.text order */
	HP_F_CURRENT_USER,
	HP_F_CLIENT_ADDR,
	HP_F_APPNAME,
	HP_F_SUBJECT,
	HP_F_PURPOSE,
	HP_F_REASON,
	HP_F_OUTCOME,
	HP_F_LOGGED_AT,
	HP_F_BACKEND_PID,
	HP_F_STATEMENT_ID
} HpField;

#define HP_NTEXT  7				/* text fields */
#define HP_NFIELD 11

#define HP_NAME_MAX 63			/* longest user name (NAMEDATALEN - 1) */
#define HP_TS_MIN   (-INT64_C(211813488000000000))	/* MIN_TIMESTAMP */
#define HP_TS_END   INT64_C(9223371331200000000)	/* END_TIMESTAMP */
#define HP_OUTCOME_DENIED 1		/* what an invalid outcome is written as */

/*
 * Bytes at the start of s[0, len) that are valid text in the database
 * encoding, ending on a character boundary (pg_encoding_verifymbstr); a
 * zero byte is never valid.
 */
typedef size_t (*HpTextValid) (void *arg, const char *s, size_t len);

/* An IP address as inet holds it */
typedef struct HpInet
{
	bool		v6;
	uint8_t		bits;
	uint8_t		addr[16];
} HpInet;

/*
 * Parse an address as host() prints it: dotted IPv4 or IPv6 text, with an
 * optional /bits.  Accepts no more than inet_in does.
 */
extern bool hp_inet_parse(const char *s, HpInet *out);

/* Name of a field, as audit_log calls it */
extern const char *hp_field_name(HpField f);

/*
 * Problems of an entry as unpacked from a block: a bit per field that
 * audit_log cannot show as it is (text not valid in the encoding, a name
 * longer than a name, an address inet cannot hold, an unknown outcome, a
 * time timestamptz cannot show).  0: every field readable.
 */
extern uint32_t hp_entry_check(const HpEntry *e, HpTextValid valid, void *arg);

/*
 * Render len bytes of s as valid text: valid characters as they are, a
 * backslash doubled, every other byte as \xNN.  Writes at most
 * 4 * len + 1 bytes to out, NUL included; returns the length.
 */
extern size_t hp_render(const char *s, size_t len, HpTextValid valid, void *arg, char *out);

/*
 * A record as a backend queued it, seen without PostgreSQL's types: the
 * text fields are fixed-size arrays that need not hold a NUL, the flags are
 * the raw bytes of their bools.
 */
typedef struct HpRawRecord
{
	int64_t		logged_at;
	int64_t		statement_id;
	uint32_t	relid;
	int32_t		backend_pid;
	uint8_t		outcome;
	uint8_t		subject_null;
	uint8_t		client_addr_null;
	const char *text[HP_NTEXT]; /* indexed by HpField */
	size_t		size[HP_NTEXT];
} HpRawRecord;

/* Arena bytes hp_record_check() needs to write r in a safe form */
extern size_t hp_record_arena_size(const HpRawRecord *r);

/*
 * Check a queued record; now is the writer's clock.  Returns a bit per
 * invalid field (0: valid).  When arena is NULL, e is filled only for a
 * valid record, its strings pointing into r.  Otherwise (arena of at least
 * hp_record_arena_size(r) bytes) e is always filled, in a safe form that
 * hp_entry_check() finds readable: an invalid text rendered by hp_render()
 * (a name cut to HP_NAME_MAX), an invalid address NULL, an invalid outcome
 * HP_OUTCOME_DENIED, an invalid time now; and the reason starts with
 * "invalid record: " naming every invalid field and the value it had.
 */
extern uint32_t hp_record_check(const HpRawRecord *r, HpTextValid valid, void *arg,
								int64_t now, HpEntry *e, char *arena, size_t cap);

#endif							/* HP_BLOCK_H */
