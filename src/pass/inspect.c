/*
 * inspect.c
 *    health_pass.inspect(text): decode as far as possible and say why a
 *    pass is rejected.  Never raises for any input.
 */
#include "postgres.h"

#include "common/base64.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "pass/hp_pass.h"

/* Append "key": base64 of bytes */
static void
add_b64(StringInfo s, const char *key, const uint8 *b, size_t len)
{
	int			cap = pg_b64_enc_len((int) len) + 1;
	char	   *buf = palloc(cap);
	int			n = pg_b64_encode((const char *) b, (int) len, buf, cap);

	buf[n < 0 ? 0 : n] = '\0';
	appendStringInfo(s, ",\"%s\":", key);
	escape_json(s, buf);
}

PG_FUNCTION_INFO_V1(hp_inspect);
/* inspect(text) -> jsonb: stage, error and whatever could be read */
Datum
hp_inspect(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	size_t		len = VARSIZE_ANY_EXHDR(t);
	char	   *str = VARDATA_ANY(t);
	HpCose		c;
	HpErr		err;
	const uint8 *cose = NULL;
	size_t		cose_len = 0;
	bool		ok;
	StringInfoData s;
	size_t		dlen = Min(len, HP_MAX_TEXT + 1);

	err.stage = HP_STAGE_NONE;
	err.msg[0] = '\0';
	ok = hp_decode_text(str, dlen, palloc(hp_base45_decoded_max(dlen)),
						palloc(HP_MAX_INFLATED), &cose, &cose_len, &c, &err);

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"stage\":");
	if (ok)
		appendStringInfoString(&s, "null,\"error\":null");
	else
	{
		escape_json(&s, hp_stage_name(err.stage));
		appendStringInfoString(&s, ",\"error\":");
		escape_json(&s, psprintf("%s: %s", hp_stage_name(err.stage), err.msg));
	}
	if (err.stage == HP_STAGE_NONE || err.stage >= HP_STAGE_COSE)
	{
		appendStringInfo(&s, ",\"cose_bytes\":%zu", cose_len);
		if (c.kid)
		{
			add_b64(&s, "kid", c.kid, c.kid_len);
			appendStringInfo(&s, ",\"kid_header\":\"%s\"",
							 c.kid_protected ? "protected" : "unprotected");
		}
		if (c.has_alg)
		{
			const char *name = hp_alg_name(&c);

			appendStringInfoString(&s, ",\"alg\":");
			if (name)
				escape_json(&s, name);
			else if (c.alg_is_int)
				appendStringInfo(&s, INT64_FORMAT, c.alg);
			else
				appendStringInfoString(&s, "\"(text)\"");
		}
		if (c.sig)
			appendStringInfo(&s, ",\"signature_bytes\":%zu", c.sig_len);
		if (err.stage == HP_STAGE_NONE || err.stage >= HP_STAGE_CWT)
		{
			const char *sep = "";

			appendStringInfoString(&s, ",\"claims\":{");
			if (c.iss)
			{
				appendStringInfoString(&s, "\"iss\":");
				escape_json(&s, pnstrdup((const char *) c.iss, c.iss_len));
				sep = ",";
			}
			if (c.has_iat)
			{
				appendStringInfo(&s, "%s\"iat\":" INT64_FORMAT, sep, c.iat);
				sep = ",";
			}
			if (c.has_exp)
				appendStringInfo(&s, "%s\"exp\":" INT64_FORMAT, sep, c.exp);
			appendStringInfoChar(&s, '}');
		}
	}
	if (ok)
	{
		const char *kind = hp_kind_name(c.kind);

		if (kind)
			appendStringInfo(&s, ",\"kind\":\"%s\"", kind);
		appendStringInfoString(&s, ",\"payload\":");
		appendStringInfoString(&s, JsonbToCString(NULL,
												  &hp_hcert_to_jsonb(c.hcert, c.hcert_len)->root,
												  (int) c.hcert_len));
	}
	appendStringInfoChar(&s, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));
}
