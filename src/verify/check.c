/*
 * check.c
 *    Verdicts: check(p, at), the @@ operator and verify(p, certificate).
 *
 * The document signer certificates are looked up by kid in the ordinary
 * table health_pass.trust_list, through its kid index, under the active
 * snapshot of the calling statement: a check sees exactly the trust list
 * its statement sees.  Parsed keys come from the content-addressed cache
 * in keys.c.  The pass's revocation hashes are looked up in
 * health_pass.revocation under the same snapshot (revocation.c), and a DSC
 * whose trust-list row has revoked_at set makes its passes key_revoked,
 * whatever their iat (docs/design/revocation.md).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "utils/guc.h"

#include "verify/hp_verify.h"

/* health_pass.clock_skew: seconds of tolerance on iat and exp */
static int	hp_clock_skew = 0;

/* Define the verifier's settings */
void
hp_verify_init(void)
{
	DefineCustomIntVariable("health_pass.clock_skew",
							"Seconds of tolerance when checking iat and exp.",
							NULL, &hp_clock_skew, 0, 0, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
}

static const char *const reason_names[HP_R_COUNT] = {
	"unknown_key", "unsupported_algorithm", "bad_signature", "key_revoked",
	"revoked", "key_usage",
	"key_not_valid", "missing_claims", "not_yet_valid", "expired"
};

/* Where the trust list is; resolved once per call site (fn_extra) */
typedef struct TrustRef
{
	Oid			relid;
	Oid			kid_index;
	AttrNumber	att_kid;
	AttrNumber	att_country;
	AttrNumber	att_cert;
	AttrNumber	att_from;
	AttrNumber	att_until;
	AttrNumber	att_usage;
	AttrNumber	att_revoked;
	HpRevRef	rev;			/* health_pass.revocation */
} TrustRef;

/* The outcome of a check */
typedef struct Verdict
{
	uint32		reasons;		/* bit per HpReason */
	char	   *country;		/* of the DSC used, palloc'd, or NULL */
} Verdict;

/* Attribute number of a trust_list column, or an error */
static AttrNumber
trust_attnum(Oid relid, const char *name)
{
	AttrNumber	a = get_attnum(relid, name);

	if (a == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("health_pass.trust_list has no column \"%s\"", name),
				 errhint("The extension may be older than this library: ALTER EXTENSION health_pass UPDATE.")));
	return a;
}

/* Resolve the trust list for this call site */
static TrustRef *
trust_ref(FunctionCallInfo fcinfo)
{
	TrustRef   *t = fcinfo->flinfo->fn_extra;

	if (t != NULL)
		return t;
	t = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(TrustRef));
	t->relid = hp_extension_relation_oid("trust_list");
	t->kid_index = hp_extension_relation_oid("trust_list_kid_idx");
	if (!OidIsValid(t->relid) || !OidIsValid(t->kid_index))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("health_pass.trust_list or its kid index is missing")));
	t->att_kid = trust_attnum(t->relid, "kid");
	t->att_country = trust_attnum(t->relid, "country");
	t->att_cert = trust_attnum(t->relid, "certificate");
	t->att_from = trust_attnum(t->relid, "valid_from");
	t->att_until = trust_attnum(t->relid, "valid_until");
	t->att_usage = trust_attnum(t->relid, "key_usage");
	t->att_revoked = trust_attnum(t->relid, "revoked_at");
	hp_revocation_ref(&t->rev);
	fcinfo->flinfo->fn_extra = t;
	return t;
}

/*
 * Kinds (HpKind bits) a key_usage text[] allows, as trust_list and
 * signing_key store them; NULL allows all
 */
int
hp_key_usage_bits(Datum d, bool isnull)
{
	ArrayType  *a;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			bits = 0;

	if (isnull)
		return HP_KIND_VACCINATION | HP_KIND_TEST | HP_KIND_RECOVERY;
	a = DatumGetArrayTypeP(d);
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *s;

		if (nulls[i])
			continue;
		s = TextDatumGetCString(elems[i]);
		if (strcmp(s, "vaccination") == 0)
			bits |= HP_KIND_VACCINATION;
		else if (strcmp(s, "test") == 0)
			bits |= HP_KIND_TEST;
		else if (strcmp(s, "recovery") == 0)
			bits |= HP_KIND_RECOVERY;
	}
	return bits;
}

/* Failures of one trust-list row's validity and key usage for this pass */
static uint32
dsc_failures(HeapTuple tup, TupleDesc desc, TrustRef *t, const HpCose *c,
			 pg_time_t at)
{
	uint32		r = 0;
	bool		isnull;
	Datum		d;
	pg_time_t	when = c->has_iat ? (pg_time_t) c->iat : at;
	int			allowed;

	/* revoked: every pass of this key, whatever its iat (a leaked key can backdate) */
	(void) heap_getattr(tup, t->att_revoked, desc, &isnull);
	if (!isnull)
		r |= 1u << HP_R_KEY_REVOKED;

	d = heap_getattr(tup, t->att_usage, desc, &isnull);
	allowed = hp_key_usage_bits(d, isnull);
	if (c->kind == HP_KIND_NONE
		? allowed != (HP_KIND_VACCINATION | HP_KIND_TEST | HP_KIND_RECOVERY)
		: (allowed & c->kind) == 0)
		r |= 1u << HP_R_KEY_USAGE;
	d = heap_getattr(tup, t->att_from, desc, &isnull);
	if (!isnull && when < timestamptz_to_time_t(DatumGetTimestampTz(d)))
		r |= 1u << HP_R_KEY_NOT_VALID;
	d = heap_getattr(tup, t->att_until, desc, &isnull);
	if (!isnull && when > timestamptz_to_time_t(DatumGetTimestampTz(d)))
		r |= 1u << HP_R_KEY_NOT_VALID;
	return r;
}

/* Copy the country of a trust-list row, or NULL */
static char *
row_country(HeapTuple tup, TupleDesc desc, TrustRef *t)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, t->att_country, desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * Find a DSC for the pass by kid and verify the signature with each
 * candidate; keep the first that verifies and passes its own checks, else
 * the first that verifies.  Sets the key-related reasons in v.
 */
static void
check_signature(TrustRef *t, const HpCose *c, pg_time_t at, Snapshot snap,
				Verdict *v)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bytea	   *kid;
	bool		any_row = false;
	bool		verified = false;
	bool		have_digest = false;
	uint8		digest[32];
	HpReason	sig_reason = HP_R_BAD_SIGNATURE;
	uint32		best = 0;

	if (c->kid == NULL || c->kid_len == 0)
	{
		v->reasons |= 1u << HP_R_UNKNOWN_KEY;
		return;
	}
	kid = hp_bytea(c->kid, c->kid_len);

	rel = table_open(t->relid, AccessShareLock);
	ScanKeyInit(&key, t->att_kid, BTEqualStrategyNumber, F_BYTEAEQ, PointerGetDatum(kid));
	scan = systable_beginscan(rel, t->kid_index, true, snap, 1, &key);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d = heap_getattr(tup, t->att_cert, desc, &isnull);
		bytea	   *cert;
		HpKey	   *k;
		bool		ok = false;
		HpReason	why;
		uint32		fails;

		if (!any_row)
			v->country = row_country(tup, desc, t);
		any_row = true;
		if (isnull)
			continue;
		cert = DatumGetByteaPP(d);
		k = hp_key_get((const uint8 *) VARDATA_ANY(cert), VARSIZE_ANY_EXHDR(cert));
		if (k == NULL)
			continue;
		if (!have_digest && !hp_sig_digest(c, digest))
		{
			hp_key_release(k);
			break;
		}
		have_digest = true;
		why = hp_key_verify(k, c, digest, &ok);
		hp_key_release(k);
		if (!ok)
		{
			if (why == HP_R_UNSUPPORTED_ALG)
				sig_reason = why;
			continue;
		}
		fails = dsc_failures(tup, desc, t, c, at);
		if (!verified || fails == 0)
		{
			best = fails;
			if (v->country)
				pfree(v->country);
			v->country = row_country(tup, desc, t);
		}
		verified = true;
		if (fails == 0)
			break;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!any_row)
		v->reasons |= 1u << HP_R_UNKNOWN_KEY;
	else if (!verified)
		v->reasons |= 1u << sig_reason;
	else
		v->reasons |= best;
}

/* Run every check of pass p at time at */
static void
check_pass(FunctionCallInfo fcinfo, HealthPass *p, TimestampTz at_ts, HpCose *c,
		   Verdict *v)
{
	pg_time_t	at = timestamptz_to_time_t(at_ts);
	TrustRef   *t = trust_ref(fcinfo);
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();

	hp_pass_parse(p, c);
	v->reasons = 0;
	v->country = NULL;
	check_signature(t, c, at, snap, v);
	if (hp_revoked(&t->rev, c, at_ts, snap))
		v->reasons |= 1u << HP_R_REVOKED;
	if (!c->has_iat || !c->has_exp)
		v->reasons |= 1u << HP_R_MISSING_CLAIMS;
	if (c->has_iat && c->iat > at + hp_clock_skew)
		v->reasons |= 1u << HP_R_NOT_YET_VALID;
	if (c->has_exp && c->exp < at - hp_clock_skew)
		v->reasons |= 1u << HP_R_EXPIRED;
}

PG_FUNCTION_INFO_V1(hp_check);
/* check(p, at) -> health_pass.verdict */
Datum
hp_check(PG_FUNCTION_ARGS)
{
	HpCose		c;
	Verdict		v;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Datum		reasons[HP_R_COUNT];
	int			n = 0;

	check_pass(fcinfo, PG_GETARG_PASS_P(0), PG_GETARG_TIMESTAMPTZ(1), &c, &v);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "check() must return health_pass.verdict");
	desc = BlessTupleDesc(desc);
	for (int i = 0; i < HP_R_COUNT; i++)
		if (v.reasons & (1u << i))
			reasons[n++] = CStringGetTextDatum(reason_names[i]);
	values[0] = BoolGetDatum(n == 0);
	values[1] = CStringGetTextDatum(n == 0 ? "ok" : reason_names[__builtin_ctz(v.reasons)]);
	values[2] = PointerGetDatum(construct_array(reasons, n, TEXTOID, -1, false, TYPALIGN_INT));
	if (c.kid)
		values[3] = PointerGetDatum(hp_bytea(c.kid, c.kid_len));
	else
		nulls[3] = true;
	if (v.country)
		values[4] = CStringGetTextDatum(v.country);
	else
		nulls[4] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(hp_valid_at);
/* p @@ at: the pass is valid at that time */
Datum
hp_valid_at(PG_FUNCTION_ARGS)
{
	HpCose		c;
	Verdict		v;

	check_pass(fcinfo, PG_GETARG_PASS_P(0), PG_GETARG_TIMESTAMPTZ(1), &c, &v);
	PG_RETURN_BOOL(v.reasons == 0);
}

PG_FUNCTION_INFO_V1(hp_verify);
/* verify(p, certificate): the signature checked against that DSC alone */
Datum
hp_verify(PG_FUNCTION_ARGS)
{
	HpCose		c;
	bytea	   *cert = PG_GETARG_BYTEA_PP(1);
	HpKey	   *k;
	bool		ok = false;
	uint8		digest[32];

	hp_pass_parse(PG_GETARG_PASS_P(0), &c);
	k = hp_key_get((const uint8 *) VARDATA_ANY(cert), VARSIZE_ANY_EXHDR(cert));
	if (k == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate is not a DER-encoded X.509 certificate")));
	if (hp_sig_digest(&c, digest))
		(void) hp_key_verify(k, &c, digest, &ok);
	hp_key_release(k);
	PG_RETURN_BOOL(ok);
}
