/*
 * cbor_write.c
 *    A bounded, allocation-free CBOR (RFC 8949) writer, and the COSE_Sign1
 *    pieces a pass is assembled from (RFC 9052, RFC 8392): the protected
 *    header, the CWT claims, the Sig_structure and the message itself.
 *
 * Everything is written into a buffer the caller owns.  A write that does
 * not fit sets CborOut.overflow and writes nothing more; the caller checks
 * the flag once at the end (hp_cbor_out_done).  Heads use the shortest
 * argument (RFC 8949 section 4.2.1, "preferred serialization"), floats the
 * shortest of half, single and double that holds the value exactly.
 * Definite lengths only, as the reader (cbor.c) accepts.
 */
#include <math.h>
#include <string.h>

#include "codec/hp_cbor.h"

#define COSE_SIGN1_TAG  18

/* Start writing into buf[0..cap) */
void
hp_cbor_out_init(CborOut *o, uint8_t *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap;
	o->len = 0;
	o->overflow = false;
	o->items = 0;
}

/* Room for n more bytes?  Sets overflow when not */
static bool
room(CborOut *o, size_t n)
{
	if (o->overflow || n > o->cap - o->len)
	{
		o->overflow = true;
		return false;
	}
	return true;
}

/* Append raw bytes (an item encoded elsewhere) */
bool
hp_cbor_put_raw(CborOut *o, const uint8_t *b, size_t n)
{
	if (!room(o, n))
		return false;
	if (n > 0)
		memcpy(o->buf + o->len, b, n);
	o->len += n;
	return true;
}

/* A head: major type and argument, in the shortest form */
bool
hp_cbor_put_head(CborOut *o, int major, uint64_t val)
{
	uint8_t		ib = (uint8_t) (major << 5);
	uint8_t		tmp[9];
	int			n;

	if (val < 24)
	{
		tmp[0] = ib | (uint8_t) val;
		n = 1;
	}
	else if (val <= 0xFF)
	{
		tmp[0] = ib | 24;
		n = 2;
	}
	else if (val <= 0xFFFF)
	{
		tmp[0] = ib | 25;
		n = 3;
	}
	else if (val <= 0xFFFFFFFFULL)
	{
		tmp[0] = ib | 26;
		n = 5;
	}
	else
	{
		tmp[0] = ib | 27;
		n = 9;
	}
	for (int i = n - 1; i >= 1; i--, val >>= 8)
		tmp[i] = (uint8_t) (val & 0xFF);
	o->items++;
	return hp_cbor_put_raw(o, tmp, (size_t) n);
}

/* An integer: major type 0 or 1 */
bool
hp_cbor_put_int(CborOut *o, int64_t v)
{
	if (v >= 0)
		return hp_cbor_put_head(o, CBOR_UINT, (uint64_t) v);
	return hp_cbor_put_head(o, CBOR_NINT, (uint64_t) (-1 - v));
}

/* A byte string */
bool
hp_cbor_put_bytes(CborOut *o, const uint8_t *b, size_t n)
{
	return hp_cbor_put_head(o, CBOR_BYTES, n) && hp_cbor_put_raw(o, b, n);
}

/* A text string (the caller gives UTF-8) */
bool
hp_cbor_put_text(CborOut *o, const char *s, size_t n)
{
	return hp_cbor_put_head(o, CBOR_TEXT, n) &&
		hp_cbor_put_raw(o, (const uint8_t *) s, n);
}

/* false, true, null (CBOR_FALSE, CBOR_TRUE, CBOR_NULL) */
bool
hp_cbor_put_simple(CborOut *o, int simple)
{
	uint8_t		b = (uint8_t) (0xE0 | (simple & 0x1F));

	o->items++;
	return hp_cbor_put_raw(o, &b, 1);
}

/* d as an IEEE half float, when that is exact */
static bool
to_half(double d, uint16_t *h)
{
	int			e;
	double		m;
	uint16_t	sign = signbit(d) ? 0x8000 : 0;
	double		a = fabs(d);

	if (isnan(d))
	{
		*h = 0x7E00;
		return true;
	}
	if (isinf(d))
	{
		*h = sign | 0x7C00;
		return true;
	}
	if (a == 0.0)
	{
		*h = sign;
		return true;
	}
	m = frexp(a, &e);			/* a = m * 2^e, m in [0.5, 1) */
	/* normal: 2^-14 <= a < 65520, 11 significant bits */
	if (e >= -13 && e <= 16)
	{
		double		mant = ldexp(m, 11);	/* in [1024, 2048) */

		if (mant != floor(mant))
			return false;
		if (e == 16 && mant > 2047)
			return false;
		*h = sign | (uint16_t) ((e + 14) << 10) | (uint16_t) ((int) mant - 1024);
		return true;
	}
	/* subnormal: a = k * 2^-24, k in [1, 1023] */
	if (e < -13 && e >= -23)
	{
		double		k = ldexp(a, 24);

		if (k != floor(k) || k < 1 || k > 1023)
			return false;
		*h = sign | (uint16_t) k;
		return true;
	}
	return false;
}

/* A float in the shortest of half, single and double that is exact */
bool
hp_cbor_put_double(CborOut *o, double d)
{
	uint8_t		tmp[9];
	uint16_t	h;
	float		f = (float) d;

	o->items++;
	if (to_half(d, &h))
	{
		tmp[0] = 0xF9;
		tmp[1] = (uint8_t) (h >> 8);
		tmp[2] = (uint8_t) (h & 0xFF);
		return hp_cbor_put_raw(o, tmp, 3);
	}
	if (isnan(d) || (double) f == d)
	{
		uint32_t	u;

		memcpy(&u, &f, sizeof(u));
		tmp[0] = 0xFA;
		for (int i = 4; i >= 1; i--, u >>= 8)
			tmp[i] = (uint8_t) (u & 0xFF);
		return hp_cbor_put_raw(o, tmp, 5);
	}
	else
	{
		uint64_t	u;

		memcpy(&u, &d, sizeof(u));
		tmp[0] = 0xFB;
		for (int i = 8; i >= 1; i--, u >>= 8)
			tmp[i] = (uint8_t) (u & 0xFF);
		return hp_cbor_put_raw(o, tmp, 9);
	}
}

/* Length written, or 0 when it overflowed */
size_t
hp_cbor_out_done(const CborOut *o)
{
	return o->overflow ? 0 : o->len;
}

/*
 * The protected header of a pass, {1: alg, 4: kid}, keys in canonical
 * order.  Returns its length, 0 when cap is too small.
 */
size_t
hp_cose_protected(uint8_t *buf, size_t cap, int64_t alg,
				  const uint8_t *kid, size_t kid_len)
{
	CborOut		o;

	hp_cbor_out_init(&o, buf, cap);
	hp_cbor_put_head(&o, CBOR_MAP, 2);
	hp_cbor_put_int(&o, 1);
	hp_cbor_put_int(&o, alg);
	hp_cbor_put_int(&o, 4);
	hp_cbor_put_bytes(&o, kid, kid_len);
	return hp_cbor_out_done(&o);
}

/*
 * Start the CWT claims of a pass: {1: iss, 4: exp, 6: iat, -260: {1: ...}},
 * up to the head of the payload, which the caller writes next (one CBOR
 * item) into the same CborOut.
 */
bool
hp_cwt_claims_start(CborOut *o, const char *iss, size_t iss_len,
					int64_t iat, int64_t exp)
{
	hp_cbor_put_head(o, CBOR_MAP, 4);
	hp_cbor_put_int(o, 1);
	hp_cbor_put_text(o, iss, iss_len);
	hp_cbor_put_int(o, 4);
	hp_cbor_put_int(o, exp);
	hp_cbor_put_int(o, 6);
	hp_cbor_put_int(o, iat);
	hp_cbor_put_int(o, -260);
	hp_cbor_put_head(o, CBOR_MAP, 1);
	hp_cbor_put_int(o, 1);
	return !o->overflow;
}

/*
 * The COSE Sig_structure signed for a COSE_Sign1 without external data:
 * ["Signature1", protected, h'', payload].  Returns its length, 0 when
 * cap is too small.
 */
size_t
hp_cose_sig_structure(uint8_t *buf, size_t cap,
					  const uint8_t *prot, size_t prot_len,
					  const uint8_t *payload, size_t payload_len)
{
	CborOut		o;

	hp_cbor_out_init(&o, buf, cap);
	hp_cbor_put_head(&o, CBOR_ARRAY, 4);
	hp_cbor_put_text(&o, "Signature1", 10);
	hp_cbor_put_bytes(&o, prot, prot_len);
	hp_cbor_put_bytes(&o, NULL, 0);
	hp_cbor_put_bytes(&o, payload, payload_len);
	return hp_cbor_out_done(&o);
}

/*
 * The message: tag 18 [protected, {}, payload, signature].  Returns its
 * length, 0 when cap is too small.
 */
size_t
hp_cose_sign1(uint8_t *buf, size_t cap,
			  const uint8_t *prot, size_t prot_len,
			  const uint8_t *payload, size_t payload_len,
			  const uint8_t *sig, size_t sig_len)
{
	CborOut		o;

	hp_cbor_out_init(&o, buf, cap);
	hp_cbor_put_head(&o, CBOR_TAG, COSE_SIGN1_TAG);
	hp_cbor_put_head(&o, CBOR_ARRAY, 4);
	hp_cbor_put_bytes(&o, prot, prot_len);
	hp_cbor_put_head(&o, CBOR_MAP, 0);
	hp_cbor_put_bytes(&o, payload, payload_len);
	hp_cbor_put_bytes(&o, sig, sig_len);
	return hp_cbor_out_done(&o);
}

/*
 * Complete a message hp_cose_sign1 wrote without a signature (buf[0..len),
 * ending in its empty byte string) with sig, in place: the same bytes as
 * hp_cose_sign1 with sig, without writing the rest again.  Returns the new
 * length, 0 when cap is too small or buf does not end so.
 */
size_t
hp_cose_sign1_set_signature(uint8_t *buf, size_t cap, size_t len,
							const uint8_t *sig, size_t sig_len)
{
	CborOut		o;

	if (len == 0 || len > cap || buf[len - 1] != ((CBOR_BYTES << 5) | 0))
		return 0;
	hp_cbor_out_init(&o, buf, cap);
	o.len = len - 1;
	hp_cbor_put_bytes(&o, sig, sig_len);
	return hp_cbor_out_done(&o);
}
