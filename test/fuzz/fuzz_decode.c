/*
 * fuzz_decode.c
 *    libFuzzer target for every parser of untrusted bytes: HC1: text through
 *    base45, zlib, COSE, CWT and hcert; the raw COSE parser on the same
 *    bytes; and the audit block decoder (a superuser can store any bytes in
 *    audit_block), whose successes must pack again to the same bytes.
 *    Built by test/fuzz/run.sh with clang -fsanitize=fuzzer,address,undefined.
 */
#include <stdlib.h>
#include <string.h>

#include "audit/hp_block.h"
#include "codec/hp_codec.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The block decoder's allocations, freed after each input */
typedef struct FuzzArena
{
	void	   *p[3];
	int			n;
} FuzzArena;

static void *
fuzz_alloc(void *arg, size_t size)
{
	FuzzArena  *a = arg;

	if (a->n == 3)
		abort();				/* the decoder promises at most three calls */
	return a->p[a->n++] = malloc(size ? size : 1);
}

/* Equal texts, NULL equal only to NULL */
static int
same_text(const char *x, const char *y)
{
	return (x == NULL || y == NULL) ? x == y : strcmp(x, y) == 0;
}

/* Every field of two entries equal */
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

/* Text validity for hp_entry_check: anything but a zero byte */
static size_t
fuzz_bytes_valid(void *arg, const char *s, size_t len)
{
	const char *nul = memchr(s, '\0', len);

	return nul ? (size_t) (nul - s) : len;
}

/* Decode data as an audit block; a block that decodes must encode back */
static void
fuzz_block(const uint8_t *data, size_t size)
{
	FuzzArena	a = {{0}, 0};
	HpBlock		b;
	const char *why = NULL;

	if (hp_block_decode(data, size, fuzz_alloc, &a, &b, &why))
	{
		size_t		cap = hp_block_encoded_max(b.entries, b.n);
		uint8_t    *out = malloc(cap);
		int		   *ctx = malloc(sizeof(int) * 2 * (b.n + 1));
		size_t		len = hp_block_encode(b.prev_hash, b.entries, b.n, ctx, out, cap);

		FuzzArena	a2 = {{0}, 0};
		HpBlock		b2;

		/* packed again it is no longer (varints minimal, contexts once)
		 * and unpacks to the same records */
		if (len == 0 || len > size ||
			!hp_block_decode(out, len, fuzz_alloc, &a2, &b2, &why) ||
			b2.n != b.n || memcmp(b2.prev_hash, b.prev_hash, 32) != 0)
			abort();
		for (int i = 0; i < b.n; i++)
			if (!same_entry(&b.entries[i], &b2.entries[i]))
				abort();
		/* the readers' check reads any decoded entry, addresses included */
		for (int i = 0; i < b.n; i++)
			(void) hp_entry_check(&b.entries[i], fuzz_bytes_valid, NULL);
		for (int i = 0; i < a2.n; i++)
			free(a2.p[i]);
		free(out);
		free(ctx);
	}
	else if (why == NULL)
		abort();
	for (int i = 0; i < a.n; i++)
		free(a.p[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	HpCose		c;
	HpErr		err;
	const uint8_t *cose;
	size_t		cose_len;
	uint8_t    *b45 = malloc(hp_base45_decoded_max(size) + 1);
	uint8_t    *z = malloc(HP_MAX_INFLATED);
	char	   *text = malloc(size + 4);

	/* as text after the prefix, so base45 and later stages are reached */
	memcpy(text, "HC1:", 4);
	memcpy(text + 4, data, size);
	if (hp_decode_text(text, size + 4, b45, z, &cose, &cose_len, &c, &err))
	{
		/* success: the payload was found and lies inside the inflated bytes */
		if (c.hcert == NULL || c.hcert < cose || c.hcert + c.hcert_len > cose + cose_len)
			abort();
	}
	/* as raw COSE bytes */
	if (hp_cose_parse(data, size, &c, &err))
	{
		if (c.payload + c.payload_len > data + size || c.sig + c.sig_len > data + size)
			abort();
	}
	fuzz_block(data, size);
	free(b45);
	free(z);
	free(text);
	return 0;
}
