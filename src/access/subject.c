/*
 * subject.c
 *    What a subject is: the text an audit record keeps of a subject value,
 *    and the digest quotas count it by.
 *
 *    A subject value is printed by its type's output function under fixed
 *    settings, whatever the session's: DateStyle ISO, YMD; IntervalStyle
 *    postgres; TimeZone UTC; extra_float_digits 1 (shortest text that reads
 *    back as the same float); bytea_output hex.  So the text is a function
 *    of the value alone: two sessions print a subject the same way, and a
 *    session cannot make two values print the same (extra_float_digits = -12
 *    used to).  A text longer than HP_SUBJECT_LEN - 1 bytes is recorded as
 *    "sha256:" and the 64 hex digits of its SHA-256 (71 bytes), and never
 *    refused.  health_pass.subject_text(value) gives that text, which is what
 *    who_read() matches.
 *
 *    Quotas count distinct subjects of a rule by the first 16 bytes of the
 *    SHA-256 of that recorded text: rebuilt from the audit log after a
 *    restart, the counts come out the same as they were.
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/lsyscache.h"

#include "access/hp_access.h"

/* The recorded form of a subject's text s: s, or its digest when too long */
static char *
hp_subject_record_form(char *s)
{
	size_t		len = strlen(s);
	uint8		md[32];
	char	   *r;

	if (len < HP_SUBJECT_LEN)
		return s;
	hp_sha256(s, len, NULL, 0, md);
	r = palloc(HP_SUBJECT_DIGEST_LEN + 1);
	memcpy(r, "sha256:", 7);
	hex_encode((const char *) md, 32, r + 7);
	r[HP_SUBJECT_DIGEST_LEN] = '\0';
	return r;
}

/*
 * The text an audit record keeps of subject value d, printed by out under
 * the fixed settings above (palloc'd in the current context)
 */
char *
hp_subject_text(FmgrInfo *out, Datum d)
{
	static pg_tz *utc = NULL;
	int			save_style = DateStyle,
				save_order = DateOrder,
				save_interval = IntervalStyle,
				save_digits = extra_float_digits,
				save_bytea = bytea_output;
	pg_tz	   *save_tz = session_timezone;
	char	   *s;

	if (utc == NULL)
	{
		utc = pg_tzset("UTC");
		if (utc == NULL)
			elog(ERROR, "health_pass could not load time zone UTC");
	}
	DateStyle = USE_ISO_DATES;
	DateOrder = DATEORDER_YMD;
	IntervalStyle = INTSTYLE_POSTGRES;
	extra_float_digits = 1;
	bytea_output = BYTEA_OUTPUT_HEX;
	session_timezone = utc;
	PG_TRY();
	{
		s = OutputFunctionCall(out, d);
	}
	PG_FINALLY();
	{
		DateStyle = save_style;
		DateOrder = save_order;
		IntervalStyle = save_interval;
		extra_float_digits = save_digits;
		bytea_output = save_bytea;
		session_timezone = save_tz;
	}
	PG_END_TRY();
	return hp_subject_record_form(s);
}

/* What quotas count a subject by: 16 bytes of SHA-256 of its recorded text */
void
hp_subject_digest(const char *recorded, uint8 *out)
{
	uint8		md[32];

	hp_sha256(recorded, strlen(recorded), NULL, 0, md);
	memcpy(out, md, HP_SUBJECT_KEY_LEN);
}

PG_FUNCTION_INFO_V1(hp_subject_text_sql);

/*
 * health_pass.subject_text(anyelement): the text the audit log keeps of
 * this subject value (what who_read() matches); NULL for NULL
 */
Datum
hp_subject_text_sql(PG_FUNCTION_ARGS)
{
	Oid			typoid = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			outfn;
	bool		varlena;
	FmgrInfo	out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (!OidIsValid(typoid))
		ereport(ERROR,
				(errcode(ERRCODE_INDETERMINATE_DATATYPE),
				 errmsg("could not determine the type of the subject value")));
	if (typoid == UNKNOWNOID)
		typoid = TEXTOID;
	getTypeOutputInfo(typoid, &outfn, &varlena);
	fmgr_info(outfn, &out);
	PG_RETURN_TEXT_P(cstring_to_text(hp_subject_text(&out, PG_GETARG_DATUM(0))));
}

PG_FUNCTION_INFO_V1(hp_who_read);

/*
 * health_pass.who_read(tbl regclass, subject text): the audit records of
 * one subject of tbl and its partitions and children, newest first.  The
 * subject is matched in the form the log keeps it (subject_text()); the
 * rows come from the audit subsystem (hp_audit_who_read), which finds the
 * blocks through the subject index (docs/design/audit_index.md).
 */
Datum
hp_who_read(PG_FUNCTION_ARGS)
{
	FmgrInfo	out;

	fmgr_info(F_TEXTOUT, &out);
	hp_audit_who_read(fcinfo, PG_GETARG_OID(0), hp_subject_text(&out, PG_GETARG_DATUM(1)));
	return (Datum) 0;
}
