/*
 * base45.c
 *    Base45 (RFC 9285) decoding and encoding, bounded and allocation-free.
 */
#include "codec/hp_codec.h"

static const char b45_alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/* Value of one base45 character, or -1 */
static int
b45_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	switch (c)
	{
		case ' ': return 36;
		case '$': return 37;
		case '%': return 38;
		case '*': return 39;
		case '+': return 40;
		case '-': return 41;
		case '.': return 42;
		case '/': return 43;
		case ':': return 44;
	}
	return -1;
}

/* Upper bound of the decoded size of len base45 characters */
size_t
hp_base45_decoded_max(size_t len)
{
	return (len / 3) * 2 + 2;
}

/* Decode len characters into out (hp_base45_decoded_max(len) bytes) */
bool
hp_base45_decode(const char *in, size_t len, uint8_t *out, size_t *outlen,
				 HpErr *err)
{
	size_t		i = 0;
	size_t		o = 0;

	if (len == 0)
	{
		hp_seterr(err, HP_STAGE_BASE45, "no data after the prefix");
		return false;
	}
	if (len % 3 == 1)
	{
		hp_seterr(err, HP_STAGE_BASE45, "length %zu is not valid base45", len);
		return false;
	}
	while (i < len)
	{
		size_t		n = (len - i >= 3) ? 3 : 2;
		uint32_t	v = 0;
		uint32_t	mul = 1;

		for (size_t k = 0; k < n; k++)
		{
			int			d = b45_value((unsigned char) in[i + k]);

			if (d < 0)
			{
				hp_seterr(err, HP_STAGE_BASE45,
						  "invalid character at position %zu", i + k);
				return false;
			}
			v += (uint32_t) d * mul;
			mul *= 45;
		}
		if ((n == 3 && v > 0xFFFF) || (n == 2 && v > 0xFF))
		{
			hp_seterr(err, HP_STAGE_BASE45,
					  "group at position %zu is out of range", i);
			return false;
		}
		if (n == 3)
			out[o++] = (uint8_t) (v >> 8);
		out[o++] = (uint8_t) (v & 0xFF);
		i += n;
	}
	*outlen = o;
	return true;
}

/* Number of characters hp_base45_encode writes for len bytes */
size_t
hp_base45_encoded_len(size_t len)
{
	return (len / 2) * 3 + (len % 2) * 2;
}

/* Encode len bytes into out (hp_base45_encoded_len(len) chars, no NUL) */
void
hp_base45_encode(const uint8_t *in, size_t len, char *out)
{
	size_t		o = 0;

	for (size_t i = 0; i < len; i += 2)
	{
		uint32_t	v;

		if (i + 1 < len)
		{
			v = ((uint32_t) in[i] << 8) | in[i + 1];
			out[o++] = b45_alphabet[v % 45];
			v /= 45;
			out[o++] = b45_alphabet[v % 45];
			out[o++] = b45_alphabet[v / 45];
		}
		else
		{
			v = in[i];
			out[o++] = b45_alphabet[v % 45];
			out[o++] = b45_alphabet[v / 45];
		}
	}
}
