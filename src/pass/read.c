/*
 * read.c
 *    Reading a pass: payload, kid, alg, issuer, dates, kind, uvci.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pass/hp_pass.h"

/* A parsed pass argument */
#define GET_PARSED(n, cose) \
	HpCose		cose; \
	hp_pass_parse(PG_GETARG_PASS_P(n), &cose)

/* Text from UTF-8 bytes, converted to the database encoding */
static text *
utf8_text(const uint8 *s, size_t len)
{
	int			n;
	char	   *conv = hp_utf8_to_server(s, len, &n);

	return cstring_to_text_with_len(conv, n);
}

PG_FUNCTION_INFO_V1(hp_payload);
/* payload(p): the certificate payload as jsonb */
Datum
hp_payload(PG_FUNCTION_ARGS)
{
	GET_PARSED(0, c);
	PG_RETURN_JSONB_P(hp_hcert_to_jsonb(c.hcert, c.hcert_len));
}

PG_FUNCTION_INFO_V1(hp_kid);
/* kid(p): key identifier (protected header first), NULL when absent */
Datum
hp_kid(PG_FUNCTION_ARGS)
{
	GET_PARSED(0, c);
	if (c.kid == NULL)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(hp_bytea(c.kid, c.kid_len));
}

PG_FUNCTION_INFO_V1(hp_alg);
/* alg(p): 'ES256', 'PS256', or the protected-header value as text */
Datum
hp_alg(PG_FUNCTION_ARGS)
{
	const char *name;

	GET_PARSED(0, c);
	name = hp_alg_name(&c);
	if (name)
		PG_RETURN_TEXT_P(cstring_to_text(name));
	if (c.has_alg && c.alg_is_int)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf(INT64_FORMAT, c.alg)));
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(hp_issuer);
/* issuer(p): claim 1 (iss), usually a country code */
Datum
hp_issuer(PG_FUNCTION_ARGS)
{
	GET_PARSED(0, c);
	if (c.iss == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(utf8_text(c.iss, c.iss_len));
}

PG_FUNCTION_INFO_V1(hp_issued_at);
/* issued_at(p): claim 6 (iat) */
Datum
hp_issued_at(PG_FUNCTION_ARGS)
{
	GET_PARSED(0, c);
	if (!c.has_iat)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(time_t_to_timestamptz((pg_time_t) c.iat));
}

PG_FUNCTION_INFO_V1(hp_expires_at);
/* expires_at(p): claim 4 (exp) */
Datum
hp_expires_at(PG_FUNCTION_ARGS)
{
	GET_PARSED(0, c);
	if (!c.has_exp)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(time_t_to_timestamptz((pg_time_t) c.exp));
}

PG_FUNCTION_INFO_V1(hp_kind);
/* kind(p): 'vaccination', 'test' or 'recovery' */
Datum
hp_kind(PG_FUNCTION_ARGS)
{
	const char *name;

	GET_PARSED(0, c);
	name = hp_kind_name(c.kind);
	if (name == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(name));
}

PG_FUNCTION_INFO_V1(hp_uvci);
/* uvci(p): the "ci" of the certificate entry */
Datum
hp_uvci(PG_FUNCTION_ARGS)
{
	GET_PARSED(0, c);
	if (c.uvci == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(utf8_text(c.uvci, c.uvci_len));
}
