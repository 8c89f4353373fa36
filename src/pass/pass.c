/*
 * pass.c
 *    The health_pass.pass type: text and binary I/O, equality, ordering
 *    and hashing.  The COSE bytes are stored exactly as received.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "pass/hp_pass.h"

/* Raise a decoding failure as a class 22 error naming the stage */
static void
hp_raise_decode_error(const HpErr *err, int sqlstate)
{
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("invalid health pass: %s: %s",
					hp_stage_name(err->stage), err->msg)));
}

/* Parse a stored pass; stored bytes failing to parse means corruption */
void
hp_pass_parse(HealthPass *p, HpCose *c)
{
	HpErr		err;

	if (p->format != HP_FORMAT_EU_DCC)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("health pass has unknown storage format %d", p->format)));
	if (!hp_cose_parse(p->data, HP_DATA_LEN(p), c, &err))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored health pass is corrupt: %s: %s",
						hp_stage_name(err.stage), err.msg)));
}

/* UTF-8 bytes (validated by the decoder) in the database encoding */
char *
hp_utf8_to_server(const uint8 *s, size_t len, int *outlen)
{
	char	   *conv = pg_any_to_server((const char *) s, (int) len, PG_UTF8);

	*outlen = conv == (const char *) s ? (int) len : (int) strlen(conv);
	return conv;
}

/* Build a pass value from validated COSE bytes */
static HealthPass *
make_pass(const uint8 *cose, size_t len)
{
	HealthPass *p = palloc(offsetof(HealthPass, data) + len);

	SET_VARSIZE(p, offsetof(HealthPass, data) + len);
	p->format = HP_FORMAT_EU_DCC;
	memcpy(p->data, cose, len);
	return p;
}

/* Scratch space for inflation; the result is copied out before returning */
static uint8 inflate_buf[HP_MAX_INFLATED];

PG_FUNCTION_INFO_V1(hp_pass_in);
/* Text input: HC1: base45 zlib COSE */
Datum
hp_pass_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	size_t		len = strlen(str);
	HpCose		c;
	HpErr		err;
	const uint8 *cose;
	size_t		cose_len;
	uint8	   *b45;
	uint8	   *z;

	if (len > HP_MAX_TEXT)
		len = HP_MAX_TEXT + 1;	/* hp_decode_text reports it; no big buffer */
	b45 = palloc(hp_base45_decoded_max(len));
	z = inflate_buf;
	if (!hp_decode_text(str, len, b45, z, &cose, &cose_len, &c, &err))
		hp_raise_decode_error(&err, ERRCODE_INVALID_TEXT_REPRESENTATION);
	PG_RETURN_POINTER(make_pass(cose, cose_len));
}

PG_FUNCTION_INFO_V1(hp_pass_out);
/* Text output: HC1: + base45(zlib(stored bytes)) */
Datum
hp_pass_out(PG_FUNCTION_ARGS)
{
	HealthPass *p = PG_GETARG_PASS_P(0);
	size_t		len = HP_DATA_LEN(p);
	uint8	   *z = palloc(hp_deflate_bound(len));
	size_t		zlen;
	char	   *out;
	size_t		olen;

	if (!hp_deflate(p->data, len, z, &zlen))
		elog(ERROR, "could not compress health pass");
	olen = hp_base45_encoded_len(zlen);
	out = palloc(olen + 5);
	memcpy(out, "HC1:", 4);
	hp_base45_encode(z, zlen, out + 4);
	out[olen + 4] = '\0';
	PG_RETURN_CSTRING(out);
}

PG_FUNCTION_INFO_V1(hp_pass_recv);
/* Binary input: format byte, then the COSE bytes; fully validated */
Datum
hp_pass_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			format = pq_getmsgbyte(buf);
	int			len = buf->len - buf->cursor;
	const char *bytes;
	HpCose		c;
	HpErr		err;

	if (format != HP_FORMAT_EU_DCC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid health pass: unknown binary format %d", format)));
	if (len > HP_MAX_INFLATED)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid health pass: cose: %d bytes exceed %d",
						len, HP_MAX_INFLATED)));
	bytes = pq_getmsgbytes(buf, len);
	if (!hp_cose_parse((const uint8 *) bytes, len, &c, &err))
		hp_raise_decode_error(&err, ERRCODE_INVALID_BINARY_REPRESENTATION);
	PG_RETURN_POINTER(make_pass((const uint8 *) bytes, len));
}

PG_FUNCTION_INFO_V1(hp_pass_send);
/* Binary output: format byte, then the stored bytes */
Datum
hp_pass_send(PG_FUNCTION_ARGS)
{
	HealthPass *p = PG_GETARG_PASS_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, p->format);
	pq_sendbytes(&buf, (const char *) p->data, HP_DATA_LEN(p));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Total order: format, then bytes, then length */
static int
pass_cmp(HealthPass *a, HealthPass *b)
{
	size_t		la = HP_DATA_LEN(a);
	size_t		lb = HP_DATA_LEN(b);
	int			r;

	if (a->format != b->format)
		return a->format < b->format ? -1 : 1;
	r = memcmp(a->data, b->data, Min(la, lb));
	if (r != 0)
		return r < 0 ? -1 : 1;
	return la == lb ? 0 : (la < lb ? -1 : 1);
}

#define PASS_CMP_FN(name, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	int			r = pass_cmp(PG_GETARG_PASS_P(0), PG_GETARG_PASS_P(1)); \
	PG_RETURN_BOOL(expr); \
}

/* Comparison operators over the stored bytes */
PASS_CMP_FN(hp_pass_eq, r == 0)
PASS_CMP_FN(hp_pass_ne, r != 0)
PASS_CMP_FN(hp_pass_lt, r < 0)
PASS_CMP_FN(hp_pass_le, r <= 0)
PASS_CMP_FN(hp_pass_gt, r > 0)
PASS_CMP_FN(hp_pass_ge, r >= 0)

PG_FUNCTION_INFO_V1(hp_pass_cmp);
/* btree support function */
Datum
hp_pass_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(pass_cmp(PG_GETARG_PASS_P(0), PG_GETARG_PASS_P(1)));
}

PG_FUNCTION_INFO_V1(hp_pass_hash);
/* hash support function, consistent with = */
Datum
hp_pass_hash(PG_FUNCTION_ARGS)
{
	HealthPass *p = PG_GETARG_PASS_P(0);

	return hash_any((const unsigned char *) &p->format,
					HP_DATA_LEN(p) + 1);
}

PG_FUNCTION_INFO_V1(hp_pass_hash_extended);
/* extended hash support function, consistent with = */
Datum
hp_pass_hash_extended(PG_FUNCTION_ARGS)
{
	HealthPass *p = PG_GETARG_PASS_P(0);

	return hash_any_extended((const unsigned char *) &p->format,
							 HP_DATA_LEN(p) + 1, PG_GETARG_INT64(1));
}
