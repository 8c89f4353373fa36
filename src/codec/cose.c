/*
 * cose.c
 *    COSE_Sign1 (RFC 9052), CWT claims (RFC 8392) and the hcert payload:
 *    structural decoding of a health pass, from HC1: text to HpCose.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codec/hp_cbor.h"

#define CWT_TAG         61
#define COSE_SIGN1_TAG  18

/* Name of the protected-header algorithm, or NULL when there is none */
const char *
hp_alg_name(const HpCose *c)
{
	if (!c->has_alg || !c->alg_is_int)
		return NULL;
	if (c->alg == HP_ALG_ES256)
		return "ES256";
	if (c->alg == HP_ALG_PS256)
		return "PS256";
	return NULL;
}

/* Name of a certificate kind */
const char *
hp_kind_name(int kind)
{
	switch (kind)
	{
		case HP_KIND_VACCINATION: return "vaccination";
		case HP_KIND_TEST: return "test";
		case HP_KIND_RECOVERY: return "recovery";
		default: return NULL;
	}
}

/* Valid UTF-8 without NUL (which jsonb cannot hold) */
static bool
utf8_ok(const uint8_t *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		uint8_t		b;
		int			n;
		uint32_t	cp;

		/* eight ASCII bytes at a time, none of them NUL (most strings) */
		while (len - i >= 8)
		{
			uint64_t	w;

			memcpy(&w, s + i, 8);
			if (((w | ((w - UINT64_C(0x0101010101010101)) & ~w)) &
				 UINT64_C(0x8080808080808080)) != 0)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		b = s[i];
		if (b == 0)
			return false;
		if (b < 0x80)
		{
			i++;
			continue;
		}
		if ((b & 0xE0) == 0xC0)
			n = 1, cp = b & 0x1F;
		else if ((b & 0xF0) == 0xE0)
			n = 2, cp = b & 0x0F;
		else if ((b & 0xF8) == 0xF0)
			n = 3, cp = b & 0x07;
		else
			return false;
		if (len - i <= (size_t) n)
			return false;
		for (int k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
			(n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
			(cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

/* Two map keys (int or text heads) denote the same key */
static bool
key_equal(const CborHead *a, const CborHead *b)
{
	if (a->major != b->major || a->val != b->val)
		return false;
	if (a->major == CBOR_TEXT || a->major == CBOR_BYTES)
		return a->val == 0 ||
			(a->data[0] == b->data[0] && memcmp(a->data, b->data, a->val) == 0);
	return true;
}

/*
 * Read the key of map entry i of n: an int or text head, distinct from the
 * keys before it (kept in seen, at most HP_MAX_MAP_KEYS).
 */
static bool
read_key(CborCur *c, CborHead *seen, uint64_t i, bool text_only)
{
	CborHead   *k = &seen[i];

	if (!hp_cbor_head(c, k))
		return false;
	if (k->major == CBOR_TEXT)
	{
		if (!utf8_ok(k->data, k->val))
			return hp_cbor_fail(c, "map key is not valid UTF-8");
	}
	else if (text_only || (k->major != CBOR_UINT && k->major != CBOR_NINT))
		return hp_cbor_fail(c, "map key of CBOR major type %d is not accepted",
						 k->major);
	for (uint64_t j = 0; j < i; j++)
		if (key_equal(&seen[j], k))
			return hp_cbor_fail(c, "duplicate map key");
	return true;
}

/* Read a map head of at most HP_MAX_MAP_KEYS entries */
static bool
read_map(CborCur *c, CborHead *h, const char *what)
{
	if (!hp_cbor_head(c, h))
		return false;
	if (h->major != CBOR_MAP)
		return hp_cbor_fail(c, "%s is not a CBOR map", what);
	if (h->val > HP_MAX_MAP_KEYS)
		return hp_cbor_fail(c, "%s has more than %d entries", what, HP_MAX_MAP_KEYS);
	return true;
}

/* Integer value of a key head (int keys only) */
static bool
key_is_int(const CborHead *k, int64_t want)
{
	if (want >= 0)
		return k->major == CBOR_UINT && k->val == (uint64_t) want;
	return k->major == CBOR_NINT && k->val == (uint64_t) (-1 - want);
}

/* Parse one COSE header map (protected contents or unprotected) */
static bool
parse_header(CborCur *c, HpCose *out, bool is_protected, int depth)
{
	CborHead	m;
	CborHead	keys[HP_MAX_MAP_KEYS];

	if (!read_map(c, &m, is_protected ? "protected header" : "unprotected header"))
		return false;
	for (uint64_t i = 0; i < m.val; i++)
	{
		CborHead	v;

		if (!read_key(c, keys, i, false))
			return false;
		if (key_is_int(&keys[i], 1) && is_protected)
		{
			if (!hp_cbor_head(c, &v))
				return false;
			if (v.major == CBOR_UINT || v.major == CBOR_NINT)
			{
				if (v.val > (uint64_t) INT64_MAX)
					return hp_cbor_fail(c, "alg is out of range");
				out->alg = v.major == CBOR_UINT ? (int64_t) v.val : -1 - (int64_t) v.val;
				out->alg_is_int = true;
			}
			else if (v.major != CBOR_TEXT)
				return hp_cbor_fail(c, "alg is neither an integer nor text");
			out->has_alg = true;
			continue;
		}
		if (key_is_int(&keys[i], 4))
		{
			if (!hp_cbor_head(c, &v))
				return false;
			if (v.major != CBOR_BYTES)
				return hp_cbor_fail(c, "kid is not a byte string");
			if (is_protected || out->kid == NULL)
			{
				out->kid = v.data;
				out->kid_len = v.val;
				out->kid_protected = is_protected;
			}
			continue;
		}
		if (!hp_cbor_skip(c, depth + 1))
			return false;
	}
	return true;
}

/* Read a numeric date claim (int, float or tag 1 around either) */
static bool
read_time(CborCur *c, int64_t *t, const char *name, int depth)
{
	CborHead	h;
	uint64_t	tags[HP_MAX_TAGS];
	int			ntags;
	double		d;
	bool		is_int;
	int64_t		i;

	if (!hp_cbor_head_untagged(c, &h, depth, tags, &ntags))
		return false;
	if (ntags > 1 || (ntags == 1 && tags[0] != 1))
		return hp_cbor_fail(c, "%s has an unexpected tag", name);
	if (!hp_cbor_number(&h, &d, &is_int, &i))
		return hp_cbor_fail(c, "%s is not a finite number", name);
	if (!is_int)
	{
		if (d < -9.0e15 || d > 9.0e15)
			return hp_cbor_fail(c, "%s is out of range", name);
		i = (int64_t) floor(d);
	}
	/*
	 * From the first second PostgreSQL's timestamptz holds (4714-11-24 BC,
	 * -210866803200 in Unix time) to 10^12 s (year 33658): a claim every
	 * function can return and revoke() can store (a revocation's expiry is
	 * the pass's exp; one earlier was stored out of range and broke pg_dump)
	 */
	if (i < -210866803200LL || i > 1000000000000LL)
		return hp_cbor_fail(c, "%s is out of range", name);
	*t = i;
	return true;
}

/* Check that one payload item has a JSON form; depth bounded */
static bool
hcert_item(CborCur *c, int depth)
{
	CborHead	h;
	uint64_t	tags[HP_MAX_TAGS];
	int			ntags;
	double		d;
	bool		is_int;
	int64_t		i;

	if (depth >= HP_MAX_DEPTH)
		return hp_cbor_fail(c, "payload nesting deeper than %d", HP_MAX_DEPTH);
	if (!hp_cbor_head_untagged(c, &h, depth, tags, &ntags))
		return false;
	if (ntags > 1)
		return hp_cbor_fail(c, "payload item has more than one tag");
	if (ntags == 1)
	{
		bool		date_tag = (tags[0] == 0 || tags[0] == 1004);

		if (!(date_tag && h.major == CBOR_TEXT) &&
			!(tags[0] == 1 && (h.major == CBOR_UINT || h.major == CBOR_NINT ||
							   h.major == CBOR_SIMPLE)))
			return hp_cbor_fail(c, "payload has an unsupported CBOR tag %llu",
							 (unsigned long long) tags[0]);
	}
	switch (h.major)
	{
		case CBOR_UINT:
		case CBOR_NINT:
			if (!hp_cbor_number(&h, &d, &is_int, &i))
				return hp_cbor_fail(c, "payload integer is out of range");
			return true;
		case CBOR_BYTES:
			return hp_cbor_fail(c, "payload byte strings have no JSON form");
		case CBOR_TEXT:
			if (!utf8_ok(h.data, h.val))
				return hp_cbor_fail(c, "payload text is not valid UTF-8");
			return true;
		case CBOR_ARRAY:
			for (uint64_t k = 0; k < h.val; k++)
				if (!hcert_item(c, depth + 1))
					return false;
			return true;
		case CBOR_MAP:
			{
				CborHead	keys[HP_MAX_MAP_KEYS];

				if (h.val > HP_MAX_MAP_KEYS)
					return hp_cbor_fail(c, "payload map has more than %d entries",
									 HP_MAX_MAP_KEYS);
				for (uint64_t k = 0; k < h.val; k++)
					if (!read_key(c, keys, k, true) || !hcert_item(c, depth + 1))
						return false;
				return true;
			}
		case CBOR_SIMPLE:
			if (h.simple == CBOR_FLOAT)
			{
				if (!isfinite(h.f))
					return hp_cbor_fail(c, "payload number is not finite");
				return true;
			}
			if (h.simple == CBOR_TRUE || h.simple == CBOR_FALSE ||
				h.simple == CBOR_NULL)
				return true;
			return hp_cbor_fail(c, "payload simple value %d has no JSON form", h.simple);
	}
	return hp_cbor_fail(c, "unexpected CBOR major type %d", h.major);
}

/* Find the kind (first of v, t, r) and the first entry's "ci" */
static void
hcert_kind(HpCose *out, HpErr *err)
{
	CborCur		c;
	CborHead	m;
	CborHead	e;
	CborHead	k;

	hp_cbor_init(&c, out->hcert, out->hcert_len, HP_STAGE_HCERT, err);
	if (!hp_cbor_head(&c, &m))
		return;
	for (uint64_t i = 0; i < m.val; i++)
	{
		CborHead	a;
		int			kind = HP_KIND_NONE;

		if (!hp_cbor_head(&c, &k))
			return;
		if (k.val == 1 && k.data[0] == 'v')
			kind = HP_KIND_VACCINATION;
		else if (k.val == 1 && k.data[0] == 't')
			kind = HP_KIND_TEST;
		else if (k.val == 1 && k.data[0] == 'r')
			kind = HP_KIND_RECOVERY;
		if (kind == HP_KIND_NONE || out->kind != HP_KIND_NONE)
		{
			if (!hp_cbor_skip(&c, 1))
				return;
			continue;
		}
		out->kind = kind;
		if (!hp_cbor_head(&c, &a) || a.major != CBOR_ARRAY || a.val == 0)
			return;
		if (!hp_cbor_head(&c, &e) || e.major != CBOR_MAP)
			return;
		for (uint64_t j = 0; j < e.val; j++)
		{
			CborHead	v;
			uint64_t	tags[HP_MAX_TAGS];
			int			ntags;

			if (!hp_cbor_head(&c, &k))
				return;
			if (k.val == 2 && memcmp(k.data, "ci", 2) == 0)
			{
				if (hp_cbor_head_untagged(&c, &v, 2, tags, &ntags) &&
					v.major == CBOR_TEXT)
				{
					out->uvci = v.data;
					out->uvci_len = v.val;
				}
				return;
			}
			if (!hp_cbor_skip(&c, 3))
				return;
		}
		return;
	}
}

/* Parse claim -260: a map whose key 1 holds the certificate payload */
static bool
parse_hcert_claim(CborCur *c, HpCose *out)
{
	CborHead	m;
	CborHead	keys[HP_MAX_MAP_KEYS];

	c->stage = HP_STAGE_HCERT;
	if (!read_map(c, &m, "claim -260 (hcert)"))
		return false;
	for (uint64_t i = 0; i < m.val; i++)
	{
		const uint8_t *start;

		if (!read_key(c, keys, i, false))
			return false;
		start = c->p;
		if (key_is_int(&keys[i], 1))
		{
			CborHead	p;
			CborCur		peek = *c;

			if (!hp_cbor_head(&peek, &p))
				return false;
			if (p.major != CBOR_MAP)
				return hp_cbor_fail(c, "hcert key 1 (eu_dcc_v1) is not a map");
			if (!hcert_item(c, 2))
				return false;
			out->hcert = start;
			out->hcert_len = (size_t) (c->p - start);
		}
		else if (!hp_cbor_skip(c, 2))
			return false;
	}
	if (out->hcert == NULL)
		return hp_cbor_fail(c, "hcert has no key 1 (eu_dcc_v1)");
	c->stage = HP_STAGE_CWT;
	return true;
}

/* Parse the CWT claims in the COSE payload */
static bool
parse_cwt(HpCose *out, HpErr *err)
{
	CborCur		c;
	CborHead	m;
	CborHead	keys[HP_MAX_MAP_KEYS];
	bool		seen_hcert = false;

	hp_cbor_init(&c, out->payload, out->payload_len, HP_STAGE_CWT, err);
	if (!read_map(&c, &m, "CWT claims"))
		return false;
	for (uint64_t i = 0; i < m.val; i++)
	{
		CborHead	v;

		if (!read_key(&c, keys, i, false))
			return false;
		if (key_is_int(&keys[i], 1))
		{
			if (!hp_cbor_head(&c, &v))
				return false;
			if (v.major != CBOR_TEXT || !utf8_ok(v.data, v.val))
				return hp_cbor_fail(&c, "iss (claim 1) is not UTF-8 text");
			out->iss = v.data;
			out->iss_len = v.val;
		}
		else if (key_is_int(&keys[i], 4))
		{
			if (!read_time(&c, &out->exp, "exp (claim 4)", 1))
				return false;
			out->has_exp = true;
		}
		else if (key_is_int(&keys[i], 6))
		{
			if (!read_time(&c, &out->iat, "iat (claim 6)", 1))
				return false;
			out->has_iat = true;
		}
		else if (key_is_int(&keys[i], -260))
		{
			if (!parse_hcert_claim(&c, out))
				return false;
			seen_hcert = true;
		}
		else if (!hp_cbor_skip(&c, 1))
			return false;
	}
	if (c.p != c.end)
		return hp_cbor_fail(&c, "%zu trailing bytes after the CWT claims",
						 (size_t) (c.end - c.p));
	if (!seen_hcert)
	{
		hp_seterr(err, HP_STAGE_HCERT, "claim -260 (hcert) is missing");
		return false;
	}
	hcert_kind(out, err);
	return true;
}

/*
 * Parse a COSE_Sign1 message (tag 18, untagged, or inside CWT tag 61) and
 * its CWT claims.  On success every pointer in out points into buf.
 */
bool
hp_cose_parse(const uint8_t *buf, size_t len, HpCose *out, HpErr *err)
{
	CborCur		c;
	CborCur		pc;
	CborHead	h;
	uint64_t	tags[HP_MAX_TAGS];
	int			ntags;

	memset(out, 0, sizeof(*out));
	hp_cbor_init(&c, buf, len, HP_STAGE_COSE, err);
	if (!hp_cbor_head_untagged(&c, &h, 0, tags, &ntags))
		return false;
	for (int i = 0; i < ntags; i++)
		if (!((tags[i] == CWT_TAG && i == 0) || (tags[i] == COSE_SIGN1_TAG && i == ntags - 1)))
			return hp_cbor_fail(&c, "unexpected CBOR tag %llu", (unsigned long long) tags[i]);
	if (h.major != CBOR_ARRAY || h.val != 4)
		return hp_cbor_fail(&c, "COSE_Sign1 is not an array of 4 elements");

	/* protected header: a bstr wrapping a map (or empty) */
	if (!hp_cbor_head(&c, &h))
		return false;
	if (h.major != CBOR_BYTES)
		return hp_cbor_fail(&c, "protected header is not a byte string");
	out->prot = h.data;
	out->prot_len = h.val;
	if (h.val > 0)
	{
		hp_cbor_init(&pc, h.data, h.val, HP_STAGE_COSE, err);
		if (!parse_header(&pc, out, true, 1))
			return false;
		if (pc.p != pc.end)
			return hp_cbor_fail(&pc, "trailing bytes in the protected header");
		c.items += pc.items;
	}

	/* unprotected header: a map */
	if (!parse_header(&c, out, false, 1))
		return false;

	/* payload and signature */
	if (!hp_cbor_head(&c, &h))
		return false;
	if (h.major == CBOR_SIMPLE && h.simple == CBOR_NULL)
		return hp_cbor_fail(&c, "detached payloads are not supported");
	if (h.major != CBOR_BYTES)
		return hp_cbor_fail(&c, "payload is not a byte string");
	out->payload = h.data;
	out->payload_len = h.val;
	if (!hp_cbor_head(&c, &h))
		return false;
	if (h.major != CBOR_BYTES)
		return hp_cbor_fail(&c, "signature is not a byte string");
	out->sig = h.data;
	out->sig_len = h.val;
	if (c.p != c.end)
		return hp_cbor_fail(&c, "%zu trailing bytes after COSE_Sign1",
						 (size_t) (c.end - c.p));
	return parse_cwt(out, err);
}

/*
 * Decode HC1: text of len characters all the way to HpCose.  b45buf must
 * hold hp_base45_decoded_max(len) bytes and zbuf HP_MAX_INFLATED bytes; on
 * success *cose points to the inflated COSE bytes in zbuf.
 */
bool
hp_decode_text(const char *text, size_t len, uint8_t *b45buf, uint8_t *zbuf,
			   const uint8_t **cose, size_t *cose_len, HpCose *out, HpErr *err)
{
	size_t		blen;

	memset(out, 0, sizeof(*out));
	if (len < 4 || memcmp(text, "HC1:", 4) != 0)
	{
		hp_seterr(err, HP_STAGE_PREFIX, "input does not start with \"HC1:\"");
		return false;
	}
	if (len > HP_MAX_TEXT)
	{
		hp_seterr(err, HP_STAGE_BASE45, "input is longer than %d characters",
				  HP_MAX_TEXT);
		return false;
	}
	if (!hp_base45_decode(text + 4, len - 4, b45buf, &blen, err))
		return false;
	if (!hp_inflate(b45buf, blen, zbuf, HP_MAX_INFLATED, cose_len, err))
		return false;
	*cose = zbuf;
	return hp_cose_parse(zbuf, *cose_len, out, err);
}
