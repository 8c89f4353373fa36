/*
 * check_cbor_write.c: randomized checks of the CBOR writer and the COSE
 * assembly (src/codec/cbor_write.c) against the reader (cbor.c, cose.c),
 * from a fixed seed.  Pure C, no PostgreSQL; test/t/081_cbor_writer.pl
 * builds it with AddressSanitizer and UndefinedBehaviorSanitizer and runs it.
 *
 *   check_cbor_write ITERATIONS SEED
 *
 * 1. random items (integers of every width and sign, byte and text strings,
 *    arrays, maps, tags, simple values, floats from random bit patterns:
 *    NaN, infinities, subnormals, halves, singles) written, then read back:
 *    the same values, heads and floats in their shortest exact form, and
 *    the reader consumes exactly what was written, and counts as many
 *    items as the writer did (issue.c refuses past HP_MAX_ITEMS by the
 *    writer's count);
 * 2. the same items written into buffers too small, at every size below
 *    what they need: the overflow flag is set, nothing is written past the
 *    capacity (guard bytes), and done() reports 0;
 * 3. whole passes (protected header, CWT claims with a random payload map,
 *    Sig_structure, COSE_Sign1 with a random signature) parse with
 *    hp_cose_parse, giving back alg, kid, iss, iat, exp, the payload bytes
 *    and the signature; the Sig_structure is the RFC 9052 array.
 * Prints "check_cbor_write: N passed, 0 failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/hp_cbor.h"

static uint64_t rng;
static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int	failed = 0;
#define CHECK(c, ...) do { if (!(c)) { failed++; fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); return false; } } while (0)

/* One random item, written, its expected reading checked by read_item */
typedef struct Item
{
	int			major;
	uint64_t	val;
	double		f;
	int			simple;
	uint8_t		bytes[40];
	int			nkids;
	struct Item *kids;
} Item;

static void
gen(Item *it, int depth)
{
	int			r = (int) (rnd() % (depth < 4 ? 9 : 6));

	memset(it, 0, sizeof(*it));
	switch (r)
	{
		case 0:
		case 1:
			it->major = (int) (rnd() % 2);
			/* every width: shift a random value down */
			it->val = rnd() >> (rnd() % 64);
			break;
		case 2:
		case 3:
			it->major = r == 2 ? CBOR_BYTES : CBOR_TEXT;
			it->val = rnd() % sizeof(it->bytes);
			for (uint64_t i = 0; i < it->val; i++)
				it->bytes[i] = r == 2 ? (uint8_t) rnd() : (uint8_t) ('a' + rnd() % 26);
			break;
		case 4:
			{
				uint64_t	bits = rnd();
				int			kind = (int) (rnd() % 4);

				it->major = CBOR_SIMPLE;
				it->simple = CBOR_FLOAT;
				if (kind == 0)
					memcpy(&it->f, &bits, 8);	/* any double, NaN included */
				else if (kind == 1)
					it->f = ldexp((double) (bits % 2048), (int) (rnd() % 60) - 30);	/* half-ish */
				else if (kind == 2)
				{
					float		g;
					uint32_t	b32 = (uint32_t) bits;

					memcpy(&g, &b32, 4);
					it->f = g;	/* any single */
				}
				else
				{
					double		special[] = {0.0, -0.0, INFINITY, -INFINITY, 65504.0, 65520.0,
						5.960464477539063e-08, 6.103515625e-05, 1e-300, 1.5, 0.1};

					it->f = special[bits % 11];
				}
				break;
			}
		case 5:
			it->major = CBOR_SIMPLE;
			it->simple = (int[]) {CBOR_FALSE, CBOR_TRUE, CBOR_NULL}[rnd() % 3];
			break;
		case 6:
		case 7:
			it->major = r == 6 ? CBOR_ARRAY : CBOR_MAP;
			it->nkids = (int) (rnd() % 5) * (r == 7 ? 2 : 1);
			it->val = r == 7 ? (uint64_t) it->nkids / 2 : (uint64_t) it->nkids;
			it->kids = calloc(it->nkids ? it->nkids : 1, sizeof(Item));
			for (int i = 0; i < it->nkids; i++)
				gen(&it->kids[i], depth + 1);
			break;
		case 8:
			it->major = CBOR_TAG;
			it->val = rnd() >> (rnd() % 64);
			it->nkids = 1;
			it->kids = calloc(1, sizeof(Item));
			gen(&it->kids[0], depth + 1);
			break;
	}
}

static void
put(CborOut *o, const Item *it)
{
	switch (it->major)
	{
		case CBOR_UINT:
			hp_cbor_put_head(o, CBOR_UINT, it->val);
			break;
		case CBOR_NINT:
			if (it->val <= (uint64_t) INT64_MAX)
				hp_cbor_put_int(o, -1 - (int64_t) it->val);
			else
				hp_cbor_put_head(o, CBOR_NINT, it->val);
			break;
		case CBOR_BYTES:
			hp_cbor_put_bytes(o, it->bytes, it->val);
			break;
		case CBOR_TEXT:
			hp_cbor_put_text(o, (const char *) it->bytes, it->val);
			break;
		case CBOR_ARRAY:
		case CBOR_MAP:
		case CBOR_TAG:
			hp_cbor_put_head(o, it->major, it->val);
			for (int i = 0; i < it->nkids; i++)
				put(o, &it->kids[i]);
			break;
		case CBOR_SIMPLE:
			if (it->simple == CBOR_FLOAT)
				hp_cbor_put_double(o, it->f);
			else
				hp_cbor_put_simple(o, it->simple);
			break;
	}
}

/* bytes of the shortest head for val */
static size_t
head_len(uint64_t v)
{
	return v < 24 ? 1 : v <= 0xFF ? 2 : v <= 0xFFFF ? 3 : v <= 0xFFFFFFFFULL ? 5 : 9;
}

/* The shortest exact float width for d: 2, 4 or 8 bytes */
static int
float_width(double d)
{
	float		g = (float) d;

	if (isnan(d) || isinf(d) || d == 0.0)
		return 2;
	if ((double) g != d)
		return 8;
	/* half: 11 significant bits, exponent -24 .. 15 */
	{
		int			e;
		double		m = frexp(fabs(d), &e);
		double		mant = ldexp(m, 11);

		if (e >= -13 && e <= 16 && mant == floor(mant))
			return 2;
		if (e < -13 && e >= -23 && ldexp(fabs(d), 24) == floor(ldexp(fabs(d), 24)))
			return 2;
	}
	return 4;
}

static bool
check_item(CborCur *c, const Item *it)
{
	CborHead	h;
	const uint8_t *start = c->p;

	CHECK(hp_cbor_head(c, &h), "read failed: %s", c->err->msg);
	CHECK(h.major == it->major, "major %d, wrote %d", h.major, it->major);
	if (it->major == CBOR_SIMPLE)
	{
		CHECK(h.simple == it->simple, "simple %d, wrote %d", h.simple, it->simple);
		if (it->simple == CBOR_FLOAT)
		{
			CHECK((isnan(h.f) && isnan(it->f)) ||
				  (h.f == it->f && signbit(h.f) == signbit(it->f)),
				  "float %.17g read back as %.17g", it->f, h.f);
			CHECK(c->p - start == 1 + float_width(it->f),
				  "float %.17g took %d bytes, shortest is %d", it->f, (int) (c->p - start),
				  1 + float_width(it->f));
		}
		return true;
	}
	CHECK(h.val == it->val, "argument %llu, wrote %llu", (unsigned long long) h.val,
		  (unsigned long long) it->val);
	if (it->major == CBOR_BYTES || it->major == CBOR_TEXT)
	{
		CHECK(memcmp(h.data, it->bytes, it->val) == 0, "string contents differ");
		CHECK((size_t) (c->p - start) == head_len(it->val) + it->val, "string head not shortest");
		return true;
	}
	CHECK((size_t) (c->p - start) == head_len(it->val), "head of %llu not shortest",
		  (unsigned long long) it->val);
	for (int i = 0; i < it->nkids; i++)
		if (!check_item(c, &it->kids[i]))
			return false;
	return true;
}

static void
free_item(Item *it)
{
	for (int i = 0; i < it->nkids; i++)
		free_item(&it->kids[i]);
	free(it->kids);
}

/* 1 and 2: one random item */
static bool
round_trip(void)
{
	static uint8_t buf[1 << 16];
	Item		it;
	CborOut		o;
	CborCur		c;
	HpErr		err;
	size_t		len;
	bool		ok = true;

	gen(&it, 0);
	hp_cbor_out_init(&o, buf, sizeof(buf));
	put(&o, &it);
	len = hp_cbor_out_done(&o);
	if (len == 0)
	{
		failed++;
		fprintf(stderr, "no room in 64 kB\n");
		free_item(&it);
		return false;
	}
	hp_cbor_init(&c, buf, len, HP_STAGE_COSE, &err);
	if (!check_item(&c, &it))
		ok = false;
	else if (c.p != c.end)
	{
		failed++;
		fprintf(stderr, "%zu bytes left after the item\n", (size_t) (c.end - c.p));
		ok = false;
	}
	else if (c.items != o.items)
	{
		failed++;
		fprintf(stderr, "the writer counted %d items, the reader %d\n", o.items, c.items);
		ok = false;
	}
	/* every smaller capacity overflows, and writes nothing past it */
	for (size_t cap = 0; ok && cap < len; cap += 1 + rnd() % 7)
	{
		uint8_t    *small = malloc(cap + 16);

		memset(small, 0xA5, cap + 16);
		hp_cbor_out_init(&o, small, cap);
		put(&o, &it);
		if (!o.overflow || hp_cbor_out_done(&o) != 0 || o.len > cap)
		{
			failed++;
			fprintf(stderr, "capacity %zu of %zu: no overflow reported\n", cap, len);
			ok = false;
		}
		for (int g = 0; g < 16; g++)
			if (small[cap + g] != 0xA5)
			{
				failed++;
				fprintf(stderr, "capacity %zu: written past the end\n", cap);
				ok = false;
				break;
			}
		if (ok && memcmp(small, buf, o.len) != 0)
		{
			failed++;
			fprintf(stderr, "capacity %zu: a prefix differs\n", cap);
			ok = false;
		}
		free(small);
	}
	free_item(&it);
	return ok;
}

/* 3: a whole pass */
static bool
pass_round_trip(void)
{
	static uint8_t claims[8192];
	static uint8_t tbs[9000];
	static uint8_t msg[9000];
	uint8_t		prot[64];
	uint8_t		kid[16];
	uint8_t		sig[512];
	char		iss[3] = {(char) ('A' + rnd() % 26), (char) ('A' + rnd() % 26), 0};
	size_t		kid_len = 1 + rnd() % 16;
	size_t		sig_len = rnd() % 2 ? 64 : 256;
	int64_t		alg = rnd() % 2 ? HP_ALG_ES256 : HP_ALG_PS256;
	int64_t		iat = (int64_t) (rnd() % 4000000000ULL);
	int64_t		exp = iat + 1 + (int64_t) (rnd() % 100000000);
	CborOut		o;
	size_t		claims_len,
				prot_len,
				tbs_len,
				msg_len;
	HpCose		c;
	HpErr		err;
	int			nextra = (int) (rnd() % 5);
	char		ci[24];

	for (size_t i = 0; i < kid_len; i++)
		kid[i] = (uint8_t) rnd();
	for (size_t i = 0; i < sig_len; i++)
		sig[i] = (uint8_t) rnd();
	snprintf(ci, sizeof(ci), "URN:UVCI:01:%s:%08X", iss, (unsigned) rnd());
	hp_cbor_out_init(&o, claims, sizeof(claims));
	CHECK(hp_cwt_claims_start(&o, iss, 2, iat, exp), "claims head overflow");
	hp_cbor_put_head(&o, CBOR_MAP, 2 + nextra);
	hp_cbor_put_text(&o, "ver", 3);
	hp_cbor_put_text(&o, "1.3.0", 5);
	hp_cbor_put_text(&o, "v", 1);
	hp_cbor_put_head(&o, CBOR_ARRAY, 1);
	hp_cbor_put_head(&o, CBOR_MAP, 2);
	hp_cbor_put_text(&o, "ci", 2);
	hp_cbor_put_text(&o, ci, strlen(ci));
	hp_cbor_put_text(&o, "dn", 2);
	hp_cbor_put_int(&o, 1 + (int64_t) (rnd() % 9));
	for (int i = 0; i < nextra; i++)
	{
		char		k[16];

		snprintf(k, sizeof(k), "x%d", i);
		hp_cbor_put_text(&o, k, strlen(k));
		if (rnd() % 2)
			hp_cbor_put_double(&o, ldexp((double) (rnd() % 100000), -(int) (rnd() % 40)));
		else
			hp_cbor_put_int(&o, (int64_t) rnd());
	}
	claims_len = hp_cbor_out_done(&o);
	CHECK(claims_len > 0, "claims overflow");
	prot_len = hp_cose_protected(prot, sizeof(prot), alg, kid, kid_len);
	CHECK(prot_len > 0, "protected header overflow");
	CHECK(hp_cose_protected(prot, prot_len - 1, alg, kid, kid_len) == 0, "protected: no overflow reported");
	tbs_len = hp_cose_sig_structure(tbs, sizeof(tbs), prot, prot_len, claims, claims_len);
	CHECK(tbs_len > 0, "Sig_structure overflow");
	{
		/* ["Signature1", bstr prot, h'', bstr payload] */
		CborCur		t;
		CborHead	h;

		hp_cbor_init(&t, tbs, tbs_len, HP_STAGE_COSE, &err);
		CHECK(hp_cbor_head(&t, &h) && h.major == CBOR_ARRAY && h.val == 4, "Sig_structure not an array of 4");
		CHECK(hp_cbor_head(&t, &h) && h.major == CBOR_TEXT && h.val == 10 &&
			  memcmp(h.data, "Signature1", 10) == 0, "Sig_structure context");
		CHECK(hp_cbor_head(&t, &h) && h.major == CBOR_BYTES && h.val == prot_len &&
			  memcmp(h.data, prot, prot_len) == 0, "Sig_structure protected");
		CHECK(hp_cbor_head(&t, &h) && h.major == CBOR_BYTES && h.val == 0, "Sig_structure external_aad");
		CHECK(hp_cbor_head(&t, &h) && h.major == CBOR_BYTES && h.val == claims_len &&
			  memcmp(h.data, claims, claims_len) == 0 && t.p == t.end, "Sig_structure payload");
	}
	msg_len = hp_cose_sign1(msg, sizeof(msg), prot, prot_len, claims, claims_len, sig, sig_len);
	CHECK(msg_len > 0, "COSE_Sign1 overflow");
	CHECK(hp_cose_sign1(msg, msg_len - 1, prot, prot_len, claims, claims_len, sig, sig_len) == 0,
		  "COSE_Sign1: no overflow reported");
	msg_len = hp_cose_sign1(msg, sizeof(msg), prot, prot_len, claims, claims_len, sig, sig_len);
	{
		/* the unsigned message completed in place: the same bytes (issue.c) */
		uint8_t		two[sizeof(msg)];
		uint8_t		three[sizeof(msg)];
		size_t		two_len = hp_cose_sign1(two, sizeof(two), prot, prot_len, claims, claims_len, NULL, 0);

		CHECK(two_len > 0 && two[two_len - 1] == 0x40, "unsigned COSE_Sign1");
		memcpy(three, two, two_len);
		CHECK(hp_cose_sign1_set_signature(three, msg_len - 1, two_len, sig, sig_len) == 0,
			  "set_signature: no overflow reported");
		two_len = hp_cose_sign1_set_signature(two, sizeof(two), two_len, sig, sig_len);
		CHECK(two_len == msg_len && memcmp(two, msg, msg_len) == 0,
			  "set_signature differs from COSE_Sign1 with the signature");
	}
	CHECK(msg[0] == 0xD2, "not tag 18");
	CHECK(hp_cose_parse(msg, msg_len, &c, &err), "the pass does not parse: %s", err.msg);
	CHECK(c.has_alg && c.alg_is_int && c.alg == alg, "alg");
	CHECK(c.kid_protected && c.kid_len == kid_len && memcmp(c.kid, kid, kid_len) == 0, "kid");
	CHECK(c.iss_len == 2 && memcmp(c.iss, iss, 2) == 0, "iss");
	CHECK(c.has_iat && c.iat == iat && c.has_exp && c.exp == exp, "iat/exp");
	CHECK(c.payload_len == claims_len && memcmp(c.payload, claims, claims_len) == 0, "payload");
	CHECK(c.sig_len == sig_len && memcmp(c.sig, sig, sig_len) == 0, "signature");
	CHECK(c.kind == HP_KIND_VACCINATION && c.uvci_len == strlen(ci) &&
		  memcmp(c.uvci, ci, c.uvci_len) == 0, "kind and ci");
	return true;
}

/* hp_cbor_put_short_text writes what hp_cbor_put_text writes, overflow included */
static bool
short_text_same(void)
{
	char		s[40];
	size_t		n = rnd() % sizeof(s);
	size_t		cap = rnd() % 48;
	uint8_t		a[64];
	uint8_t		b[64];
	CborOut		oa,
				ob;
	bool		ra,
				rb;

	for (size_t i = 0; i < n; i++)
		s[i] = (char) ('a' + rnd() % 26);
	memset(a, 0xAA, sizeof(a));
	memset(b, 0xAA, sizeof(b));
	hp_cbor_out_init(&oa, a, cap);
	hp_cbor_out_init(&ob, b, cap);
	ra = hp_cbor_put_text(&oa, s, n);
	rb = hp_cbor_put_short_text(&ob, s, n);
	CHECK(ra == rb && oa.len == ob.len && oa.overflow == ob.overflow &&
		  memcmp(a, b, sizeof(a)) == 0, "short text differs (length %zu, cap %zu)", n, cap);
	return true;
}

int
main(int argc, char **argv)
{
	long		n = argc > 1 ? atol(argv[1]) : 20000;
	int			passed = 0;

	rng = argc > 2 ? strtoull(argv[2], NULL, 10) : 14;
	if (rng == 0)
		rng = 1;
	for (long i = 0; i < n; i++)
	{
		if (round_trip())
			passed++;
		if (pass_round_trip())
			passed++;
		if (short_text_same())
			passed++;
	}
	printf("check_cbor_write: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
