/*
 * hp_cbor.h
 *    A bounded, allocation-free CBOR (RFC 8949) reader (cbor.c) and
 *    writer (cbor_write.c, with the COSE_Sign1 pieces a pass is built of).
 */
#ifndef HP_CBOR_H
#define HP_CBOR_H

#include <string.h>

#include "codec/hp_codec.h"

/* Major types */
#define CBOR_UINT   0
#define CBOR_NINT   1
#define CBOR_BYTES  2
#define CBOR_TEXT   3
#define CBOR_ARRAY  4
#define CBOR_MAP    5
#define CBOR_TAG    6
#define CBOR_SIMPLE 7

/* Simple values reported in CborHead.simple */
#define CBOR_FALSE  20
#define CBOR_TRUE   21
#define CBOR_NULL   22
#define CBOR_UNDEF  23
#define CBOR_FLOAT  0xFF			/* pseudo value: a float, in .f */

/* A cursor over one buffer; items counts every head read */
typedef struct CborCur
{
	const uint8_t *p;
	const uint8_t *end;
	int			items;
	HpStage		stage;			/* stage named in errors */
	HpErr	   *err;
} CborCur;

/* One decoded head */
typedef struct CborHead
{
	int			major;
	uint64_t	val;			/* argument: int value, length, count, tag */
	const uint8_t *data;		/* bytes/text contents */
	int			simple;			/* major 7: simple value or CBOR_FLOAT */
	double		f;
} CborHead;

extern void hp_cbor_init(CborCur *c, const uint8_t *buf, size_t len,
					  HpStage stage, HpErr *err);
extern bool hp_cbor_head(CborCur *c, CborHead *h);
extern bool hp_cbor_skip(CborCur *c, int depth);
extern bool hp_cbor_head_untagged(CborCur *c, CborHead *h, int depth,
							   uint64_t *tags, int *ntags);
extern bool hp_cbor_number(const CborHead *h, double *d, bool *is_int,
						int64_t *i);
extern bool hp_cbor_fail(CborCur *c, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* The writer: into a caller's buffer; overflow sticks, nothing allocated */
typedef struct CborOut
{
	uint8_t    *buf;
	size_t		cap;
	size_t		len;
	bool		overflow;		/* a write did not fit: len is not the item */
	int			items;			/* heads written, as a reader counts items */
} CborOut;

extern void hp_cbor_out_init(CborOut *o, uint8_t *buf, size_t cap);
extern bool hp_cbor_put_head(CborOut *o, int major, uint64_t val);
extern bool hp_cbor_put_int(CborOut *o, int64_t v);
extern bool hp_cbor_put_bytes(CborOut *o, const uint8_t *b, size_t n);
extern bool hp_cbor_put_text(CborOut *o, const char *s, size_t n);
extern bool hp_cbor_put_simple(CborOut *o, int simple);
extern bool hp_cbor_put_double(CborOut *o, double d);
extern bool hp_cbor_put_raw(CborOut *o, const uint8_t *b, size_t n);
extern size_t hp_cbor_out_done(const CborOut *o);

/*
 * hp_cbor_put_text, inline for a string shorter than 24 bytes (a one-byte
 * head), the common case of a payload's keys and values: the same bytes,
 * the same overflow rule
 */
static inline bool
hp_cbor_put_short_text(CborOut *o, const char *s, size_t n)
{
	if (n < 24 && !o->overflow && n + 1 <= o->cap - o->len)
	{
		o->buf[o->len] = (uint8_t) ((CBOR_TEXT << 5) | n);
		if (n > 0)
			memcpy(o->buf + o->len + 1, s, n);
		o->len += n + 1;
		o->items++;
		return true;
	}
	return hp_cbor_put_text(o, s, n);
}

/* COSE_Sign1 of a pass (cbor_write.c); sizes returned, 0 when too small */
extern size_t hp_cose_protected(uint8_t *buf, size_t cap, int64_t alg,
								const uint8_t *kid, size_t kid_len);
extern bool hp_cwt_claims_start(CborOut *o, const char *iss, size_t iss_len,
								int64_t iat, int64_t exp);
extern size_t hp_cose_sig_structure(uint8_t *buf, size_t cap,
									const uint8_t *prot, size_t prot_len,
									const uint8_t *payload, size_t payload_len);
extern size_t hp_cose_sign1(uint8_t *buf, size_t cap,
							const uint8_t *prot, size_t prot_len,
							const uint8_t *payload, size_t payload_len,
							const uint8_t *sig, size_t sig_len);
extern size_t hp_cose_sign1_set_signature(uint8_t *buf, size_t cap, size_t len,
										  const uint8_t *sig, size_t sig_len);

#endif
