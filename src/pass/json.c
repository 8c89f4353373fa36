/*
 * json.c
 *    The certificate payload (hcert claim -260, key 1) as jsonb.
 *
 * The payload was validated by hp_cose_parse (depth, counts, text keys,
 * UTF-8, finite numbers, allowed tags), so this walk only converts: dates
 * and times stay the strings they were (tags 0 and 1004 are dropped),
 * integers become numerics, floats their shortest exact decimal.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

#include "pass/hp_pass.h"
#include "codec/hp_cbor.h"

/* Convert one item; role is WJB_ELEM or WJB_VALUE (or 0 at the top) */
static JsonbValue *
push_item(CborCur *c, JsonbParseState **st, JsonbIteratorToken role)
{
	CborHead	h;
	uint64_t	tags[HP_MAX_TAGS];
	int			ntags;
	JsonbValue	v;

	if (!hp_cbor_head_untagged(c, &h, 0, tags, &ntags))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored health pass is corrupt: %s", c->err->msg)));
	switch (h.major)
	{
		case CBOR_UINT:
		case CBOR_NINT:
		case CBOR_SIMPLE:
			if (h.major == CBOR_SIMPLE && h.simple != CBOR_FLOAT)
			{
				if (h.simple == CBOR_NULL)
					v.type = jbvNull;
				else
				{
					v.type = jbvBool;
					v.val.boolean = (h.simple == CBOR_TRUE);
				}
			}
			else
			{
				double		d;
				bool		is_int;
				int64_t		i;

				(void) hp_cbor_number(&h, &d, &is_int, &i);
				v.type = jbvNumeric;
				if (is_int)
					v.val.numeric = int64_to_numeric(i);
				else
					v.val.numeric = DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																		Float8GetDatum(d)));
			}
			break;
		case CBOR_TEXT:
			v.type = jbvString;
			v.val.string.val = hp_utf8_to_server(h.data, h.val, &v.val.string.len);
			break;
		case CBOR_ARRAY:
			pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
			for (uint64_t k = 0; k < h.val; k++)
				push_item(c, st, WJB_ELEM);
			return pushJsonbValue(st, WJB_END_ARRAY, NULL);
		case CBOR_MAP:
			pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
			for (uint64_t k = 0; k < h.val; k++)
			{
				CborHead	key;

				(void) hp_cbor_head(c, &key);
				v.type = jbvString;
				v.val.string.val = hp_utf8_to_server(key.data, key.val, &v.val.string.len);
				pushJsonbValue(st, WJB_KEY, &v);
				push_item(c, st, WJB_VALUE);
			}
			return pushJsonbValue(st, WJB_END_OBJECT, NULL);
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored health pass is corrupt: unexpected CBOR item")));
	}
	return pushJsonbValue(st, role, &v);
}

/* The payload map at buf[0..len) as jsonb */
Jsonb *
hp_hcert_to_jsonb(const uint8 *buf, size_t len)
{
	CborCur		c;
	HpErr		err;
	JsonbParseState *st = NULL;
	JsonbValue *top;

	hp_cbor_init(&c, buf, len, HP_STAGE_HCERT, &err);
	top = push_item(&c, &st, WJB_VALUE);
	return JsonbValueToJsonb(top);
}
