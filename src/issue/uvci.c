/*
 * uvci.c
 *    health_pass.uvci(): a new unique certificate identifier in the form of
 *    the eHealth Network guidelines on verifiable vaccination certificates,
 *    Annex 2 (option 3, "some semantics"), with its checksum:
 *
 *        URN:UVCI:01:<country>:<issuer>/<opaque>#<check>
 *
 *    The check character is Luhn mod N over the whole identifier before the
 *    '#' (prefix included), with N = 38 and the code points
 *    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:" ('#' is not in the set: it
 *    only separates the check character; eu-dcc-schema issues #38, #63 and
 *    the FAQ "UVCI checksum").  The published Swedish examples
 *    URN:UVCI:01:SE:EHM/V12916227TFJJ#Q and
 *    URN:UVCI:01:SE:EHM/C878/123456789ABC#B check out (test/sql/issue.sql).
 *
 *    The opaque part, when the caller gives none, is 128 bits from
 *    pg_strong_random() as 26 characters of Crockford's base 32 (digits and
 *    upper-case letters without I, L, O, U): unique by chance, 2^-64 for
 *    two among 2^32 identifiers (docs/design/issuing.md).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "issue/hp_issuing.h"

#define UVCI_PREFIX     "URN:UVCI:01:"
#define UVCI_MAX        80		/* the DCC schema's maxLength of ci */
#define UVCI_RANDOM     26		/* characters of 128 random bits */

static const char luhn_set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:";
static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/*
 * The Luhn mod 38 check character of s[0..len), or '\0' when s holds a
 * character outside the set.
 */
/*
 * Position of c in luhn_set, -1 when it is not there (NUL neither): a table
 * built once, since a UVCI's characters are random enough to defeat the
 * branch predictor in a chain of range tests
 */
static inline int
luhn_index(char c)
{
	static int8 pos[256];
	static bool ready = false;

	if (!ready)
	{
		memset(pos, -1, sizeof(pos));
		for (int i = 0; luhn_set[i] != '\0'; i++)
			pos[(unsigned char) luhn_set[i]] = (int8) i;
		ready = true;
	}
	return pos[(unsigned char) c];
}

static char
uvci_check_char(const char *s, size_t len)
{
	const int	n = (int) sizeof(luhn_set) - 1;
	int			factor = 2;
	int			sum = 0;

	for (size_t i = len; i-- > 0;)
	{
		int			at = luhn_index(s[i]);
		int			addend;

		if (at < 0)
			return '\0';
		addend = factor * at;
		factor = factor == 2 ? 1 : 2;
		sum += addend / n + addend % n;
	}
	return luhn_set[(n - sum % n) % n];
}

/* Check one part: 1..max characters of [A-Z0-9], and '/' inside when slash */
static void
check_part(const char *what, const char *s, size_t max, bool slash)
{
	size_t		len = strlen(s);

	if (len == 0 || len > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("uvci: %s must have 1 to %zu characters", what, max)));
	for (size_t i = 0; i < len; i++)
	{
		char		c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (slash && c == '/' && i > 0 && i < len - 1 && s[i - 1] != '/')
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("uvci: %s may hold only upper-case letters A-Z and digits%s",
						what, slash ? ", and '/' between them" : "")));
	}
}

/*
 * Why u[0..len) is not a UVCI issue() may sign for country, or NULL when it
 * is one: [URN:UVCI:]01:<country>:<A-Z 0-9 and single '/' inside>, with an
 * optional #<check> that must be its Luhn mod 38 character, at most
 * UVCI_MAX characters.  A pass's UVCI is what revocation and the audit
 * chain name it by, so it must be well formed and of the signer's country.
 */
const char *
hp_uvci_problem(const char *u, size_t len, const char *country)
{
	const char *body = u;
	size_t		blen;
	const char *hash = memchr(u, '#', len);

	if (len == 0 || len > UVCI_MAX)
		return "its ci must have 1 to 80 characters";
	blen = hash ? (size_t) (hash - u) : len;
	if (blen >= 9 && strncmp(u, "URN:UVCI:", 9) == 0)
		body = u + 9;
	if ((size_t) (body - u) + 6 > blen || strncmp(body, "01:", 3) != 0 ||
		body[5] != ':')
		return "its ci is not a UVCI of version 01 (URN:UVCI:01:<country>:...)";
	if (strlen(country) != 2 || country[0] < 'A' || country[0] > 'Z' ||
		country[1] < 'A' || country[1] > 'Z' || strncmp(body + 3, country, 2) != 0)
		return "its ci names another country than the signing key's certificate";
	for (const char *c = body + 6; c < u + blen; c++)
	{
		if ((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))
			continue;
		if (*c == '/' && c > body + 6 && c + 1 < u + blen && c[-1] != '/')
			continue;
		return "its ci may hold only A-Z, 0-9 and single '/' after the country";
	}
	if (blen == (size_t) (body - u) + 6)
		return "its ci has nothing after the country";
	if (hash && (len != blen + 2 || uvci_check_char(u, blen) != hash[1]))
		return "its ci's check character (after '#') is wrong";
	return NULL;
}

PG_FUNCTION_INFO_V1(hp_uvci_new);
/*
 * uvci(country text, issuer text, opaque text DEFAULT NULL,
 *      checksum boolean DEFAULT true) -> text
 */
Datum
hp_uvci_new(PG_FUNCTION_ARGS)
{
	char	   *country;
	char	   *issuer;
	char	   *opaque;
	bool		checksum;
	char		rnd[UVCI_RANDOM + 1];
	StringInfoData buf;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("uvci: country, issuer and checksum must not be null")));
	country = text_to_cstring(PG_GETARG_TEXT_PP(0));
	issuer = text_to_cstring(PG_GETARG_TEXT_PP(1));
	checksum = PG_GETARG_BOOL(3);
	if (strlen(country) != 2 || country[0] < 'A' || country[0] > 'Z' ||
		country[1] < 'A' || country[1] > 'Z')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("uvci: country must be two upper-case letters (ISO 3166-1 alpha-2)")));
	check_part("issuer", issuer, UVCI_MAX, true);
	if (PG_ARGISNULL(2))
	{
		uint8		r[16];
		int			bits = 0;
		uint32		acc = 0;
		int			o = 0;

		if (!pg_strong_random(r, sizeof(r)))
			elog(ERROR, "uvci: could not generate random bytes");
		/* 128 bits, 5 at a time from the top; the last character gets 3 */
		for (int i = 0; i < 16; i++)
		{
			acc = (acc << 8) | r[i];
			bits += 8;
			while (bits >= 5)
			{
				rnd[o++] = crockford[(acc >> (bits - 5)) & 31];
				bits -= 5;
			}
		}
		rnd[o++] = crockford[(acc << (5 - bits)) & 31];
		rnd[o] = '\0';
		Assert(o == UVCI_RANDOM);
		opaque = rnd;
	}
	else
	{
		opaque = text_to_cstring(PG_GETARG_TEXT_PP(2));
		check_part("opaque", opaque, UVCI_MAX, false);
	}

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s%s:%s/%s", UVCI_PREFIX, country, issuer, opaque);
	if (checksum)
	{
		char		c = uvci_check_char(buf.data, buf.len);

		Assert(c != '\0');
		appendStringInfo(&buf, "#%c", c);
	}
	if (buf.len > UVCI_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("uvci: the identifier would have %d characters, more than %d",
						buf.len, UVCI_MAX),
				 errhint("Shorten the issuer or the opaque part.")));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
