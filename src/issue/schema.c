/*
 * schema.c
 *    health_pass.schema_errors(payload jsonb): the DCC JSON schema 1.3
 *    rules that schema_errors(pass) has always applied, in C, so that
 *    issue() can afford them on every pass (the PL/pgSQL form cost about
 *    30 us a payload, more than the signature).
 *
 *    This is a line-by-line port of the PL/pgSQL function of 0.8.0: the
 *    same checks in the same order, the same messages, and the same
 *    reading of the jsonb operators it used (-> of a non-object is NULL,
 *    ? also finds a string element of an array or a string scalar,
 *    jsonb_each order, length() in characters).  Its regular expressions
 *    are matched by hand for ASCII text; text with any other character
 *    goes to PostgreSQL's regex engine with the same pattern, as the
 *    PL/pgSQL did (\d may match other digits there, depending on the
 *    locale).  test/sql/issue.sql compares both on thousands of payloads.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "issue/hp_issuing.h"

#define DATE_RE  "^\\d{4}-\\d{2}-\\d{2}$"
#define DT_RE    "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:?\\d{2})$"
#define VER_RE   "^\\d+\\.\\d+\\.\\d+$"
#define DOB_RE   "^((19|20)\\d\\d(-\\d\\d){0,2})?$"
#define ICAO_RE  "^[A-Z<]*$"
#define CO_RE    "^[A-Z]{2}$"

typedef enum
{
	M_DATE, M_DT, M_VER, M_DOB, M_ICAO, M_CO
} Matcher;

static bool
dig(const char *s, size_t i, size_t n, size_t len)
{
	if (i + n > len)
		return false;
	for (size_t k = i; k < i + n; k++)
		if (s[k] < '0' || s[k] > '9')
			return false;
	return true;
}

/* Digits from s[*i] on, at least one: *i moves past them */
static bool
digits(const char *s, size_t *i, size_t len)
{
	size_t		start = *i;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	return *i > start;
}

/* Two digits at s[i] as a number (dig() checked them) */
static int
num2(const char *s, size_t i)
{
	return (s[i] - '0') * 10 + (s[i + 1] - '0');
}

/*
 * The month of "YYYY-MM" and the day of "YYYY-MM-DD" (nparts 2 or 3) at s
 * exist in the Gregorian calendar: "format": "date" of the schema, which
 * the pattern alone does not check (1964-02-30 matched it)
 */
static bool
calendar_ok(const char *s, int nparts)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y = num2(s, 0) * 100 + num2(s, 2);
	int			m = num2(s, 5);
	int			d;

	if (m < 1 || m > 12)
		return false;
	if (nparts < 3)
		return true;
	d = num2(s, 8);
	if (d < 1 || d > mdays[m - 1])
		return false;
	return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/*
 * The patterns above, for ASCII text, and what their formats add: a date
 * that exists, a time of day (hour 00-23, minute 00-59, second 00-60, as
 * RFC 3339 allows a leap second), an offset of at most 23:59
 */
static bool
match_ascii(Matcher m, const char *s, size_t len)
{
	size_t		i = 0;

	switch (m)
	{
		case M_DATE:
			return len == 10 && dig(s, 0, 4, len) && s[4] == '-' &&
				dig(s, 5, 2, len) && s[7] == '-' && dig(s, 8, 2, len) &&
				calendar_ok(s, 3);
		case M_DT:
			if (!(len >= 16 && dig(s, 0, 4, len) && s[4] == '-' && dig(s, 5, 2, len) &&
				  s[7] == '-' && dig(s, 8, 2, len) && s[10] == 'T' &&
				  dig(s, 11, 2, len) && s[13] == ':' && dig(s, 14, 2, len)) ||
				!calendar_ok(s, 3) || num2(s, 11) > 23 || num2(s, 14) > 59)
				return false;
			i = 16;
			if (i < len && s[i] == ':')
			{
				if (!dig(s, i + 1, 2, len) || num2(s, i + 1) > 60)
					return false;
				i += 3;
				if (i < len && s[i] == '.')
				{
					i++;
					if (!digits(s, &i, len))
						return false;
				}
			}
			if (i < len && s[i] == 'Z')
				return i + 1 == len;
			if (i < len && (s[i] == '+' || s[i] == '-'))
			{
				if (!dig(s, i + 1, 2, len) || num2(s, i + 1) > 23)
					return false;
				i += 3;
				if (i < len && s[i] == ':')
					i++;
				return dig(s, i, 2, len) && i + 2 == len && num2(s, i) <= 59;
			}
			return false;
		case M_VER:
			return digits(s, &i, len) && i < len && s[i++] == '.' &&
				digits(s, &i, len) && i < len && s[i++] == '.' &&
				digits(s, &i, len) && i == len;
		case M_DOB:
			if (len == 0)
				return true;
			if (!(len == 4 || len == 7 || len == 10))
				return false;
			if (!((s[0] == '1' && s[1] == '9') || (s[0] == '2' && s[1] == '0')) ||
				!dig(s, 2, 2, len))
				return false;
			for (i = 4; i < len; i += 3)
				if (s[i] != '-' || !dig(s, i + 1, 2, len))
					return false;
			return len == 4 || calendar_ok(s, len == 7 ? 2 : 3);
		case M_ICAO:
			for (i = 0; i < len; i++)
				if (!((s[i] >= 'A' && s[i] <= 'Z') || s[i] == '<'))
					return false;
			return true;
		case M_CO:
			return len == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
	}
	return false;
}

/*
 * s matches pattern m (and its format).  The schema's patterns are
 * ECMA-262 regular expressions, whose \d is [0-9]: every pattern is
 * ASCII, so text with any other character does not match (PostgreSQL's \d
 * would take other scripts' digits)
 */
static bool
matches(Matcher m, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) s[i] >= 0x80)
			return false;
	return match_ascii(m, s, len);
}

/*
 * jsonb_typeof(v) = 'string', 'number', 'object', 'array' (v NULL: none of
 * them), without building the type's name: a container is an object when
 * it is one, else an array when it is one, as jsonb_typeof() decides.
 */
static inline bool
is_string(const JsonbValue *v)
{
	return v != NULL && v->type == jbvString;
}

static inline bool
is_number(const JsonbValue *v)
{
	return v != NULL && v->type == jbvNumeric;
}

static inline bool
is_object(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static inline bool
is_array(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBinary && !JsonContainerIsObject(v->val.binary.data) &&
		JsonContainerIsArray(v->val.binary.data);
}

/* container ? key (jsonb_exists) */
static bool
exists(JsonbContainer *c, const char *key)
{
	JsonbValue	k;

	/* an object's keys: the same binary search, into a local value */
	if (JsonContainerIsObject(c))
		return getKeyJsonValueFromContainer(c, key, strlen(key), &k) != NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(c, JB_FOBJECT | JB_FARRAY, &k) != NULL;
}

/*
 * A string value's length in characters is over 80 (a character is at
 * least one byte: 80 bytes or fewer are never more than 80 characters)
 */
static bool
longer_than_80(const JsonbValue *v)
{
	return v->val.string.len > 80 &&
		pg_mbstrlen_with_len(v->val.string.val, v->val.string.len) > 80;
}

/* A key (string value) is k */
static inline bool
key_is(const JsonbValue *kv, const char *k, int klen)
{
	return kv->val.string.len == klen && memcmp(kv->val.string.val, k, klen) == 0;
}

#define KEY_IS(kv, lit) key_is((kv), (lit), (int) sizeof(lit) - 1)

/*
 * Child index of container jc, stored at base + [off, end), as a
 * JsonbValue: what jsonb's iterator returns for it with skipNested (a
 * container as jbvBinary), read as it reads it (jsonb.h: numbers and
 * containers at INTALIGN'ed offsets).  Lets the entry's fields be walked
 * without an iterator.
 */
static void
entry_value(JsonbContainer *jc, int index, char *base, uint32 off, uint32 end,
			JsonbValue *v)
{
	JEntry		je = jc->children[index];

	if (JBE_ISNULL(je))
		v->type = jbvNull;
	else if (JBE_ISSTRING(je))
	{
		v->type = jbvString;
		v->val.string.val = base + off;
		v->val.string.len = (int) (end - off);
	}
	else if (JBE_ISNUMERIC(je))
	{
		v->type = jbvNumeric;
		v->val.numeric = (Numeric) (base + INTALIGN(off));
	}
	else if (JBE_ISBOOL_TRUE(je) || JBE_ISBOOL_FALSE(je))
	{
		v->type = jbvBool;
		v->val.boolean = JBE_ISBOOL_TRUE(je);
	}
	else
	{
		Assert(JBE_ISCONTAINER(je));
		v->type = jbvBinary;
		v->val.binary.data = (JsonbContainer *) (base + INTALIGN(off));
		v->val.binary.len = (int) (end - INTALIGN(off));
	}
}

/*
 * The values of keys names[0..n) of object container jc, in one walk of
 * its keys: out[j] and has[j] (jsonb keeps an object's keys unique, so
 * this is jc -> names[j] for each j).  Returns true.
 */
static bool
pick(JsonbContainer *jc, const char *const *names, int n, JsonbValue *out, bool *has)
{
	uint32		count = JsonContainerSize(jc);
	char	   *base = (char *) &jc->children[count * 2];
	uint32		koff = 0;
	uint32		voff = getJsonbOffset(jc, (int) count);

	Assert(JsonContainerIsObject(jc));
	for (int j = 0; j < n; j++)
		has[j] = false;
	for (uint32 i = 0; i < count; i++)
	{
		uint32		kend = koff;
		uint32		vend = voff;

		JBE_ADVANCE_OFFSET(kend, jc->children[i]);
		JBE_ADVANCE_OFFSET(vend, jc->children[count + i]);
		for (int j = 0; j < n; j++)
			if (!has[j] && kend > koff && names[j][0] == base[koff] &&
				strlen(names[j]) == kend - koff &&
				memcmp(base + koff, names[j], kend - koff) == 0)
			{
				entry_value(jc, (int) (count + i), base, voff, vend, &out[j]);
				has[j] = true;
				break;
			}
		koff = kend;
		voff = vend;
	}
	return true;
}

static void
add(ArrayBuildState **errs, const char *fmt,...) pg_attribute_printf(2, 3);

/* Append one message */
static void
add(ArrayBuildState **errs, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		ap;
		int			needed;

		va_start(ap, fmt);
		needed = appendStringInfoVA(&buf, fmt, ap);
		va_end(ap);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	*errs = accumArrayResult(*errs, PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len)),
							 false, TEXTOID, CurrentMemoryContext);
	pfree(buf.data);
}

/*
 * A small integer read straight from the numeric's stored form, or false.
 * Only the short format (numeric.c: NUMERIC_SHORT, the form numeric_in gives
 * every finite value that fits it) with display scale 0 and at most four
 * base-10000 digits of weight at most 3 is read; anything else (NaN,
 * infinities, a scale, long or large values) goes the general way below,
 * which gives the same answer for these.  The layout is the on-disk format,
 * fixed since 9.1 (pg_upgrade keeps numerics as they are): a uint16 header
 * (0x8000 short; 0x2000 negative; dscale in bits 7..12; weight in bits 0..5,
 * bit 6 its sign), then int16 digits, most significant first.
 */
bool
hp_numeric_small_integer(Numeric num, int64 *v)
{
	const char *d = VARDATA_ANY(num);
	int			len = VARSIZE_ANY_EXHDR(num);
	uint16		h;
	int			ndigits;
	int			weight;
	int64		r = 0;

	if (len < (int) sizeof(uint16))
		return false;
	memcpy(&h, d, sizeof(h));
	if ((h & 0xC000) != 0x8000 || ((h >> 7) & 0x3F) != 0)
		return false;
	ndigits = (len - (int) sizeof(uint16)) / (int) sizeof(int16);
	weight = (h & 0x0040) ? (int) (h | ~0x003F) : (int) (h & 0x003F);
	if (ndigits == 0)
	{
		*v = 0;
		return true;
	}
	if (ndigits > 4 || weight > 3 || weight < ndigits - 1)
		return false;
	for (int k = 0; k <= weight; k++)
	{
		int16		dig = 0;

		if (k < ndigits)
			memcpy(&dig, d + sizeof(uint16) + k * sizeof(int16), sizeof(dig));
		if (dig < 0 || dig >= 10000)
			return false;
		r = r * 10000 + dig;
	}
	*v = (h & 0x2000) ? -r : r;
	return true;
}

/* dn, sd: a number that is an integer from 1 to 9 */
static bool
one_to_nine(const JsonbValue *v)
{
	char	   *s;
	bool		ok;
	int64		small;

	if (!is_number(v))
		return false;
	if (hp_numeric_small_integer(v->val.numeric, &small))
		return small >= 1 && small <= 9;
	s = numeric_normalize(v->val.numeric);
	ok = s[0] >= '1' && s[0] <= '9' && s[1] == '\0';
	pfree(s);
	return ok;
}

/*
 * The schema errors of a payload: NULL when none, else the messages
 * accumulated (issue() needs no array when there are none).
 */
ArrayBuildState *
hp_schema_check(Jsonb *jb, HpSchemaFound *found)
{
	ArrayBuildState *errs = NULL;
	JsonbValue	root;
	JsonbValue	xv;
	JsonbValue *v;
	JsonbValue *nam;
	static const char *const root_fields[] = {"ver", "nam", "dob", "v", "t", "r"};
	static const char *const nam_fields[] = {"fn", "fnt", "gn", "gnt"};
	static const char *const kind_names[] = {"v", "t", "r"};
	JsonbValue	rootf[6];
	bool		rootf_has[6];
	bool		rootf_found;
	const char *kinds[3];
	JsonbValue *kind_value[3];
	int			nkinds = 0;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		if (!JsonbExtractScalar(&jb->root, &root))
			elog(ERROR, "invalid jsonb scalar");
	}
	else
	{
		root.type = jbvBinary;
		root.val.binary.data = &jb->root;
		root.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}

	/* root -> ver, nam, dob, v, t, r: one walk of its keys (when an object) */
	rootf_found = is_object(&root) &&
		pick(root.val.binary.data, root_fields, 6, rootf, rootf_has);
	v = rootf_found && rootf_has[0] ? &rootf[0] : NULL;
	if (!is_string(v))
		add(&errs, "ver: required string");
	else if (!matches(M_VER, v->val.string.val, v->val.string.len))
		add(&errs, "ver: not a semantic version");

	nam = rootf_found && rootf_has[1] ? &rootf[1] : NULL;
	if (!is_object(nam))
		add(&errs, "nam: required object");
	else
	{
		JsonbValue	namf[4];
		bool		namf_has[4];

		pick(nam->val.binary.data, nam_fields, 4, namf, namf_has);
		if (!(namf_has[1] && is_string(&namf[1])))
			add(&errs, "nam.fnt: required string");
		for (int i = 0; i < 4; i++)
		{
			const char *f = nam_fields[i];
			JsonbValue *x = namf_has[i] ? &namf[i] : NULL;
			bool		is_str = is_string(x);

			/* nam is an object: nam ? f is nam -> f being there */
			if (x != NULL && !is_str)
				add(&errs, "nam.%s: not a string", f);
			else if (is_str && longer_than_80(x))
				add(&errs, "nam.%s: longer than 80", f);
			else if (is_str && (i == 1 || i == 3) &&	/* fnt, gnt */
					 !matches(M_ICAO, x->val.string.val, x->val.string.len))
				add(&errs, "nam.%s: not in ICAO 9303 form", f);
		}
	}

	v = rootf_found && rootf_has[2] ? &rootf[2] : NULL;
	if (!is_string(v))
		add(&errs, "dob: required string");
	else if (!matches(M_DOB, v->val.string.val, v->val.string.len))
		add(&errs, "dob: not a date (YYYY, YYYY-MM or YYYY-MM-DD)");

	/* root ? k: for an object its keys (found above), else jsonb_exists */
	for (int i = 0; i < 3; i++)
		if (rootf_found ? rootf_has[3 + i] : exists(&jb->root, kind_names[i]))
		{
			kind_value[nkinds] = rootf_found ? &rootf[3 + i] : NULL;	/* root -> k */
			kinds[nkinds++] = kind_names[i];
		}
	if (nkinds != 1)
		add(&errs, "exactly one of v, t, r required, found %d", nkinds);
	if (found != NULL)
	{
		found->kind = nkinds == 1 ? kinds[0][0] : '\0';
		found->ci = NULL;
		found->ci_len = 0;
	}

	for (int i = 0; i < nkinds; i++)
	{
		const char *k = kinds[i];
		JsonbValue *a = kind_value[i];
		JsonbValue *e;
		static const char *const req_v[] = {"tg", "vp", "mp", "ma", "dn", "sd", "dt", "co", "is", "ci", NULL};
		static const char *const req_t[] = {"tg", "tt", "sc", "tr", "co", "is", "ci", NULL};
		static const char *const req_r[] = {"tg", "fr", "co", "is", "df", "du", "ci", NULL};
		const char *const *req;
		JsonbContainer *ec;
		uint32		n;
		char	   *base;
		uint32		koff,
					voff;
		ArrayBuildState *field_errs = NULL;
		uint32		have = 0;	/* bit j: req[j] is a key of e */

		if (!is_array(a) || JsonContainerSize(a->val.binary.data) != 1)
		{
			add(&errs, "%s: must be an array of exactly one entry", k);
			continue;
		}
		e = getIthJsonbValueFromContainer(a->val.binary.data, 0);
		if (!is_object(e))
		{
			add(&errs, "%s[0]: not an object", k);
			continue;
		}
		req = k[0] == 'v' ? req_v : k[0] == 't' ? req_t : req_r;

		/*
		 * One walk of the entry: which of the required keys it has (e is an
		 * object, so e ? key is "key is one of its keys"), and the messages
		 * about its fields, which follow the "required" ones
		 */
		ec = e->val.binary.data;
		n = JsonContainerSize(ec);
		base = (char *) &ec->children[n * 2];
		koff = 0;
		voff = getJsonbOffset(ec, (int) n);
		for (uint32 ki = 0; ki < n; ki++)
		{
			JsonbValue	kv;
			JsonbValue *x = &xv;
			const char *f;
			int			flen;
			uint32		kend = koff;
			uint32		vend = voff;

			JBE_ADVANCE_OFFSET(kend, ec->children[ki]);
			JBE_ADVANCE_OFFSET(vend, ec->children[n + ki]);
			entry_value(ec, (int) ki, base, koff, kend, &kv);
			entry_value(ec, (int) (n + ki), base, voff, vend, &xv);
			koff = kend;
			voff = vend;
			if (kv.type != jbvString)
				elog(ERROR, "unexpected jsonb object key");
			f = kv.val.string.val;
			flen = kv.val.string.len;
			for (int j = 0; req[j]; j++)
				if (flen == 2 && f[0] == req[j][0] && f[1] == req[j][1])
					have |= 1u << j;
			if (KEY_IS(&kv, "dn") || KEY_IS(&kv, "sd"))
			{
				if (!one_to_nine(x))
					add(&field_errs, "%s[0].%.*s: not an integer from 1 to 9", k, flen, f);
			}
			else if (!is_string(x))
				add(&field_errs, "%s[0].%.*s: not a string", k, flen, f);
			else if (KEY_IS(&kv, "ci") && longer_than_80(x))
				add(&field_errs, "%s[0].%.*s: longer than 80", k, flen, f);
			else if (KEY_IS(&kv, "ci"))
			{
				if (found != NULL)
				{
					found->ci = x->val.string.val;
					found->ci_len = x->val.string.len;
				}
			}
			else if ((KEY_IS(&kv, "dt") || KEY_IS(&kv, "fr") ||
					  KEY_IS(&kv, "df") || KEY_IS(&kv, "du")) &&
					 !matches(M_DATE, x->val.string.val, x->val.string.len))
				add(&field_errs, "%s[0].%.*s: not a date", k, flen, f);
			else if (KEY_IS(&kv, "sc") &&
					 !matches(M_DT, x->val.string.val, x->val.string.len))
				add(&field_errs, "%s[0].%.*s: not a date-time", k, flen, f);
			else if (KEY_IS(&kv, "co") &&
					 !matches(M_CO, x->val.string.val, x->val.string.len))
				add(&field_errs, "%s[0].%.*s: not a country code", k, flen, f);
			else if ((KEY_IS(&kv, "is") ||
					  KEY_IS(&kv, "nm") || KEY_IS(&kv, "tc")) &&
					 longer_than_80(x))
				add(&field_errs, "%s[0].%.*s: longer than 80", k, flen, f);
		}
		for (int j = 0; req[j]; j++)
			if ((have & (1u << j)) == 0)
				add(&errs, "%s[0].%s: required", k, req[j]);
		if (field_errs != NULL)
		{
			ArrayBuildState *fe = field_errs;

			for (int j = 0; j < fe->nelems; j++)
				errs = accumArrayResult(errs, fe->dvalues[j], false, TEXTOID,
										CurrentMemoryContext);
		}
	}
	return errs;
}

/*
 * The schema errors of a payload, as text[] (empty when none).
 */
ArrayType *
hp_schema_errors(Jsonb *jb)
{
	ArrayBuildState *errs = hp_schema_check(jb, NULL);

	if (errs == NULL)
		return construct_empty_array(TEXTOID);
	return DatumGetArrayTypeP(makeArrayResult(errs, CurrentMemoryContext));
}

PG_FUNCTION_INFO_V1(hp_schema_errors_jsonb);
/* schema_errors(payload jsonb) -> text[] */
Datum
hp_schema_errors_jsonb(PG_FUNCTION_ARGS)
{
	PG_RETURN_ARRAYTYPE_P(hp_schema_errors(PG_GETARG_JSONB_P(0)));
}
