/*
 * issue.c
 *    health_pass.issue(payload jsonb, key text, valid_for interval,
 *    issued_at timestamptz) -> health_pass.pass: sign a new pass with a
 *    registered signing key (docs/design/issuing.md).
 *
 *    Stages, each with its own SQLSTATE, in the order they run:
 *      key       the key is opened (keys.c: name, grant, private key);
 *      payload   jsonb -> CBOR, within the decoder's limits (YHI01);
 *      schema    schema_errors(payload) is empty (22023);
 *      key       the DSC is valid at issued_at, names a country and allows
 *                the pass's kind (YHI02);
 *      validity  valid_for is positive and the dates fit (YHI04);
 *      sign      hp_signer_sign over the Sig_structure (keys.c; YHI03 for a
 *                signature of the wrong size).
 *    The payload's ci must be a UVCI of the key's country (payload stage).
 *    Then the issuance is recorded in the audit chain (outcome issued, the
 *    signing_key table, the UVCI as subject, the key and the pass's
 *    SIGNATURE revocation hash in the reason, the role whose grant signed
 *    as current user), and the pass is returned only once that record is
 *    durable (audit/event.c); issue_batch() waits once for a whole batch.
 */
#include "postgres.h"

#include <math.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "codec/hp_cbor.h"
#include "issue/hp_issuing.h"
#include "issue/hp_signing.h"
#include "verify/hp_verify.h"

#define ERRCODE_HP_ISSUE_PAYLOAD   MAKE_SQLSTATE('Y','H','I','0','1')
#define ERRCODE_HP_ISSUE_KEY       MAKE_SQLSTATE('Y','H','I','0','2')
#define ERRCODE_HP_ISSUE_SIGN      MAKE_SQLSTATE('Y','H','I','0','3')
#define ERRCODE_HP_ISSUE_VALIDITY  MAKE_SQLSTATE('Y','H','I','0','4')
#define ERRCODE_HP_ISSUE_REVOKED   MAKE_SQLSTATE('Y','H','I','0','5')

/*
 * The largest COSE message issued: its HC1: text (zlib, base45) must fit
 * HP_MAX_TEXT even when it does not compress, so every pass issued reads
 * back through pass_in.
 */
static size_t
max_cose_len(void)
{
	static size_t n = 0;

	if (n == 0)
	{
		n = HP_MAX_INFLATED;
		while (n > 64 && 4 + hp_base45_encoded_len(hp_deflate_bound(n)) > HP_MAX_TEXT)
			n -= 64;
	}
	return n;
}

/* Scratch space, backend-local: the claims, the Sig_structure, the message */
static uint8 claims_buf[HP_MAX_INFLATED];
static uint8 tbs_buf[HP_MAX_INFLATED + 128];
/*
 * The message is written straight after a pass's header, so the finished
 * pass is this buffer (issue_with() returns it; valid until the next call)
 */
static union
{
	HealthPass	hdr;
	uint8		bytes[offsetof(HealthPass, data) + HP_MAX_INFLATED + HP_MAX_SIG + 128];
}			pass_buf;

#define cose_buf (pass_buf.bytes + offsetof(HealthPass, data))
#define COSE_BUF_SIZE (sizeof(pass_buf.bytes) - offsetof(HealthPass, data))

static void
payload_error(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/* Raise a payload-stage error */
static void
payload_error(const char *fmt,...)
{
	char		msg[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ereport(ERROR,
			(errcode(ERRCODE_HP_ISSUE_PAYLOAD),
			 errmsg("cannot issue pass: payload: %s", msg)));
}

/*
 * A jsonb string (len bytes in the server's encoding) in UTF-8: *ulen bytes
 * at the result, s itself when no conversion is needed.  In SQL_ASCII the
 * bytes are taken as they are when they are UTF-8; a character with no
 * UTF-8 equivalent (WIN1252's 0x81) is the payload stage's refusal.  The
 * conversion's error is caught without a subtransaction: a conversion
 * function holds no lock, buffer or other resource, and the message is
 * raised again at once.
 */
static const char *
utf8_of(const char *s, int len, size_t *ulen)
{
	int			enc = GetDatabaseEncoding();
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile u = NULL;
	char	   *volatile why = NULL;

	*ulen = (size_t) len;
	if (enc == PG_UTF8)
		return s;
	if (enc == PG_SQL_ASCII)
	{
		if (!pg_verify_mbstr(PG_UTF8, s, len, true))
			payload_error("a string is not valid UTF-8 (the database's encoding is SQL_ASCII, which does not check it)");
		return s;
	}
	PG_TRY();
	{
		u = pg_server_to_any(s, len, PG_UTF8);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER &&
			edata->sqlerrcode != ERRCODE_CHARACTER_NOT_IN_REPERTOIRE)
			PG_RE_THROW();
		FlushErrorState();
		why = edata->message;
	}
	PG_END_TRY();
	if (why != NULL)
		payload_error("a string has a character with no UTF-8 equivalent (%s)", why);
	if (u != s)
		*ulen = strlen(u);
	return u;
}

/* Write one jsonb string as CBOR text (UTF-8) */
static void
put_string(CborOut *o, const char *s, int len)
{
	if (GetDatabaseEncoding() == PG_UTF8)
		hp_cbor_put_short_text(o, s, (size_t) len);
	else
	{
		size_t		ulen;
		const char *u = utf8_of(s, len, &ulen);

		hp_cbor_put_text(o, u, ulen);
	}
}

/* A number's text for a message: whole up to 40 characters, else its start and length */
static char *
number_text(const char *s)
{
	size_t		len = strlen(s);

	return len <= 40 ? pstrdup(s) : psprintf("%.24s... (%zu characters)", s, len);
}

/*
 * Write one jsonb number: an integer as an int, else the nearest double (a
 * subnormal one too; one so small it would become 0 is refused, its value
 * lost)
 */
static void
put_number(CborOut *o, Numeric num)
{
	char	   *s;
	char	   *end;
	int64		small;

	if (hp_numeric_small_integer(num, &small))
	{
		hp_cbor_put_int(o, small);
		return;
	}
	if (numeric_is_nan(num) || numeric_is_inf(num))
		payload_error("a number is not finite");
	s = numeric_normalize(num);
	errno = 0;
	if (strpbrk(s, ".eE") == NULL)
	{
		long long	v = strtoll(s, &end, 10);

		if (errno == ERANGE || *end != '\0')
			payload_error("the integer %s is out of range (64-bit signed integers only)",
						  number_text(s));
		hp_cbor_put_int(o, (int64) v);
	}
	else
	{
		double		d = strtod(s, &end);

		if (*end != '\0' || !isfinite(d) || (errno == ERANGE && d == 0))
			payload_error("the number %s is out of the range of a double%s", number_text(s),
						  d == 0 && errno == ERANGE ? " (it would become 0)" : "");
		hp_cbor_put_double(o, d);
	}
	pfree(s);
}

/*
 * One value of a jsonb container, appended to o: child index of container
 * jc, whose data starts at base, at byte offset off.  Containers recurse
 * through put_container at depth + 1.
 */
static void put_container(CborOut *o, JsonbContainer *jc, int depth);

static void
put_child(CborOut *o, JsonbContainer *jc, int index, char *base, uint32 off,
		  uint32 end, int depth)
{
	JEntry		je = jc->children[index];

	if (JBE_ISSTRING(je))
		put_string(o, base + off, (int) (end - off));
	else if (JBE_ISNUMERIC(je))
		put_number(o, (Numeric) (base + INTALIGN(off)));
	else if (JBE_ISBOOL_TRUE(je))
		hp_cbor_put_simple(o, CBOR_TRUE);
	else if (JBE_ISBOOL_FALSE(je))
		hp_cbor_put_simple(o, CBOR_FALSE);
	else if (JBE_ISNULL(je))
		hp_cbor_put_simple(o, CBOR_NULL);
	else if (JBE_ISCONTAINER(je))
		put_container(o, (JsonbContainer *) (base + INTALIGN(off)), depth + 1);
	else
		payload_error("unexpected jsonb entry of type %u", (unsigned) (je & JENTRY_TYPEMASK));
}

/*
 * A jsonb container (object or array) at nesting depth (the payload's
 * root: 1), appended to o.  It reads the container the way jsonb's own
 * iterator does (jsonb.h: JEntry offsets and lengths, JBE_ADVANCE_OFFSET,
 * numbers and containers at INTALIGN'ed offsets), in the same order: an
 * object's keys in their stored order, each followed by its value; but
 * without an iterator, a JsonbValue and a palloc per container.
 */
static void
put_container(CborOut *o, JsonbContainer *jc, int depth)
{
	uint32		n = JsonContainerSize(jc);

	CHECK_FOR_INTERRUPTS();
	if (o->overflow)
		return;
	/* the container at depth, its keys and elements at depth + 1 */
	if (depth > HP_MAX_DEPTH - 2 || (n > 0 && depth + 1 > HP_MAX_DEPTH - 2))
		payload_error("nested deeper than %d", HP_MAX_DEPTH - 2);
	if (JsonContainerIsObject(jc))
	{
		char	   *base = (char *) &jc->children[n * 2];
		uint32		koff = 0;
		uint32		voff;
		const char *ukey[HP_MAX_MAP_KEYS];
		size_t		ulen[HP_MAX_MAP_KEYS];
		bool		converted = GetDatabaseEncoding() != PG_UTF8;

		if (n > HP_MAX_MAP_KEYS)
			payload_error("an object has more than %d keys", HP_MAX_MAP_KEYS);

		hp_cbor_put_head(o, CBOR_MAP, (uint64) n);
		voff = getJsonbOffset(jc, (int) n);
		for (uint32 i = 0; i < n && !o->overflow; i++)
		{
			uint32		kend = koff;
			uint32		vend = voff;

			JBE_ADVANCE_OFFSET(kend, jc->children[i]);
			JBE_ADVANCE_OFFSET(vend, jc->children[n + i]);
			if (!JBE_ISSTRING(jc->children[i]))
				payload_error("unexpected jsonb object key");
			if (!converted)
				put_string(o, base + koff, (int) (kend - koff));	/* jsonb's keys are distinct */
			else
			{
				/*
				 * Two keys distinct in the server's encoding may be one in
				 * UTF-8 (EUC_JP writes U+2160 two ways): a map with a
				 * duplicate key, which every reader refuses
				 */
				ukey[i] = utf8_of(base + koff, (int) (kend - koff), &ulen[i]);
				for (uint32 j = 0; j < i; j++)
					if (ulen[j] == ulen[i] && memcmp(ukey[j], ukey[i], ulen[i]) == 0)
						payload_error("two keys of an object are the same text in UTF-8: \"%s\"",
									  pnstrdup(base + koff, (int) (kend - koff)));
				hp_cbor_put_text(o, ukey[i], ulen[i]);
			}
			put_child(o, jc, (int) (n + i), base, voff, vend, depth);
			koff = kend;
			voff = vend;
		}
	}
	else if (JsonContainerIsArray(jc) && !JsonContainerIsScalar(jc))
	{
		char	   *base = (char *) &jc->children[n];
		uint32		off = 0;

		if (n > HP_MAX_COUNT)
			payload_error("an array has more than %d elements", HP_MAX_COUNT);
		hp_cbor_put_head(o, CBOR_ARRAY, (uint64) n);
		for (uint32 i = 0; i < n && !o->overflow; i++)
		{
			uint32		end = off;

			JBE_ADVANCE_OFFSET(end, jc->children[i]);
			put_child(o, jc, (int) i, base, off, end, depth);
			off = end;
		}
	}
	else
		payload_error("unexpected jsonb container");
}

/*
 * The payload as one CBOR map, appended to o.  Nesting (recursion at most
 * HP_MAX_DEPTH - 2 deep), element counts and the size are bounded as the
 * decoder bounds them (the message is parsed again before it is signed).
 */
static void
put_payload(CborOut *o, Jsonb *jb)
{
	if (!JB_ROOT_IS_OBJECT(jb))
		payload_error("must be a JSON object, not %s",
					  JB_ROOT_IS_ARRAY(jb) ? "an array" : "a scalar");
	put_container(o, &jb->root, 1);
	if (o->overflow)
		payload_error("the pass would not fit a QR code's %d characters (its COSE message is limited to %zu bytes)",
					  HP_MAX_TEXT, o->cap);
}

/* Refuse a payload that schema_errors() finds fault with */
static void
check_schema(Jsonb *payload, HpSchemaFound *what)
{
	ArrayBuildState *found = hp_schema_check(payload, what);
	ArrayType  *errs;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	StringInfoData buf;

	if (found == NULL)
		return;
	errs = DatumGetArrayTypeP(makeArrayResult(found, CurrentMemoryContext));
	deconstruct_array(errs, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, "; ");
		appendStringInfoString(&buf, TextDatumGetCString(elems[i]));
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("cannot issue pass: schema: %d error%s: %s", n, n == 1 ? "" : "s",
					buf.data),
			 errhint("health_pass.schema_errors(payload) lists them.")));
}

/* Seconds since the Unix epoch, rounded down */
static int64
unix_seconds(TimestampTz t)
{
	int64		us = t + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;

	return us >= 0 ? us / USECS_PER_SEC : -((-us + USECS_PER_SEC - 1) / USECS_PER_SEC);
}

/* Text of a timestamptz for a message (a copy: the function's is static) */
static const char *
ts_text(TimestampTz t)
{
	return pstrdup(timestamptz_to_str(t));
}

/*
 * The validity stage: iat and exp of passes issued at issued_at for
 * valid_for.  issue_batch() computes them once for all its passes.
 */
static void
issue_dates(Interval *valid_for, TimestampTz issued_at, int64 *iat_out, int64 *exp_out)
{
	volatile TimestampTz expires_at = 0;
	int64		iat,
				exp;

	if (TIMESTAMP_NOT_FINITE(issued_at))
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_VALIDITY),
				 errmsg("cannot issue pass: validity: issued_at and issued_at + valid_for must be finite")));

	/*
	 * issued_at + valid_for past the range of timestamptz (valid_for of
	 * 178000000 years, or of 2147483647 months) is the validity stage's
	 * refusal, not timestamptz_pl_interval's bare 22008.  Its error is
	 * caught without a subtransaction: it is raised by pure arithmetic that
	 * holds no lock, buffer or other resource, and the message is rethrown
	 * at once.
	 */
	{
		MemoryContext cxt = CurrentMemoryContext;
		volatile bool out_of_range = false;

		PG_TRY();
		{
			expires_at = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
																 TimestampTzGetDatum(issued_at),
																 PointerGetDatum(valid_for)));
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (edata->sqlerrcode != ERRCODE_DATETIME_VALUE_OUT_OF_RANGE)
				PG_RE_THROW();
			FlushErrorState();
			FreeErrorData(edata);
			out_of_range = true;
		}
		PG_END_TRY();
		if (out_of_range)
			ereport(ERROR,
					(errcode(ERRCODE_HP_ISSUE_VALIDITY),
					 errmsg("cannot issue pass: validity: issued_at + valid_for is out of the range of timestamptz")));
	}
	if (TIMESTAMP_NOT_FINITE(expires_at))
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_VALIDITY),
				 errmsg("cannot issue pass: validity: issued_at and issued_at + valid_for must be finite")));
	iat = unix_seconds(issued_at);
	exp = unix_seconds(expires_at);
	if (exp <= iat)
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_VALIDITY),
				 errmsg("cannot issue pass: validity: valid_for must be at least one second")));
	if (iat < 0 || exp > 1000000000000LL)
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_VALIDITY),
				 errmsg("cannot issue pass: validity: issued_at and expiry must lie between 1970 and the year 33658")));

	*iat_out = iat;
	*exp_out = exp;
}

/*
 * Everything between opening the key and closing it, for one payload
 * (iat and exp from issue_dates()).  The pass returned is the static
 * pass_buf, valid until the next call: the caller copies it where it must
 * go.  Everything else is allocated in the current memory context.
 */
static HealthPass *
issue_with(HpSigner *signer, HpRevScan *rev, Datum payload_d, TimestampTz issued_at,
		   int64 iat, int64 exp, char **uvci, char *reason)
{
	const HpSignerInfo *info = hp_signer_info(signer);
	Jsonb	   *payload = DatumGetJsonbP(payload_d);
	CborOut		o;
	size_t		claims_len,
				prot_len,
				tbs_len,
				cose_len,
				sig_len;
	uint8		prot[64 + 256];
	uint8		sig[HP_MAX_SIG];
	size_t		cap = max_cose_len();
	HpCose		c;
	HpSchemaFound what;
	int			claims_items;
	HealthPass *p;

	/* payload: not an object, too big, too deep, numbers out of range */
	if (!JB_ROOT_IS_OBJECT(payload))
		payload_error("must be a JSON object, not %s",
					  JB_ROOT_IS_ARRAY(payload) ? "an array" : "a scalar");

	/* schema */
	check_schema(payload, &what);

	/* key: its DSC at issued_at, and the issuing country */
	if (info->country[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_KEY),
				 errmsg("cannot issue pass: key: the certificate of key \"%s\" names no country (C), which the pass's issuer claim needs",
						hp_key_label(info->name))));
	if (issued_at < info->not_before || issued_at > info->not_after)
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_KEY),
				 errmsg("cannot issue pass: key: the certificate of key \"%s\" is not valid at %s",
						hp_key_label(info->name), ts_text(issued_at)),
				 errdetail("It is valid from %s to %s.",
						   ts_text(info->not_before), ts_text(info->not_after))));
	if (info->dsc_revoked)
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_KEY),
				 errmsg("cannot issue pass: key: the certificate of key \"%s\" is revoked in the trust list",
						hp_key_label(info->name)),
				 errdetail("Its trust_list row has revoked_at %s; every pass it signs is key_revoked, whatever its iat.",
						   ts_text(info->dsc_revoked_at)),
				 errhint("Register a new signing key with signing_key_add().")));

	/* the claims, with the payload encoded in place */
	hp_cbor_out_init(&o, claims_buf, Min(cap, sizeof(claims_buf)));
	{
		/* the claims up to the payload: the same for a batch (iss, iat, exp) */
		static uint8 head[64];
		static size_t head_len = 0;
		static int	head_items;
		static char head_iss[3];
		static int64 head_iat,
					head_exp;

		if (head_len == 0 || head_iat != iat || head_exp != exp ||
			strcmp(head_iss, info->country) != 0)
		{
			CborOut		h;

			hp_cbor_out_init(&h, head, sizeof(head));
			head_len = 0;
			if (hp_cwt_claims_start(&h, info->country, strlen(info->country), iat, exp))
			{
				head_len = hp_cbor_out_done(&h);
				head_items = h.items;
				strlcpy(head_iss, info->country, sizeof(head_iss));
				head_iat = iat;
				head_exp = exp;
			}
		}
		if (head_len > 0)
		{
			hp_cbor_put_raw(&o, head, head_len);
			o.items += head_items;
		}
		else
			hp_cwt_claims_start(&o, info->country, strlen(info->country), iat, exp);
	}
	put_payload(&o, payload);
	claims_len = hp_cbor_out_done(&o);
	claims_items = o.items;
	/* the protected header: the same for every pass of a key */
	{
		static uint8 last[64 + 256];
		static size_t last_len = 0;
		static int	last_alg;
		static uint8 last_kid[256];
		static size_t last_kid_len;

		if (last_len > 0 && last_alg == info->alg && last_kid_len == info->kid_len &&
			memcmp(last_kid, info->kid, info->kid_len) == 0)
		{
			memcpy(prot, last, last_len);
			prot_len = last_len;
		}
		else
		{
			prot_len = hp_cose_protected(prot, sizeof(prot), info->alg,
										 info->kid, info->kid_len);
			if (prot_len > 0 && info->kid_len <= sizeof(last_kid))
			{
				memcpy(last, prot, prot_len);
				last_len = prot_len;
				last_alg = info->alg;
				memcpy(last_kid, info->kid, info->kid_len);
				last_kid_len = info->kid_len;
			}
		}
	}
	if (prot_len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_KEY),
				 errmsg("cannot issue pass: key: the kid of key \"%s\" is too long", hp_key_label(info->name))));

	/*
	 * The unsigned message.  It is not parsed again: the writer keeps every
	 * limit a reader applies (cbor_write.c and put_payload(): sizes, nesting,
	 * counts of elements and of items, text, keys, numbers), and the schema
	 * stage found the kind and the ci.  A build with assertions parses it as
	 * every reader will and checks that they agree (test/t/080_issue.pl
	 * tries each limit).
	 */
	if (claims_items > HP_MAX_ITEMS)
		payload_error("more than %d CBOR items", HP_MAX_ITEMS);
	cose_len = hp_cose_sign1(cose_buf, COSE_BUF_SIZE, prot, prot_len,
							 claims_buf, claims_len, NULL, 0);
	if (cose_len == 0 || cose_len + HP_MAX_SIG > cap)
		payload_error("the pass would not fit a QR code's %d characters (its COSE message is limited to %zu bytes)",
					  HP_MAX_TEXT, cap);
	if (what.ci == NULL)
		payload_error("no certificate entry with a ci");	/* schema_errors says so first */
	memset(&c, 0, sizeof(c));
	c.kind = what.kind == 'v' ? HP_KIND_VACCINATION :
		what.kind == 't' ? HP_KIND_TEST : HP_KIND_RECOVERY;
	c.uvci = (const uint8 *) utf8_of(what.ci, what.ci_len, &c.uvci_len);
	c.iss = (const uint8 *) info->country;
	c.iss_len = strlen(info->country);
#ifdef USE_ASSERT_CHECKING
	{
		HpCose		full;
		HpErr		err;

		Assert(hp_cose_parse(cose_buf, cose_len, &full, &err));
		Assert(full.kind == c.kind && full.uvci_len == c.uvci_len &&
			   memcmp(full.uvci, c.uvci, c.uvci_len) == 0 &&
			   full.iss_len == c.iss_len && memcmp(full.iss, c.iss, c.iss_len) == 0);
	}
#endif
	if ((info->key_usage & c.kind) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_KEY),
				 errmsg("cannot issue pass: key: the certificate of key \"%s\" does not allow %s certificates (extended key usage)",
						hp_key_label(info->name), hp_kind_name(c.kind))));
	{
		const char *why = hp_uvci_problem(what.ci, what.ci_len, info->country);

		if (why)
			payload_error("%s", why);
		*uvci = pnstrdup(what.ci, what.ci_len);
	}

	/*
	 * revocation: a UVCI revoked (its UCI or COUNTRYCODEUCI hash, as of
	 * issued_at) would make a pass revoked from the start
	 */
	{
		HpRevHashes h;

		/* unsigned yet: no SIGNATURE hash; none of a type the table lacks */
		hp_revocation_hashes_of(&c, hp_revscan_types(rev) & ~(1u << HP_REV_SIGNATURE), &h);
		if (hp_revscan_check(rev, &h, issued_at))
			ereport(ERROR,
					(errcode(ERRCODE_HP_ISSUE_REVOKED),
					 errmsg("cannot issue pass: revocation: its ci \"%s\" is revoked", *uvci),
					 errdetail("health_pass.revocation holds its UCI or COUNTRYCODEUCI hash, unexpired at %s: every verifier would refuse the pass.",
							   ts_text(issued_at)),
					 errhint("Issue the new pass with a new UVCI (health_pass.uvci()).")));
	}

	/* sign */
	tbs_len = hp_cose_sig_structure(tbs_buf, sizeof(tbs_buf), prot, prot_len,
									claims_buf, claims_len);
	if (tbs_len == 0)
		payload_error("the pass would not fit a QR code's %d characters", HP_MAX_TEXT);
	sig_len = 0;
	hp_signer_sign(signer, tbs_buf, tbs_len, sig, &sig_len);
	if (sig_len == 0 || sig_len > HP_MAX_SIG ||
		(info->alg == HP_ALG_ES256 && sig_len != 64))
		ereport(ERROR,
				(errcode(ERRCODE_HP_ISSUE_SIGN),
				 errmsg("cannot issue pass: sign: key \"%s\" gave a signature of %zu bytes",
						hp_key_label(info->name), sig_len)));
	/* the message parsed above, its empty signature replaced by sig */
	cose_len = hp_cose_sign1_set_signature(cose_buf, COSE_BUF_SIZE, cose_len,
										   sig, sig_len);
	if (cose_len == 0 || cose_len > cap)
		payload_error("the pass would not fit a QR code's %d characters (its COSE message is limited to %zu bytes)",
					  HP_MAX_TEXT, cap);

	/*
	 * The record names this one pass: its UVCI is the subject, and the
	 * reason carries its SIGNATURE revocation hash (SHA-256 of r for
	 * ES256, of the whole signature for PS256, first 16 bytes: as
	 * revocation_hashes() computes it), since a registry may reuse a UVCI
	 */
	{
		static const char hx[] = "0123456789abcdef";
		static const char head[] = "signed with key \"";
		static const char tail[] = "\"; signature hash ";
		uint8		h[32];
		int			nlen = strlen(info->name);
		const int	namemax = HP_REASON_LEN - 1 - (int) (sizeof(head) - 1 + sizeof(tail) - 1) - 32;
		char	   *r = reason;

		hp_sha256(sig, info->alg == HP_ALG_ES256 ? 32 : sig_len, NULL, 0, h);
		/* a long key name is clipped (on a character boundary), never the hash */
		if (nlen > namemax)
			nlen = pg_mbcliplen(info->name, nlen, namemax);
		/* signed with key "NAME"; signature hash HEX (at most HP_REASON_LEN - 1) */
		memcpy(r, head, sizeof(head) - 1);
		r += sizeof(head) - 1;
		memcpy(r, info->name, nlen);
		r += nlen;
		memcpy(r, tail, sizeof(tail) - 1);
		r += sizeof(tail) - 1;
		for (int i = 0; i < 16; i++)
		{
			*r++ = hx[h[i] >> 4];
			*r++ = hx[h[i] & 15];
		}
		*r = '\0';
		Assert(r - reason < HP_REASON_LEN);
	}

	p = &pass_buf.hdr;
	SET_VARSIZE(p, offsetof(HealthPass, data) + cose_len);
	p->format = HP_FORMAT_EU_DCC;
	return p;
}

/*
 * Begin the revocation checks of a call: health_pass.revocation as the
 * statement's snapshot sees it, as check() reads it (the reference kept
 * for the query)
 */
static void
issue_revocation_begin(FunctionCallInfo fcinfo, HpRevScan *rev, uint32 checks)
{
	HpRevRef   *ref = fcinfo->flinfo->fn_extra;

	if (ref == NULL)
	{
		ref = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(HpRevRef));
		hp_revocation_ref(ref);
		fcinfo->flinfo->fn_extra = ref;
	}
	hp_revscan_begin(rev, ref,
					 ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot(),
					 checks);
}

/* NULL arguments are refused by name; the library must be preloaded */
static void
issue_args(FunctionCallInfo fcinfo, const char *first)
{
	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("cannot issue pass: %s must not be null",
							i == 0 ? first : i == 1 ? "key" : i == 2 ? "valid_for" : "issued_at")));
	hp_require_preload();
}

/* Context of an error while the issued records are written (the audit stage) */
static void
audit_stage_context(void *arg)
{
	errcontext("cannot issue pass: audit: the issued record%s could not be made durable, so no pass was returned",
			   arg ? "s" : "");
}

PG_FUNCTION_INFO_V1(hp_issue);
/*
 * issue(payload jsonb, key text, valid_for interval DEFAULT '1 year',
 *       issued_at timestamptz DEFAULT now()) -> health_pass.pass
 *
 * The pass is returned only once its issued record is durable: until then
 * it exists for nobody (no user code, session, message or log line can see
 * it), so no crash can leave a signed pass without its record.  That costs
 * one wait for the writer per call; issue_batch() waits once for many.
 */
Datum
hp_issue(PG_FUNCTION_ARGS)
{
	HpSigner   *signer;
	HealthPass *volatile p = NULL;
	char	   *volatile uvci = NULL;
	char		reason[HP_REASON_LEN];
	Oid			actor = GetUserId();	/* whose grant signs (keys.c) */

	issue_args(fcinfo, "payload");
	signer = hp_signer_open(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_TRY();
	{
		char	   *u;
		int64		iat,
					exp;
		HealthPass *b;
		HpRevScan	rev;

		issue_dates(PG_GETARG_INTERVAL_P(2), PG_GETARG_TIMESTAMPTZ(3), &iat, &exp);
		issue_revocation_begin(fcinfo, &rev, 1);
		b = issue_with(signer, &rev, PG_GETARG_DATUM(0), PG_GETARG_TIMESTAMPTZ(3),
					   iat, exp, &u, reason);
		hp_revscan_end(&rev);

		p = palloc(VARSIZE(b));
		memcpy(p, b, VARSIZE(b));
		uvci = u;
	}
	PG_FINALLY();
	{
		hp_signer_close(signer);
	}
	PG_END_TRY();

	{
		ErrorContextCallback cb = {error_context_stack, audit_stage_context, NULL};

		error_context_stack = &cb;
		hp_audit_event(HP_ISSUED, hp_signing_key_relid(), uvci, NULL, reason, actor);
		error_context_stack = cb.previous;
	}
	PG_RETURN_POINTER(p);
}

/* Context of an error of one payload of issue_batch(): its subscript */
static void
batch_element_context(void *arg)
{
	errcontext("issue_batch: payloads[%d]", *(int *) arg);
}

PG_FUNCTION_INFO_V1(hp_issue_batch);
/*
 * issue_batch(payloads jsonb[], key text, valid_for interval DEFAULT
 *             '1 year', issued_at timestamptz DEFAULT now())
 *   -> SETOF health_pass.pass
 *
 * issue() of every payload, in order, with one wait: all are signed and
 * their records queued, and the passes are returned only once every record
 * is durable.  A payload refused fails the whole call (records already
 * queued stay: they name passes that were signed and then dropped).
 *
 * Where the passes wait.  Each pass goes from the signing buffer straight
 * into the result's tuplestore (one copy), which is made here to stay in
 * memory: its limit is MAX_KILOBYTES and nothing is put in it past half of
 * that (an upper bound of what each tuple takes is counted), so it never
 * spills to a temporary file before the wait.  A batch larger than that
 * keeps its later passes in the query's memory and puts them in after the
 * wait (where spilling is harmless).  The executor reads the tuplestore only
 * once this function has returned, that is after the wait; on an error it
 * is freed with the query's memory, unread.
 */
Datum
hp_issue_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	HpSigner   *signer;
	HealthPass **later;			/* passes put in after the wait */
	volatile int nlater = 0;
	volatile Size stored = 0;	/* bound of the tuplestore's memory so far */
	const Size	store_max = (Size) MAX_KILOBYTES * 1024 / 2;
	HpRecord	tmpl;			/* the session's fields, once for all records */
	MemoryContext each;
	volatile uint64 upto = 0;
	Oid			actor = GetUserId();
	MemoryContext result_cxt;
	MemoryContext old;
	int64		iat = 0,
				exp = 0;
	int			lbound;
	int			subscript = 0;
	ErrorContextCallback elem_cb;
	HpRevScan	rev;

	issue_args(fcinfo, "payloads");
	arr = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("cannot issue pass: payloads must be a one-dimensional array")));
	/* subscripts in messages as the caller wrote them: '[5:6]={...}' starts at 5 */
	lbound = ARR_NDIM(arr) == 1 ? ARR_LBOUND(arr)[0] : 1;
	deconstruct_array(arr, JSONBOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	/* the result: a tuplestore that does not spill (above) */
	result_cxt = rsinfo->econtext->ecxt_per_query_memory;
	old = MemoryContextSwitchTo(result_cxt);
	tuplestore_end(rsinfo->setResult);
	rsinfo->setResult =
		tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
							  false, MAX_KILOBYTES);
	MemoryContextSwitchTo(old);

	later = palloc(sizeof(HealthPass *) * Max(n, 1));
	each = AllocSetContextCreate(CurrentMemoryContext, "issue_batch pass",
								 ALLOCSET_DEFAULT_SIZES);
	hp_audit_event_template(&tmpl, actor);
	/* the validity stage once, for every call (an empty batch too), as issue() */
	issue_dates(PG_GETARG_INTERVAL_P(2), PG_GETARG_TIMESTAMPTZ(3), &iat, &exp);
	signer = hp_signer_open(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	issue_revocation_begin(fcinfo, &rev, (uint32) Max(n, 1));
	elem_cb.previous = error_context_stack;
	elem_cb.callback = batch_element_context;
	elem_cb.arg = &subscript;
	error_context_stack = &elem_cb;
	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			char	   *u;
			char		reason[HP_REASON_LEN];
			HealthPass *p;
			Size		bound;

			CHECK_FOR_INTERRUPTS();
			subscript = lbound + i;
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("cannot issue pass: payloads[%d] must not be null", subscript)));
			/* the record's slot on its way into the cache while we sign */
			hp_queue_prefetch_next();
			old = MemoryContextSwitchTo(each);
			p = issue_with(signer, &rev, elems[i], PG_GETARG_TIMESTAMPTZ(3), iat, exp,
						   &u, reason);
			upto = hp_audit_event_queue(&tmpl, HP_ISSUED, hp_signing_key_relid(), u,
										NULL, reason);
			MemoryContextSwitchTo(old);

			/*
			 * What the tuple may take: its header and the pass, rounded up to
			 * a power of two by the allocator, the chunk's header, and a slot
			 * of the tuplestore's array (which at most doubles)
			 */
			bound = 2 * (MAXALIGN(SizeofMinimalTupleHeader + 8) + VARSIZE(p)) + 64;
			if (nlater == 0 && stored + bound <= store_max)
			{
				Datum		v = PointerGetDatum(p);
				bool		isnull = false;

				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
				stored += bound;
			}
			else
			{
				HealthPass *copy = MemoryContextAlloc(result_cxt, VARSIZE(p));

				memcpy(copy, p, VARSIZE(p));
				later[nlater++] = copy;
			}
			MemoryContextReset(each);
		}
	}
	PG_FINALLY();
	{
		error_context_stack = elem_cb.previous;
		hp_signer_close(signer);
	}
	PG_END_TRY();
	hp_revscan_end(&rev);
	MemoryContextDelete(each);

	/* every record durable before any pass leaves this function */
	if (upto > 0)
	{
		ErrorContextCallback cb = {error_context_stack, audit_stage_context, (void *) 1};

		error_context_stack = &cb;
		hp_wait_durable(upto);
		error_context_stack = cb.previous;
	}

	for (int i = 0; i < nlater; i++)
	{
		Datum		v = PointerGetDatum(later[i]);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
		pfree(later[i]);
	}
	return (Datum) 0;
}
