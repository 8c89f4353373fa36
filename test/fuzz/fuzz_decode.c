/*
 * fuzz_decode.c
 *    libFuzzer target for the whole decoder: HC1: text through base45,
 *    zlib, COSE, CWT and hcert, then the raw COSE parser on the same bytes.
 *    Built by test/fuzz/run.sh with clang -fsanitize=fuzzer,address,undefined.
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/hp_codec.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	free(b45);
	free(z);
	free(text);
	return 0;
}
