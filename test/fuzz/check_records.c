/*
 * check_records.c
 *    Randomized test of the writer's record check (src/audit/block.c
 *    hp_record_check) and the readers' (hp_entry_check), from a fixed seed:
 *    garbage records as a use-after-free could leave them in the queue, with
 *    every text field in an allocation of exactly its size (so AddressSanitizer
 *    sees a read past it).  For each record: the check never reads out of
 *    bounds, its safe form is readable (hp_entry_check finds nothing) and
 *    names every invalid field in its reason, and a block of such records
 *    encodes, decodes back to the same entries, and reads as readable.
 *    Addresses are also checked against inet_pton.
 *    Built and run by test/fuzz/run.sh: check_records [iterations] [seed].
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/hp_block.h"

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	/* splitmix64 */
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned
rnd_below(unsigned n)
{
	return n ? (unsigned) (rnd() % n) : 0;
}

static int	failures;

#define CHECK(cond, ...) \
	do { if (!(cond)) { fprintf(stderr, "check_records: " __VA_ARGS__); fputc('\n', stderr); \
		if (++failures > 20) exit(1); } } while (0)

/* Strict UTF-8, as PostgreSQL's verifier: valid prefix, never a zero byte */
static size_t
utf8_valid(void *arg, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *) str;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t		n;
		unsigned	cp;

		if (c == 0)
			break;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 2, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 3, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 4, cp = c & 0x07;
		else
			break;
		if (len - i < n)
			break;
		for (size_t k = 1; k < n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
			(n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
			break;
		i += n;
	}
	return i;
}

/* SQL_ASCII or a single-byte encoding: anything but a zero byte */
static size_t
bytes_valid(void *arg, const char *s, size_t len)
{
	const char *nul = memchr(s, '\0', len);

	return nul ? (size_t) (nul - s) : len;
}

/* ASCII only: a stricter encoding than any real one */
static size_t
ascii_valid(void *arg, const char *s, size_t len)
{
	size_t		i = 0;

	while (i < len && s[i] > 0)
		i++;
	return i;
}

static const char *const addrs[] = {
	"127.0.0.1", "10.0.0.1", "255.255.255.255", "0.0.0.0", "::1", "::", "fe80::1",
	"2001:db8::8a2e:370:7334", "::ffff:192.168.1.1", "1:2:3:4:5:6:7:8", "10.0.0.1/8",
	"::1/128", "10.0.0.300", "1.2.3", "01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", ":1",
	"1:", "fe80::1%eth0", "::ffff:1.2.3.4.5", "1.2.3.4/33", "::/0", "12345::", "g::1",
	"1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "1.2.3.4 ", "",
	"1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4", "1.2.3.4/", "1.2.3.4/08", "::/129"
};

static const char *const words[] = {
	"postgres", "regress_reader", "care", "R1", "P30", "é", "€", "😀", "\\", "\xc3",
	"\xff", "\xe2\x82", "\xf0\x9f\x98", "\xc0\xaf", "\xed\xa0\x80", "\n", "'", "\""
};

/* Fill a field of size bytes with garbage, text, or text cut at the end */
static void
fill_text(char *buf, size_t size, int field, bool plausible)
{
	unsigned	kind = plausible ? 2 + rnd_below(2) : rnd_below(6);
	size_t		n = 0;
	unsigned	nwords = plausible ? 9 : sizeof(words) / sizeof(words[0]);

	if (size == 0)
		return;
	memset(buf, 0, size);
	if (kind == 0)
	{
		/* raw garbage, maybe no NUL at all */
		for (size_t i = 0; i < size; i++)
			buf[i] = (char) rnd();
		return;
	}
	if (kind == 1 || (field == HP_F_CLIENT_ADDR && kind < 4))
	{
		const char *a = addrs[rnd_below(plausible ? 12 : sizeof(addrs) / sizeof(addrs[0]))];

		strncpy(buf, a, size - 1);
		return;
	}
	if (kind == 2 && (!plausible || rnd_below(3) == 0))
		return;					/* empty */
	/* words, until full: kind 5 fills it to the last byte (no NUL) */
	while (n < size)
	{
		const char *w = words[rnd_below(nwords)];
		size_t		wl = strlen(w);

		if (n + wl > size - (kind == 5 ? 0 : 1))
		{
			if (kind == 5)
				memcpy(buf + n, w, size - n);
			break;
		}
		memcpy(buf + n, w, wl);
		n += wl;
		if (kind == 3 && rnd_below(4) == 0)
			break;
	}
}

static int
same_text(const char *x, const char *y)
{
	return (x == NULL || y == NULL) ? x == y : strcmp(x, y) == 0;
}

static int
same_entry(const HpEntry *x, const HpEntry *y)
{
	return x->id == y->id && x->logged_at == y->logged_at &&
		x->backend_pid == y->backend_pid && x->statement_id == y->statement_id &&
		x->relid == y->relid && x->outcome == y->outcome &&
		memcmp(x->hash, y->hash, 32) == 0 &&
		same_text(x->session_user_name, y->session_user_name) &&
		same_text(x->current_user_name, y->current_user_name) &&
		same_text(x->client_addr, y->client_addr) &&
		same_text(x->application_name, y->application_name) &&
		same_text(x->subject, y->subject) && same_text(x->purpose, y->purpose) &&
		same_text(x->reason, y->reason) && same_text(x->node, y->node);
}

static int64_t
rnd_time(void)
{
	switch (rnd_below(6))
	{
		case 0:
			return (int64_t) rnd();
		case 1:
			return INT64_MAX - (int64_t) rnd_below(3);
		case 2:
			return INT64_MIN + (int64_t) rnd_below(3);
		case 3:
			return -(int64_t) rnd_below(1000000);
		default:
			return INT64_C(820000000000000) + (int64_t) rnd_below(1000000000);
	}
}

typedef struct Alloc
{
	void	   *p[4];
	int			n;
} Alloc;

static void *
test_alloc(void *arg, size_t size)
{
	Alloc	   *a = arg;

	if (a->n == 4)
		abort();
	return a->p[a->n++] = malloc(size ? size : 1);
}

/* Check an address against inet_pton (no /bits) */
static void
check_inet(const char *s)
{
	HpInet		a;
	unsigned char ref[16];
	int			ok6 = inet_pton(AF_INET6, s, ref) == 1;
	int			ok4 = !ok6 && inet_pton(AF_INET, s, ref) == 1;
	bool		mine = hp_inet_parse(s, &a);

	if (strchr(s, '/'))
		return;
	CHECK(mine == (ok4 || ok6), "address \"%s\": hp_inet_parse %d, inet_pton %d", s, mine, ok4 || ok6);
	if (mine && (ok4 || ok6))
		CHECK(a.v6 == ok6 && memcmp(a.addr, ref, ok6 ? 16 : 4) == 0 && a.bits == (ok6 ? 128 : 32),
			  "address \"%s\" read differently from inet_pton", s);
}

int
main(int argc, char **argv)
{
	static const size_t sizes[HP_NTEXT] = {64, 64, 48, 64, 128, 64, 256};
	long		iterations = argc > 1 ? atol(argv[1]) : 20000;
	uint64_t	seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 20260112;
	HpEntry    *batch = malloc(HP_BLOCK_RECORDS * sizeof(HpEntry));
	HpRawRecord *raws = malloc(HP_BLOCK_RECORDS * sizeof(HpRawRecord));
	char	  **arenas = calloc(HP_BLOCK_RECORDS, sizeof(char *));
	long		invalid = 0,
				blocks = 0;
	int			nb = 0;

	rng_state = seed;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		check_inet(addrs[i]);

	for (long it = 0; it < iterations; it++)
	{
		HpRawRecord *r = &raws[nb];
		/* one encoding per block */
		HpTextValid valid = blocks % 5 == 0 ? bytes_valid : blocks % 5 == 1 ? ascii_valid : utf8_valid;
		int64_t		now = rnd_below(8) ? INT64_C(852076800000000) + (int64_t) rnd_below(1000) : rnd_time();
		HpEntry		e,
					e2;
		uint32_t	bad,
					bad2;
		size_t		cap;

		/* half the records plausible, half garbage */
		bool		plausible = rnd_below(2);

		for (int f = 0; f < HP_NTEXT; f++)
		{
			/* mostly the real sizes, sometimes odd ones (zero included) */
			size_t		size = plausible || rnd_below(10) ? sizes[f] : rnd_below(300);
			char	   *buf = malloc(size ? size : 1);

			fill_text(buf, size, f, plausible);
			r->text[f] = buf;
			r->size[f] = size;
		}
		r->logged_at = rnd_below(3) ? (int64_t) ((uint64_t) now - rnd_below(1000)) : rnd_time();
		r->statement_id = rnd_below(4) ? (int64_t) rnd_below(100000) + 1 : (int64_t) rnd();
		r->relid = (uint32_t) rnd();
		r->backend_pid = rnd_below(4) ? (int32_t) rnd_below(100000) + 1 : (int32_t) rnd();
		r->outcome = rnd_below(3) ? (uint8_t) rnd_below(HP_OUTCOME_LAST + 1) : (uint8_t) rnd();
		r->subject_null = rnd_below(4) ? (uint8_t) rnd_below(2) : (uint8_t) rnd();
		r->client_addr_null = rnd_below(4) ? (uint8_t) rnd_below(2) : (uint8_t) rnd();
		if (plausible)
		{
			r->logged_at = (int64_t) ((uint64_t) now - rnd_below(1000));
			r->statement_id = (int64_t) rnd_below(100000) + 1;
			r->backend_pid = (int32_t) rnd_below(100000) + 1;
			r->outcome = (uint8_t) rnd_below(HP_OUTCOME_LAST + 1);
			r->subject_null = ((char *) r->text[HP_F_SUBJECT])[0] == '\0';
			r->client_addr_null = ((char *) r->text[HP_F_CLIENT_ADDR])[0] == '\0';
		}
		if (rnd_below(3) == 0)
		{
			check_inet(r->size[HP_F_CLIENT_ADDR] && memchr(r->text[HP_F_CLIENT_ADDR], 0,
															r->size[HP_F_CLIENT_ADDR]) ?
					   r->text[HP_F_CLIENT_ADDR] : "");
		}

		memset(&e, 0xA5, sizeof(e));
		bad = hp_record_check(r, valid, NULL, now, &e, NULL, 0);
		if (bad == 0)
		{
			CHECK(hp_entry_check(&e, valid, NULL) == 0, "a valid record reads as unreadable");
			for (int f = 0; f < HP_NTEXT; f++)
			{
				const char *t[HP_NTEXT] = {e.session_user_name, e.current_user_name, e.client_addr,
				e.application_name, e.subject, e.purpose, e.reason};

				CHECK(t[f] == NULL || t[f] == r->text[f], "a valid field is not the record's own");
			}
		}
		cap = hp_record_arena_size(r);
		arenas[nb] = malloc(cap);
		memset(&e2, 0xA5, sizeof(e2));
		bad2 = hp_record_check(r, valid, NULL, now, &e2, arenas[nb], cap);
		CHECK(bad2 == bad, "the check depends on the arena");
		CHECK(hp_entry_check(&e2, valid, NULL) == 0,
			  "iteration %ld: the safe form of a record is unreadable (0x%x)", it,
			  hp_entry_check(&e2, valid, NULL));
		if (bad)
		{
			invalid++;
			CHECK(e2.reason && strncmp(e2.reason, "invalid record:", 15) == 0,
				  "an invalid record's reason does not say so");
			for (int f = 0; f < HP_NFIELD; f++)
				if (bad & (1u << f))
					CHECK(e2.reason && strstr(e2.reason, hp_field_name((HpField) f)),
						  "the reason does not name %s", hp_field_name((HpField) f));
			CHECK(e2.session_user_name && e2.current_user_name, "a name went missing");
		}
		else
			CHECK(same_entry(&e, &e2) || (e.id = e2.id, memcpy(e.hash, e2.hash, 32), same_entry(&e, &e2)),
				  "a valid record's entry depends on the arena");
		e2.id = it + 1;
		for (int k = 0; k < 32; k++)
			e2.hash[k] = (uint8_t) rnd();
		/* some records shipped by a standby: a version 2 block */
		e2.node = (blocks % 3 == 1 && rnd_below(2)) ? (rnd_below(2) ? "replica-a" : "b:2") : NULL;
		batch[nb++] = e2;

		/* a block of what was checked: packs, unpacks the same, reads as readable */
		if (nb == HP_BLOCK_RECORDS || rnd_below(40) == 0 || it == iterations - 1)
		{
			uint8_t		prev[32] = {1};
			size_t		max = hp_block_encoded_max(batch, nb);
			uint8_t    *out = malloc(max);
			int		   *ctx = malloc(2 * sizeof(int) * nb);
			size_t		len = hp_block_encode(prev, batch, nb, ctx, out, max);
			Alloc		a = {{0}, 0};
			HpBlock		b;
			const char *why = NULL;

			CHECK(len > 0, "the block encoder refused checked records");
			if (len > 0)
			{
				bool		ok = hp_block_decode(out, len, test_alloc, &a, &b, &why);

				CHECK(ok && b.n == nb, "a block of checked records does not decode: %s", why ? why : "");
				for (int i = 0; ok && i < b.n && i < nb; i++)
				{
					CHECK(same_entry(&b.entries[i], &batch[i]), "record %d changed in the block", i);
					CHECK(hp_entry_check(&b.entries[i], valid, NULL) == 0,
						  "record %d of the block is unreadable", i);
				}
			}
			for (int i = 0; i < a.n; i++)
				free(a.p[i]);
			free(out);
			free(ctx);
			for (int i = 0; i < nb; i++)
			{
				for (int f = 0; f < HP_NTEXT; f++)
					free((void *) raws[i].text[f]);
				free(arenas[i]);
			}
			nb = 0;
			blocks++;
		}
	}
	CHECK(invalid > iterations / 4 && invalid < iterations * 3 / 4,
		  "the mix of valid and invalid records is off: %ld invalid", invalid);
	printf("check_records: %ld records (%ld invalid) in %ld blocks, seed %llu: %d failures\n",
		   iterations, invalid, blocks, (unsigned long long) seed, failures);
	free(batch);
	free(raws);
	free(arenas);
	return failures ? 1 : 0;
}
