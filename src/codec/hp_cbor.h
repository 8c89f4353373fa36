/*
 * hp_cbor.h
 *    A bounded, allocation-free CBOR (RFC 8949) reader.
 */
#ifndef HP_CBOR_H
#define HP_CBOR_H

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

#endif
