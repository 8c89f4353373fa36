/*
 * trust.c
 *    certificate_info(certificate bytea): what the trust list records about
 *    a document signer certificate (country, validity, key usage).
 */
#include "postgres.h"

#include <time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "verify/hp_verify.h"

/* Extended key usage OIDs of the EU DCC and the kind each allows */
static const struct
{
	const char *oid;
	int			kind;
}			dcc_ekus[] = {
	{"1.3.6.1.4.1.1847.2021.1.1", HP_KIND_TEST},
	{"1.3.6.1.4.1.1847.2021.1.2", HP_KIND_VACCINATION},
	{"1.3.6.1.4.1.1847.2021.1.3", HP_KIND_RECOVERY},
	{"1.3.6.1.4.1.0.1847.2021.1.1", HP_KIND_TEST},
	{"1.3.6.1.4.1.0.1847.2021.1.2", HP_KIND_VACCINATION},
	{"1.3.6.1.4.1.0.1847.2021.1.3", HP_KIND_RECOVERY},
};

/* What we read from a certificate, in plain C values */
typedef struct CertInfo
{
	char		country[64];
	char		subject[512];
	time_t		not_before;
	time_t		not_after;
	int			kinds;			/* -1: no DCC EKU, any kind */
	char		key_type[16];
	int			key_bits;
} CertInfo;

/* ASN1_TIME as time_t */
static bool
asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = timegm(&tm);
	return true;
}

/* Read info from DER; false when it is not exactly one certificate */
static bool
cert_read(const uint8 *der, size_t len, CertInfo *ci)
{
	const unsigned char *p = der;
	X509	   *x = d2i_X509(NULL, &p, (long) len);
	X509_NAME  *name;
	int			idx;
	EXTENDED_KEY_USAGE *eku;
	EVP_PKEY   *pk;
	bool		ok = false;

	memset(ci, 0, sizeof(*ci));
	if (x == NULL || p != der + len)
		goto done;
	name = X509_get_subject_name(x);
	X509_NAME_oneline(name, ci->subject, sizeof(ci->subject));
	idx = X509_NAME_get_index_by_NID(name, NID_countryName, -1);
	if (idx >= 0)
	{
		ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
		int			n = ASN1_STRING_length(s);

		if (n > 0 && n < (int) sizeof(ci->country))
			memcpy(ci->country, ASN1_STRING_get0_data(s), n);
	}
	if (!asn1_time(X509_get0_notBefore(x), &ci->not_before) ||
		!asn1_time(X509_get0_notAfter(x), &ci->not_after))
		goto done;
	ci->kinds = -1;
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	if (eku)
	{
		for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++)
		{
			char		buf[80];

			OBJ_obj2txt(buf, sizeof(buf), sk_ASN1_OBJECT_value(eku, i), 1);
			for (size_t k = 0; k < lengthof(dcc_ekus); k++)
				if (strcmp(buf, dcc_ekus[k].oid) == 0)
					ci->kinds = (ci->kinds < 0 ? 0 : ci->kinds) | dcc_ekus[k].kind;
		}
		EXTENDED_KEY_USAGE_free(eku);
	}
	pk = X509_get0_pubkey(x);
	if (pk)
	{
		strlcpy(ci->key_type, EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC ? "EC" :
				EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA ? "RSA" : "other",
				sizeof(ci->key_type));
		ci->key_bits = EVP_PKEY_get_bits(pk);
	}
	ok = true;
done:
	X509_free(x);
	ERR_clear_error();
	return ok;
}

PG_FUNCTION_INFO_V1(hp_certificate_info);
/* certificate_info(bytea) -> (subject, country, not_before, not_after, key_usage, key_type, key_bits) */
Datum
hp_certificate_info(PG_FUNCTION_ARGS)
{
	bytea	   *der = PG_GETARG_BYTEA_PP(0);
	CertInfo	ci;
	TupleDesc	desc;
	Datum		values[7];
	bool		nulls[7] = {false};
	Datum		kinds[3];
	int			n = 0;

	if (!cert_read((const uint8 *) VARDATA_ANY(der), VARSIZE_ANY_EXHDR(der), &ci))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate is not a DER-encoded X.509 certificate")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "certificate_info() must return a record");
	desc = BlessTupleDesc(desc);
	values[0] = CStringGetTextDatum(ci.subject);
	values[1] = CStringGetTextDatum(ci.country);
	nulls[1] = ci.country[0] == '\0';
	values[2] = TimestampTzGetDatum(time_t_to_timestamptz(ci.not_before));
	values[3] = TimestampTzGetDatum(time_t_to_timestamptz(ci.not_after));
	if (ci.kinds < 0)
		nulls[4] = true;
	else
	{
		if (ci.kinds & HP_KIND_TEST)
			kinds[n++] = CStringGetTextDatum("test");
		if (ci.kinds & HP_KIND_VACCINATION)
			kinds[n++] = CStringGetTextDatum("vaccination");
		if (ci.kinds & HP_KIND_RECOVERY)
			kinds[n++] = CStringGetTextDatum("recovery");
		values[4] = PointerGetDatum(construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT));
	}
	values[5] = CStringGetTextDatum(ci.key_type);
	values[6] = Int32GetDatum(ci.key_bits);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
