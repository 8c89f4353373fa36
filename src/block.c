/*
 * block.c
 *    Packing and unpacking audit blocks, and their subject bloom filters.
 *
 * Layout of a block (every integer a LEB128 varint, "z" ones zigzag-coded
 * so that small negative steps stay small; a text is varint length + 1
 * then its bytes, 0 meaning NULL):
 *
 *   "HB" 0x01                       magic and version
 *   prev_hash[32]                   hash the first record chains to
 *   nctx, then nctx contexts:       fields records share
 *     session_user_name current_user_name client_addr application_name
 *     z backend_pid  purpose  relid
 *   nrec, then nrec records:
 *     ctx  z id  z logged_at  z statement_id   (each a step from the
 *                                               record before; the first
 *                                               from 0)
 *     outcome(1 byte)  subject  reason  hash[32]
 *
 * The bytes must end exactly after the last record.
 */
#include <string.h>

#include "hp_block.h"

#define HP_BLOCK_VERSION 1
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
		same_text(a->purpose, b->purpose);
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
			text_max(e[i].purpose) + text_max(e[i].subject) + text_max(e[i].reason);
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
	static const uint8_t magic[3] = {'H', 'B', HP_BLOCK_VERSION};

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

	b->n = 0;
	b->entries = NULL;
	if (len > HP_BLOCK_MAX_BYTES)
		in_fail(&in, "block is larger than 1 MB");
	else if (len < 35 || buf[0] != 'H' || buf[1] != 'B' || buf[2] != HP_BLOCK_VERSION)
		in_fail(&in, "not a version 1 audit block");
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
		r->outcome = *in.p++;
		if (r->outcome > HP_BLOCK_MAX_OUTCOME)
			in_fail(&in, "unknown outcome");
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
