/*
 * block.c
 *    Packing and unpacking audit blocks, and their subject bloom filters.
 *
 * Layout of a block (every integer a LEB128 varint, "z" ones zigzag-coded
 * so that small negative steps stay small; a text is varint length + 1
 * then its bytes, 0 meaning NULL):
 *
 *   "HB" 0x01 or 0x02               magic and version (2: contexts carry
 *                                   a node; written only when a record
 *                                   has one, so local blocks stay 1)
 *   prev_hash[32]                   hash the first record chains to
 *   nctx, then nctx contexts:       fields records share
 *     session_user_name current_user_name client_addr application_name
 *     z backend_pid  purpose  relid  [node: version 2]
 *   nrec, then nrec records:
 *     ctx  z id  z logged_at  z statement_id   (each a step from the
 *                                               record before; the first
 *                                               from 0)
 *     outcome(1 byte)  subject  reason  hash[32]
 *
 * The decoder checks the layout only; whether each field can be shown
 * (encoding, address, outcome, time) is hp_entry_check()'s, below.
 *
 * The bytes must end exactly after the last record.
 */
#include <string.h>

#include "audit/hp_block.h"

#define HP_BLOCK_VERSION 1
#define HP_BLOCK_VERSION_NODE 2
#define HP_BLOOM_BITS_PER_SUBJECT 16
#define HP_BLOOM_HASHES 7

/* A bounded output cursor: writes past end only set full */
typedef struct HpOut
{
	uint8_t    *p;
	uint8_t    *end;
	bool		full;
} HpOut;

/* A bounded input cursor: reads past end only set bad */
typedef struct HpIn
{
	const uint8_t *p;
	const uint8_t *end;
	const char *why;
} HpIn;

/* Append bytes */
static void
put_bytes(HpOut *o, const void *b, size_t n)
{
	if (o->full || (size_t) (o->end - o->p) < n)
	{
		o->full = true;
		return;
	}
	memcpy(o->p, b, n);
	o->p += n;
}

/* Append an unsigned varint */
static void
put_uint(HpOut *o, uint64_t v)
{
	uint8_t		b[10];
	int			n = 0;

	do
	{
		b[n] = (uint8_t) (v & 0x7F);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	put_bytes(o, b, n);
}

/* Append a signed varint, zigzag-coded */
static void
put_int(HpOut *o, int64_t v)
{
	put_uint(o, ((uint64_t) v << 1) ^ (uint64_t) (v >> 63));
}

/* Append a text that may be NULL; over-long ones fail the block */
static void
put_text(HpOut *o, const char *s)
{
	size_t		len = s ? strlen(s) : 0;

	if (s && len > HP_BLOCK_MAX_TEXT)
	{
		o->full = true;
		return;
	}
	put_uint(o, s ? len + 1 : 0);
	if (s)
		put_bytes(o, s, len);
}

/* Fail the read with a reason (the first one sticks) */
static void
in_fail(HpIn *in, const char *why)
{
	if (in->why == NULL)
		in->why = why;
	in->p = in->end;
}

/* Read an unsigned varint of at most 10 bytes */
static uint64_t
get_uint(HpIn *in)
{
	uint64_t	v = 0;

	for (int shift = 0; shift < 70; shift += 7)
	{
		uint8_t		b;

		if (in->p >= in->end)
			break;
		b = *in->p++;
		if (shift == 63 && b > 1)
			break;
		v |= (uint64_t) (b & 0x7F) << shift;
		if (!(b & 0x80))
			return v;
	}
	in_fail(in, "truncated or over-long integer");
	return 0;
}

/* Read a zigzag-coded signed varint */
static int64_t
get_int(HpIn *in)
{
	uint64_t	u = get_uint(in);

	return (int64_t) (u >> 1) ^ -(int64_t) (u & 1);
}

/* Read a text into the arena (NUL-terminated); NULL for a NULL text */
static const char *
get_text(HpIn *in, char **arena)
{
	uint64_t	v = get_uint(in);
	size_t		len;
	char	   *s;

	if (v == 0 || in->why)
		return NULL;
	len = (size_t) (v - 1);
	if (v - 1 > HP_BLOCK_MAX_TEXT || len > (size_t) (in->end - in->p))
	{
		in_fail(in, "text runs past the block");
		return NULL;
	}
	if (memchr(in->p, '\0', len) != NULL)
	{
		in_fail(in, "text holds a zero byte");
		return NULL;
	}
	s = *arena;
	memcpy(s, in->p, len);
	s[len] = '\0';
	*arena += len + 1;
	in->p += len;
	return s;
}

/* Equal texts, NULL equal only to NULL */
static bool
same_text(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* True when two entries share every context field */
static bool
same_context(const HpEntry *a, const HpEntry *b)
{
	return a->backend_pid == b->backend_pid && a->relid == b->relid &&
		same_text(a->session_user_name, b->session_user_name) &&
		same_text(a->current_user_name, b->current_user_name) &&
		same_text(a->client_addr, b->client_addr) &&
		same_text(a->application_name, b->application_name) &&
		same_text(a->purpose, b->purpose) && same_text(a->node, b->node);
}

/* Bytes a text takes at most */
static size_t
text_max(const char *s)
{
	return 10 + (s ? strlen(s) : 0);
}

size_t
hp_block_encoded_max(const HpEntry *e, int n)
{
	size_t		total = 3 + 32 + 20;

	for (int i = 0; i < n; i++)
		total += 7 * 10 + 1 + 32 + 10 +
			text_max(e[i].session_user_name) + text_max(e[i].current_user_name) +
			text_max(e[i].client_addr) + text_max(e[i].application_name) +
			text_max(e[i].purpose) + text_max(e[i].subject) + text_max(e[i].reason) +
			text_max(e[i].node);
	return total;
}

size_t
hp_block_encode(const uint8_t *prev, const HpEntry *e, int n, int *ctx,
				uint8_t *out, size_t cap)
{
	HpOut		o = {out, out + (cap < HP_BLOCK_MAX_BYTES ? cap : HP_BLOCK_MAX_BYTES), false};
	int		   *leader = ctx + n;	/* entry index of each context */
	int			nctx = 0;
	const HpEntry *last = NULL;
	uint8_t		magic[3] = {'H', 'B', HP_BLOCK_VERSION};
	bool		nodes = false;

	for (int i = 0; i < n && !nodes; i++)
		nodes = e[i].node != NULL;
	if (nodes)
		magic[2] = HP_BLOCK_VERSION_NODE;

	/* contexts, newest first in the search: runs from one backend hit at once */
	for (int i = 0; i < n; i++)
	{
		int			c = nctx - 1;

		while (c >= 0 && !same_context(&e[leader[c]], &e[i]))
			c--;
		if (c < 0)
		{
			c = nctx++;
			leader[c] = i;
		}
		ctx[i] = c;
	}

	put_bytes(&o, magic, 3);
	put_bytes(&o, prev, 32);
	put_uint(&o, (uint64_t) nctx);
	for (int c = 0; c < nctx; c++)
	{
		const HpEntry *l = &e[leader[c]];

		put_text(&o, l->session_user_name);
		put_text(&o, l->current_user_name);
		put_text(&o, l->client_addr);
		put_text(&o, l->application_name);
		put_int(&o, l->backend_pid);
		put_text(&o, l->purpose);
		put_uint(&o, l->relid);
		if (nodes)
			put_text(&o, l->node);
	}
	put_uint(&o, (uint64_t) n);
	for (int i = 0; i < n; i++)
	{
		const HpEntry *r = &e[i];

		put_uint(&o, (uint64_t) ctx[i]);
		put_int(&o, (int64_t) ((uint64_t) r->id - (uint64_t) (last ? last->id : 0)));
		put_int(&o, (int64_t) ((uint64_t) r->logged_at - (uint64_t) (last ? last->logged_at : 0)));
		put_int(&o, (int64_t) ((uint64_t) r->statement_id -
							   (uint64_t) (last ? last->statement_id : 0)));
		put_bytes(&o, &r->outcome, 1);
		put_text(&o, r->subject);
		put_text(&o, r->reason);
		put_bytes(&o, r->hash, 32);
		last = r;
	}
	return o.full ? 0 : (size_t) (o.p - out);
}

bool
hp_block_decode(const uint8_t *buf, size_t len, HpAlloc alloc, void *arg,
				HpBlock *b, const char **why)
{
	HpIn		in = {buf, buf + len, NULL};
	HpEntry    *ctxs;
	char	   *arena;
	uint64_t	nctx,
				nrec;
	int64_t		id = 0,
				at = 0,
				stmt = 0;
	bool		nodes = len >= 3 && buf[2] == HP_BLOCK_VERSION_NODE;

	b->n = 0;
	b->entries = NULL;
	if (len > HP_BLOCK_MAX_BYTES)
		in_fail(&in, "block is larger than 1 MB");
	else if (len < 35 || buf[0] != 'H' || buf[1] != 'B' ||
			 (buf[2] != HP_BLOCK_VERSION && !nodes))
		in_fail(&in, "not a version 1 or 2 audit block");
	if (in.why)
	{
		*why = in.why;
		return false;
	}
	memcpy(b->prev_hash, buf + 3, 32);
	in.p += 35;
	/* every string is shorter than the bytes that carry it */
	arena = alloc(arg, len + 1);

	nctx = get_uint(&in);
	if (nctx > (uint64_t) (in.end - in.p) / 7)
		in_fail(&in, "more contexts than the block can hold");
	ctxs = alloc(arg, (size_t) (in.why ? 1 : nctx + 1) * sizeof(HpEntry));
	for (uint64_t c = 0; c < nctx && !in.why; c++)
	{
		ctxs[c].session_user_name = get_text(&in, &arena);
		ctxs[c].current_user_name = get_text(&in, &arena);
		ctxs[c].client_addr = get_text(&in, &arena);
		ctxs[c].application_name = get_text(&in, &arena);
		ctxs[c].backend_pid = (int32_t) get_int(&in);
		ctxs[c].purpose = get_text(&in, &arena);
		ctxs[c].relid = (uint32_t) get_uint(&in);
		ctxs[c].node = nodes ? get_text(&in, &arena) : NULL;
	}

	nrec = in.why ? 0 : get_uint(&in);
	if (nrec > (uint64_t) (in.end - in.p) / HP_BLOCK_MIN_ENTRY)
		in_fail(&in, "more records than the block can hold");
	b->entries = alloc(arg, (size_t) (in.why ? 1 : nrec + 1) * sizeof(HpEntry));
	for (uint64_t i = 0; i < nrec && !in.why; i++)
	{
		HpEntry    *r = &b->entries[i];
		uint64_t	c = get_uint(&in);

		if (c >= nctx)
		{
			in_fail(&in, "record names a context the block lacks");
			break;
		}
		*r = ctxs[c];
		id = (int64_t) ((uint64_t) id + (uint64_t) get_int(&in));
		at = (int64_t) ((uint64_t) at + (uint64_t) get_int(&in));
		stmt = (int64_t) ((uint64_t) stmt + (uint64_t) get_int(&in));
		r->id = id;
		r->logged_at = at;
		r->statement_id = stmt;
		if (in.p >= in.end)
		{
			in_fail(&in, "record runs past the block");
			break;
		}
		/* any byte: an unknown outcome is the reader's to show (hp_entry_check) */
		r->outcome = *in.p++;
		r->subject = get_text(&in, &arena);
		r->reason = get_text(&in, &arena);
		if ((size_t) (in.end - in.p) < 32)
			in_fail(&in, "record runs past the block");
		else
		{
			memcpy(r->hash, in.p, 32);
			in.p += 32;
		}
		b->n = (int) i + 1;
	}
	if (!in.why && in.p != in.end)
		in_fail(&in, "bytes after the last record");
	if (in.why)
	{
		b->n = 0;
		*why = in.why;
		return false;
	}
	return true;
}

/* 64-bit FNV-1a of (relid, subject), finished with a splitmix64 mix */
static uint64_t
bloom_hash(uint32_t relid, const char *subject)
{
	uint64_t	h = 0xcbf29ce484222325ULL;

	for (int i = 0; i < 4; i++)
		h = (h ^ ((relid >> (8 * i)) & 0xFF)) * 0x100000001b3ULL;
	for (const unsigned char *s = (const unsigned char *) subject; *s; s++)
		h = (h ^ *s) * 0x100000001b3ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

uint64_t
hp_subject_key(uint32_t relid, const char *subject)
{
	return bloom_hash(relid, subject);
}

size_t
hp_bloom_size(int n)
{
	/* 16 bits a subject and 7 probes: about 1 false positive in 1,500 */
	size_t		bits = (size_t) (n > 4 ? n : 4) * HP_BLOOM_BITS_PER_SUBJECT;

	return (bits + 63) / 64 * 8;
}

void
hp_bloom_add(uint8_t *bloom, size_t size, uint32_t relid, const char *subject)
{
	uint64_t	h = bloom_hash(relid, subject);
	uint64_t	step = (h >> 32) | 1;

	for (int i = 0; i < HP_BLOOM_HASHES; i++, h += step)
	{
		uint64_t	bit = h % (size * 8);

		bloom[bit / 8] |= (uint8_t) (1 << (bit % 8));
	}
}

bool
hp_bloom_test(const uint8_t *bloom, size_t size, uint32_t relid, const char *subject)
{
	uint64_t	h = bloom_hash(relid, subject);
	uint64_t	step = (h >> 32) | 1;

	if (size == 0)
		return false;
	for (int i = 0; i < HP_BLOOM_HASHES; i++, h += step)
	{
		uint64_t	bit = h % (size * 8);

		if (!(bloom[bit / 8] & (1 << (bit % 8))))
			return false;
	}
	return true;
}


/* ---- Checking records (docs/design/records.md) ---- */

static const char *const hp_field_names[HP_NFIELD] = {
	"session_user_name", "current_user_name", "client_addr", "application_name",
	"subject", "purpose", "reason", "outcome", "logged_at", "backend_pid", "statement_id"
};

const char *
hp_field_name(HpField f)
{
	return (unsigned) f < HP_NFIELD ? hp_field_names[f] : "unknown field";
}

/* Decimal number of 1 to maxdigits digits, no leading zero, at most max */
static bool
parse_dec(const char **p, const char *end, int maxdigits, unsigned max, unsigned *out)
{
	const char *s = *p;
	unsigned	v = 0;
	int			n = 0;

	while (s < end && *s >= '0' && *s <= '9' && n < maxdigits)
	{
		v = v * 10 + (unsigned) (*s - '0');
		s++;
		n++;
	}
	if (n == 0 || (n > 1 && **p == '0') || v > max || (s < end && *s >= '0' && *s <= '9'))
		return false;
	*p = s;
	*out = v;
	return true;
}

/* Exactly a dotted quad in [s, end) */
static bool
parse_v4(const char *s, const char *end, uint8_t *out)
{
	for (int i = 0; i < 4; i++)
	{
		unsigned	v;

		if (i > 0)
		{
			if (s >= end || *s != '.')
				return false;
			s++;
		}
		if (!parse_dec(&s, end, 3, 255, &v))
			return false;
		out[i] = (uint8_t) v;
	}
	return s == end;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly an IPv6 address in [s, end): hex groups, one "::", a dotted tail */
static bool
parse_v6(const char *s, const char *end, uint8_t *out)
{
	uint8_t		tmp[16] = {0};
	int			n = 0;
	int			gap = -1;

	if (s < end && *s == ':')
	{
		if (end - s < 2 || s[1] != ':')
			return false;
		s += 2;
		gap = 0;
	}
	while (s < end)
	{
		const char *group = s;
		unsigned	v = 0;
		int			nd = 0;

		while (s < end && nd < 4 && hex_value(*s) >= 0)
		{
			v = v * 16 + (unsigned) hex_value(*s);
			s++;
			nd++;
		}
		if (nd == 0)
			return false;
		if (s < end && *s == '.')
		{
			/* a dotted IPv4 tail ends the address */
			if (n > 12 || !parse_v4(group, end, tmp + n))
				return false;
			n += 4;
			s = end;
			break;
		}
		if (n > 14)
			return false;
		tmp[n++] = (uint8_t) (v >> 8);
		tmp[n++] = (uint8_t) v;
		if (s == end)
			break;
		if (*s != ':')
			return false;
		s++;
		if (s < end && *s == ':')
		{
			if (gap >= 0)
				return false;
			gap = n;
			s++;
		}
		else if (s == end)
			return false;		/* a single trailing colon */
	}
	if (gap < 0)
	{
		if (n != 16)
			return false;
		memcpy(out, tmp, 16);
		return true;
	}
	if (n > 14)
		return false;			/* "::" stands for at least one group */
	memset(out, 0, 16);
	memcpy(out, tmp, gap);
	memcpy(out + 16 - (n - gap), tmp + gap, n - gap);
	return true;
}

bool
hp_inet_parse(const char *s, HpInet *out)
{
	size_t		len = strlen(s);
	const char *slash = memchr(s, '/', len);
	const char *end = slash ? slash : s + len;
	unsigned	bits;

	memset(out, 0, sizeof(HpInet));
	out->v6 = memchr(s, ':', (size_t) (end - s)) != NULL;
	if (out->v6 ? !parse_v6(s, end, out->addr) : !parse_v4(s, end, out->addr))
		return false;
	bits = out->v6 ? 128 : 32;
	if (slash)
	{
		const char *p = slash + 1;

		if (!parse_dec(&p, s + len, 3, bits, &bits) || p != s + len)
			return false;
	}
	out->bits = (uint8_t) bits;
	return true;
}

/* True when s is valid text */
static bool
text_ok(const char *s, HpTextValid valid, void *arg)
{
	size_t		len = strlen(s);

	return valid(arg, s, len) == len;
}

/* True when timestamptz can show t */
static bool
time_ok(int64_t t)
{
	return t == INT64_MIN || t == INT64_MAX || (t >= HP_TS_MIN && t < HP_TS_END);
}

uint32_t
hp_entry_check(const HpEntry *e, HpTextValid valid, void *arg)
{
	const char *t[HP_NTEXT] = {e->session_user_name, e->current_user_name, e->client_addr,
	e->application_name, e->subject, e->purpose, e->reason};
	uint32_t	bad = 0;
	HpInet		a;

	for (int f = 0; f < HP_NTEXT; f++)
		if (t[f] && !text_ok(t[f], valid, arg))
			bad |= 1u << f;
	for (int f = HP_F_SESSION_USER; f <= HP_F_CURRENT_USER; f++)
		if (t[f] && strlen(t[f]) > HP_NAME_MAX)
			bad |= 1u << f;
	if (e->client_addr && !hp_inet_parse(e->client_addr, &a))
		bad |= 1u << HP_F_CLIENT_ADDR;
	if (e->outcome > HP_OUTCOME_LAST)
		bad |= 1u << HP_F_OUTCOME;
	if (!time_ok(e->logged_at))
		bad |= 1u << HP_F_LOGGED_AT;
	return bad;
}

size_t
hp_render(const char *s, size_t len, HpTextValid valid, void *arg, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t		o = 0;
	size_t		i = 0;

	while (i < len)
	{
		size_t		ok = valid(arg, s + i, len - i);

		if (ok > len - i)
			ok = len - i;		/* a validator may not claim more */
		/* valid characters as they are; ASCII is ASCII in every server encoding */
		for (size_t k = 0; k < ok; k++)
		{
			if (s[i + k] == '\\')
				out[o++] = '\\';
			out[o++] = s[i + k];
		}
		i += ok;
		if (i < len)
		{
			unsigned char c = (unsigned char) s[i++];

			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return o;
}

/* A bounded text being built in the arena */
typedef struct HpStr
{
	char	   *p;
	size_t		len;
	size_t		cap;			/* bytes available, NUL included */
} HpStr;

static void
str_add(HpStr *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
		n = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
str_addz(HpStr *b, const char *s)
{
	str_add(b, s, strlen(s));
}

static void
str_add_int(HpStr *b, int64_t v)
{
	char		d[24];
	int			n = 0;
	uint64_t	u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

	do
	{
		d[sizeof(d) - 1 - n++] = (char) ('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		d[sizeof(d) - 1 - n++] = '-';
	str_add(b, d + sizeof(d) - n, (size_t) n);
}

size_t
hp_record_arena_size(const HpRawRecord *r)
{
	size_t		total = 256;

	/* each text rendered for its field and once more for the reason */
	for (int f = 0; f < HP_NTEXT; f++)
		total += 2 * (4 * r->size[f] + 1) + 64;
	return total;
}

uint32_t
hp_record_check(const HpRawRecord *r, HpTextValid valid, void *arg, int64_t now,
				HpEntry *e, char *arena, size_t cap)
{
	uint32_t	bad = 0;
	size_t		len[HP_NTEXT];
	bool		terminated[HP_NTEXT];
	bool		isnull[HP_NTEXT] = {false};
	HpInet		a;
	char	   *reason_out;
	HpStr		why;
	const char **fields[HP_NTEXT];

	for (int f = 0; f < HP_NTEXT; f++)
	{
		const char *nul = r->size[f] ? memchr(r->text[f], '\0', r->size[f]) : NULL;

		terminated[f] = nul != NULL;
		len[f] = nul ? (size_t) (nul - r->text[f]) : r->size[f];
		if (!terminated[f] || valid(arg, r->text[f], len[f]) != len[f])
			bad |= 1u << f;
	}
	for (int f = HP_F_SESSION_USER; f <= HP_F_CURRENT_USER; f++)
		if (len[f] > HP_NAME_MAX)
			bad |= 1u << f;

	/* a NULL flag is 0 or 1, and a NULL field's array is empty */
	if (r->client_addr_null > 1 || (r->client_addr_null == 1 && len[HP_F_CLIENT_ADDR] > 0))
		bad |= 1u << HP_F_CLIENT_ADDR;
	isnull[HP_F_CLIENT_ADDR] = r->client_addr_null == 1;
	if (!isnull[HP_F_CLIENT_ADDR] && !(bad & (1u << HP_F_CLIENT_ADDR)) &&
		!hp_inet_parse(r->text[HP_F_CLIENT_ADDR], &a))
		bad |= 1u << HP_F_CLIENT_ADDR;
	if (r->subject_null > 1 || (r->subject_null == 1 && len[HP_F_SUBJECT] > 0))
		bad |= 1u << HP_F_SUBJECT;
	isnull[HP_F_SUBJECT] = r->subject_null == 1;
	/* "" means no purpose, no reason */
	isnull[HP_F_PURPOSE] = len[HP_F_PURPOSE] == 0;
	isnull[HP_F_REASON] = len[HP_F_REASON] == 0;

	if (r->outcome > HP_OUTCOME_LAST)
		bad |= 1u << HP_F_OUTCOME;
	/* a time after 2000 and not more than a day ahead of the writer's clock */
	if (r->logged_at < 0 || !time_ok(r->logged_at) || r->logged_at == INT64_MAX ||
		(now >= 0 && r->logged_at - now > INT64_C(86400000000)))
		bad |= 1u << HP_F_LOGGED_AT;
	if (r->backend_pid <= 0)
		bad |= 1u << HP_F_BACKEND_PID;
	if (r->statement_id <= 0)
		bad |= 1u << HP_F_STATEMENT_ID;

	if (bad != 0 && arena == NULL)
		return bad;

	fields[HP_F_SESSION_USER] = &e->session_user_name;
	fields[HP_F_CURRENT_USER] = &e->current_user_name;
	fields[HP_F_CLIENT_ADDR] = &e->client_addr;
	fields[HP_F_APPNAME] = &e->application_name;
	fields[HP_F_SUBJECT] = &e->subject;
	fields[HP_F_PURPOSE] = &e->purpose;
	fields[HP_F_REASON] = &e->reason;
	e->logged_at = r->logged_at;
	e->backend_pid = r->backend_pid;
	e->statement_id = r->statement_id;
	e->relid = r->relid;
	e->outcome = r->outcome;
	e->node = NULL;				/* a raw record has none: the caller sets a shipped one's */
	for (int f = 0; f < HP_NTEXT; f++)
		*fields[f] = isnull[f] ? NULL : r->text[f];
	if (bad == 0)
		return 0;
	if (cap < hp_record_arena_size(r))
	{
		/* the caller broke the contract: still nothing unsafe */
		for (int f = 0; f < HP_NTEXT; f++)
			*fields[f] = f <= HP_F_CURRENT_USER ? "" : NULL;
		if (bad & (1u << HP_F_OUTCOME))
			e->outcome = HP_OUTCOME_DENIED;
		if (bad & (1u << HP_F_LOGGED_AT))
			e->logged_at = now < 0 ? 0 : now >= HP_TS_END ? HP_TS_END - 1 : now;
		e->reason = "invalid record";
		return bad;
	}

	/* the reason goes last in the arena, the rendered fields first */
	for (int f = 0; f < HP_NTEXT; f++)
	{
		size_t		n;

		if (!(bad & (1u << f)) || f == HP_F_REASON)
			continue;
		if (f == HP_F_CLIENT_ADDR || isnull[f])
		{
			*fields[f] = NULL;	/* shown in the reason only */
			continue;
		}
		n = hp_render(r->text[f], len[f], valid, arg, arena);
		if (f <= HP_F_CURRENT_USER && n > HP_NAME_MAX)
			arena[valid(arg, arena, HP_NAME_MAX)] = '\0';	/* on a character */
		*fields[f] = arena;
		arena += strlen(arena) + 1;
		cap -= strlen(*fields[f]) + 1;
	}
	if (bad & (1u << HP_F_OUTCOME))
		e->outcome = HP_OUTCOME_DENIED;
	if (bad & (1u << HP_F_LOGGED_AT))
		e->logged_at = now < 0 ? 0 : now >= HP_TS_END ? HP_TS_END - 1 : now;

	reason_out = arena;
	why.p = arena;
	why.len = 0;
	why.cap = cap;
	why.p[0] = '\0';
	str_addz(&why, "invalid record:");
	for (int f = 0; f < HP_NFIELD; f++)
	{
		if (!(bad & (1u << f)) || f == HP_F_REASON)
			continue;
		str_addz(&why, why.len > 15 ? ", " : " ");
		str_addz(&why, hp_field_names[f]);
		switch (f)
		{
			case HP_F_OUTCOME:
				str_addz(&why, " ");
				str_add_int(&why, r->outcome);
				break;
			case HP_F_LOGGED_AT:
				str_addz(&why, " ");
				str_add_int(&why, r->logged_at);
				break;
			case HP_F_BACKEND_PID:
			case HP_F_STATEMENT_ID:
				break;			/* shown as it is */
			case HP_F_CLIENT_ADDR:
			case HP_F_SUBJECT:
				if (f == HP_F_CLIENT_ADDR ? r->client_addr_null : r->subject_null)
				{
					str_addz(&why, " (null flag ");
					str_add_int(&why, f == HP_F_CLIENT_ADDR ? r->client_addr_null : r->subject_null);
					str_addz(&why, ")");
				}
				/* FALLTHROUGH */
			default:
				if (!terminated[f])
					str_addz(&why, " (not terminated)");
				if (*fields[f] == NULL || f <= HP_F_CURRENT_USER)
				{
					/* the value is not in its field, or a name may be cut */
					if (why.cap > why.len + 4 * len[f] + 4)
					{
						str_addz(&why, " \"");
						why.len += hp_render(r->text[f], len[f], valid, arg, why.p + why.len);
						str_addz(&why, "\"");
					}
				}
				break;
		}
	}
	if (bad & (1u << HP_F_REASON))
	{
		str_addz(&why, why.len > 15 ? ", reason; " : " reason; ");
		if (why.cap > why.len + 4 * len[HP_F_REASON] + 1)
			why.len += hp_render(r->text[HP_F_REASON], len[HP_F_REASON], valid, arg,
								 why.p + why.len);
	}
	else if (!isnull[HP_F_REASON])
	{
		str_addz(&why, "; ");
		str_add(&why, r->text[HP_F_REASON], len[HP_F_REASON]);
	}
	e->reason = reason_out;
	return bad;
}

/* audit_log.outcome text of an outcome (hp_block.h) */
const char *
hp_outcome_name(HpOutcome outcome)
{
	switch (outcome)
	{
		case HP_ALLOWED:
			return "allowed";
		case HP_DENIED:
			return "denied";
		case HP_QUOTA_EXCEEDED:
			return "quota_exceeded";
		case HP_BREAK_GLASS:
			return "break_glass";
		case HP_SUPERUSER:
			return "superuser";
		case HP_ISSUED:
			return "issued";
		case HP_REVOKED:
			return "revoked";
		case HP_FAILOVER:
			return "failover";
		case HP_ARCHIVED:
			return "archived";
		case HP_VERIFIED:
			return "verified";
	}
	return "unknown";
}
