/*
 * cbor.c
 *    A bounded, allocation-free CBOR reader.
 *
 * Every read checks the remaining length first; definite lengths only
 * (indefinite-length items are refused); element counts, total items,
 * nesting depth and tag chains are capped by the limits in hp_codec.h.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/hp_cbor.h"

/* Record an error in the cursor's stage and return false */
bool
hp_cbor_fail(CborCur *c, const char *fmt,...)
{
	va_list		ap;

	c->err->stage = c->stage;
	va_start(ap, fmt);
	vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
	va_end(ap);
	return false;
}

/* Start a cursor over buf[0..len) */
void
hp_cbor_init(CborCur *c, const uint8_t *buf, size_t len, HpStage stage,
		  HpErr *err)
{
	c->p = buf;
	c->end = buf + len;
	c->items = 0;
	c->stage = stage;
	c->err = err;
}

/* Decode an IEEE 754 half-precision float */
static double
half_to_double(uint16_t h)
{
	int			e = (h >> 10) & 0x1F;
	int			m = h & 0x3FF;
	double		v;

	if (e == 0)
		v = ldexp(m, -24);
	else if (e != 31)
		v = ldexp(m + 1024, e - 25);
	else
		v = m == 0 ? INFINITY : NAN;
	return (h & 0x8000) ? -v : v;
}

/* Read one head; string contents are bounds-checked and skipped */
bool
hp_cbor_head(CborCur *c, CborHead *h)
{
	size_t		avail = (size_t) (c->end - c->p);
	uint8_t		ib;
	int			ai;
	int			nbytes;
	uint64_t	v = 0;

	if (avail == 0)
		return hp_cbor_fail(c, "CBOR data ends unexpectedly");
	if (++c->items > HP_MAX_ITEMS)
		return hp_cbor_fail(c, "more than %d CBOR items", HP_MAX_ITEMS);
	ib = *c->p++;
	avail--;
	h->major = ib >> 5;
	ai = ib & 0x1F;
	h->data = NULL;
	h->simple = -1;
	if (ai < 24)
	{
		v = (uint64_t) ai;
		nbytes = 0;
	}
	else if (ai <= 27)
		nbytes = 1 << (ai - 24);
	else if (ai == 31)
		return hp_cbor_fail(c, "indefinite-length CBOR items are not accepted");
	else
		return hp_cbor_fail(c, "reserved CBOR additional information %d", ai);
	if ((size_t) nbytes > avail)
		return hp_cbor_fail(c, "CBOR data ends unexpectedly");
	for (int i = 0; i < nbytes; i++)
		v = (v << 8) | *c->p++;
	avail -= nbytes;
	h->val = v;

	switch (h->major)
	{
		case CBOR_BYTES:
		case CBOR_TEXT:
			if (v > avail)
				return hp_cbor_fail(c, "CBOR string length %llu exceeds the %zu bytes left",
								 (unsigned long long) v, avail);
			h->data = c->p;
			c->p += v;
			break;
		case CBOR_ARRAY:
		case CBOR_MAP:
			if (v > HP_MAX_COUNT)
				return hp_cbor_fail(c, "CBOR %s of %llu elements exceeds %d",
								 h->major == CBOR_MAP ? "map" : "array",
								 (unsigned long long) v, HP_MAX_COUNT);
			if (v * (h->major == CBOR_MAP ? 2 : 1) > avail)
				return hp_cbor_fail(c, "CBOR %s count %llu exceeds the %zu bytes left",
								 h->major == CBOR_MAP ? "map" : "array",
								 (unsigned long long) v, avail);
			break;
		case CBOR_SIMPLE:
			if (ai == 25 || ai == 26 || ai == 27)
			{
				h->simple = CBOR_FLOAT;
				if (ai == 25)
					h->f = half_to_double((uint16_t) v);
				else if (ai == 26)
				{
					uint32_t	u = (uint32_t) v;
					float		f;

					memcpy(&f, &u, sizeof(f));
					h->f = f;
				}
				else
					memcpy(&h->f, &v, sizeof(h->f));
			}
			else if (ai == 24 && v < 32)
				return hp_cbor_fail(c, "invalid two-byte CBOR simple value %llu",
								 (unsigned long long) v);
			else
				h->simple = (int) v;
			break;
		default:
			break;
	}
	return true;
}

/* Read a head, stepping over at most HP_MAX_TAGS tags (returned in tags) */
bool
hp_cbor_head_untagged(CborCur *c, CborHead *h, int depth, uint64_t *tags,
				   int *ntags)
{
	*ntags = 0;
	for (;;)
	{
		if (!hp_cbor_head(c, h))
			return false;
		if (h->major != CBOR_TAG)
			return true;
		if (*ntags >= HP_MAX_TAGS || depth + *ntags >= HP_MAX_DEPTH)
			return hp_cbor_fail(c, "CBOR tag chain is too long");
		tags[(*ntags)++] = h->val;
	}
}

/* Skip one complete item, nested at most HP_MAX_DEPTH deep */
bool
hp_cbor_skip(CborCur *c, int depth)
{
	CborHead	h;
	uint64_t	tags[HP_MAX_TAGS];
	int			ntags;
	uint64_t	n;

	if (depth >= HP_MAX_DEPTH)
		return hp_cbor_fail(c, "CBOR nesting deeper than %d", HP_MAX_DEPTH);
	if (!hp_cbor_head_untagged(c, &h, depth, tags, &ntags))
		return false;
	if (h.major != CBOR_ARRAY && h.major != CBOR_MAP)
		return true;
	n = h.major == CBOR_MAP ? h.val * 2 : h.val;
	for (uint64_t i = 0; i < n; i++)
		if (!hp_cbor_skip(c, depth + ntags + 1))
			return false;
	return true;
}

/*
 * Read a head as a number: an integer or a finite float.  Integers outside
 * the int64 range and non-finite floats are refused.  is_int tells whether
 * the value is exactly an integer (a float like 1.0 counts).
 */
bool
hp_cbor_number(const CborHead *h, double *d, bool *is_int, int64_t *i)
{
	if (h->major == CBOR_UINT || h->major == CBOR_NINT)
	{
		if (h->val > (uint64_t) INT64_MAX)
			return false;
		*i = h->major == CBOR_UINT ? (int64_t) h->val : -1 - (int64_t) h->val;
		*d = (double) *i;
		*is_int = true;
		return true;
	}
	if (h->major == CBOR_SIMPLE && h->simple == CBOR_FLOAT && isfinite(h->f))
	{
		*d = h->f;
		*is_int = (h->f == floor(h->f) && fabs(h->f) < 9.0e15);
		*i = *is_int ? (int64_t) h->f : 0;
		return true;
	}
	return false;
}
