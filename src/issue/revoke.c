/*
 * revoke.c
 *    revoke(p, reason): add the pass's revocation hashes to
 *    health_pass.revocation and record the revocation in the audit chain
 *    (docs/design/revocation.md).
 *
 * The rows are inserted as the extension's owner (the caller needs EXECUTE
 * on revoke(), which PUBLIC does not have, not INSERT on the table), by a
 * schema-qualified statement, with the caller's role kept in revoked_by.
 *
 * The audit record is written at pre-commit, not when revoke() runs: the
 * chain then never says a pass was revoked by a transaction that rolled
 * back (or by a savepoint rolled back to), and the transaction commits
 * only once the record is durable (a failure to record it, YHA01 after
 * audit_timeout, aborts the revocation).  A transaction that revoked a pass
 * cannot be prepared (two-phase commit): the record could not be tied to
 * COMMIT PREPARED.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "issue/hp_issue.h"

/* revoke() of a pass without any of the three hashes */
#define ERRCODE_HP_REVOKE_NO_HASH MAKE_SQLSTATE('Y','H','R','0','2')

/*
 * Whether a reason is only white space: ASCII, or any Unicode White_Space
 * character (U+00A0, U+3000, ...), whatever the database encoding.  The
 * reason is converted to UTF-8 to be read (see below for SQL_ASCII).
 */
static bool
reason_blank(const char *s)
{
	int			len = strlen(s);
	int			enc = GetDatabaseEncoding();
	const unsigned char *u;
	const unsigned char *end;

	/*
	 * SQL_ASCII holds bytes of no known encoding (converting them would
	 * raise an error), and an encoding without a conversion to UTF-8 cannot
	 * be read as Unicode: there the bytes are read as UTF-8 when they are
	 * valid UTF-8, else only ASCII white space is blank
	 */
	if (enc == PG_UTF8)
		u = (const unsigned char *) s;
	else if (enc != PG_SQL_ASCII && OidIsValid(FindDefaultConversionProc(enc, PG_UTF8)))
	{
		u = (const unsigned char *) pg_server_to_any(s, len, PG_UTF8);
		if ((const char *) u != s)
			len = strlen((const char *) u);
	}
	else if (pg_verify_mbstr(PG_UTF8, s, len, true))
		u = (const unsigned char *) s;
	else
		return strspn(s, " \t\n\v\f\r") == (size_t) len;
	end = u + len;
	while (u < end)
	{
		int			l = pg_utf_mblen(u);
		pg_wchar	ch;

		if (l > end - u || !pg_utf8_islegal(u, l))
			return false;
		ch = utf8_to_unicode(u);
		if (!((ch >= 0x09 && ch <= 0x0D) || ch == 0x20 || ch == 0x85 || ch == 0xA0 ||
			  ch == 0x1680 || (ch >= 0x2000 && ch <= 0x200A) || ch == 0x2028 ||
			  ch == 0x2029 || ch == 0x202F || ch == 0x205F || ch == 0x3000))
			return false;
		u += l;
	}
	return true;
}

/* A revocation waiting for its transaction to commit */
typedef struct PendingRevoke
{
	SubTransactionId subid;
	Oid			relid;
	char	   *subject;
	char	   *reason;
	Oid			actor;			/* whose EXECUTE right revoked */
	struct PendingRevoke *next; /* newest first */
} PendingRevoke;

static PendingRevoke *pending = NULL;
static bool callbacks_registered = false;

/* Record every pending revocation of the committing transaction */
static void
revoke_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			{
				PendingRevoke *list = NULL;

				/* oldest first */
				while (pending != NULL)
				{
					PendingRevoke *p = pending;

					pending = p->next;
					p->next = list;
					list = p;
				}
				for (; list != NULL; list = list->next)
					hp_audit_event(HP_REVOKED, list->relid, list->subject, NULL,
								   list->reason, list->actor);
				break;
			}
		case XACT_EVENT_PRE_PREPARE:
			if (pending != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("revocation: cannot prepare a transaction that revoked a pass"),
						 errhint("Revoke outside two-phase commit.")));
			break;
		default:
			/* commit, abort, prepare: the list went with TopTransactionContext */
			pending = NULL;
			break;
	}
}

/* Forget revocations of a rolled-back savepoint; hand others to the parent */
static void
revoke_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	PendingRevoke **link = &pending;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	while (*link != NULL)
	{
		PendingRevoke *p = *link;

		if (p->subid >= mySubid)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
			{
				*link = p->next;
				continue;
			}
			p->subid = parentSubid;
		}
		link = &p->next;
	}
}

/*
 * A revocation to record when the transaction commits: by actor, on relid
 * (health_pass.revocation), subject and reason as given
 */
static void
pending_add(Oid relid, const char *subject, const char *reason, Oid actor)
{
	MemoryContext old;
	PendingRevoke *pr;

	if (!callbacks_registered)
	{
		RegisterXactCallback(revoke_xact_callback, NULL);
		RegisterSubXactCallback(revoke_subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	pr = palloc(sizeof(PendingRevoke));
	pr->subid = GetCurrentSubTransactionId();
	pr->relid = relid;
	pr->subject = pstrdup(subject);
	pr->reason = pstrdup(reason);
	pr->actor = actor;
	pr->next = pending;
	pending = pr;
	MemoryContextSwitchTo(old);
}

/*
 * Insert one hash as the extension owner; true when it was new or extended.
 * An entry already there keeps its row, but a later expiry (or none)
 * extends it, and revoked_at moves so an export since then carries it again
 * (the same rule as revocation_import(): docs/design/revocation.md).  Two
 * statements, not ON CONFLICT DO UPDATE, which would lock (and write) the
 * row even when it changes nothing.  The caller pins search_path; every
 * name is qualified all the same.
 */
static bool
insert_hash(const char *qualified, const HpRevHashes *h, int t, Datum country,
			bool country_null, Datum kid, bool kid_null, Datum expires,
			bool expires_null, Datum reason, Datum revoked_by)
{
	static Oid	argtypes[7] = {BYTEAOID, TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID,
	TEXTOID, NAMEOID};
	static Oid	argtypes_update[3] = {BYTEAOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *sql;
	int			rc;

	sql = psprintf("INSERT INTO %s (hash, hash_type, country, kid, expires, reason, source, revoked_by)"
				   " VALUES ($1, $2, $3, $4, $5, $6, 'local', $7)"
				   " ON CONFLICT (hash, hash_type) DO NOTHING", qualified);
	values[0] = PointerGetDatum(hp_bytea(h->hash[t], HP_REV_HASH_LEN));
	values[1] = CStringGetTextDatum(hp_rev_type_names[t]);
	values[2] = country;
	nulls[2] = country_null ? 'n' : ' ';
	values[3] = kid;
	nulls[3] = kid_null ? 'n' : ' ';
	values[4] = expires;
	nulls[4] = expires_null ? 'n' : ' ';
	values[5] = reason;
	values[6] = revoked_by;
	rc = SPI_execute_with_args(sql, 7, argtypes, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed on health_pass.revocation: %d", rc);
	if (SPI_processed > 0)
		return true;
	sql = psprintf("UPDATE %s SET expires = $3, revoked_at = pg_catalog.now()"
				   " WHERE hash OPERATOR(pg_catalog.=) $1 AND hash_type OPERATOR(pg_catalog.=) $2"
				   " AND expires IS NOT NULL AND ($3 IS NULL OR expires OPERATOR(pg_catalog.<) $3)",
				   qualified);
	values[2] = expires;
	nulls[2] = expires_null ? 'n' : ' ';
	rc = SPI_execute_with_args(sql, 3, argtypes_update, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute_with_args failed on health_pass.revocation: %d", rc);
	return SPI_processed > 0;
}

PG_FUNCTION_INFO_V1(hp_revoke);
/* revoke(p, reason) -> integer: the hashes added or extended (0: already revoked) */
Datum
hp_revoke(PG_FUNCTION_ARGS)
{
	HealthPass *p = PG_GETARG_PASS_P(0);
	text	   *reason = PG_GETARG_TEXT_PP(1);
	char	   *reason_s = text_to_cstring(reason);
	HpCose		c;
	HpRevHashes h;
	Oid			relid;
	char	   *qualified;
	char	   *subject;
	Datum		country = (Datum) 0;
	bool		country_null = true;
	Datum		kid = (Datum) 0;
	Datum		expires = (Datum) 0;
	NameData	by;
	Oid			save_user;
	int			save_sec;
	int			guc_nest;
	int			added = 0;

	hp_require_preload();
	if (reason_blank(reason_s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("revocation: a reason is required")));
	if (strlen(reason_s) >= HP_REASON_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("revocation: the reason is longer than %d bytes", HP_REASON_LEN - 1)));
	hp_pass_parse(p, &c);
	hp_revocation_hashes(&c, &h);
	if (!h.present[HP_REV_UCI] && !h.present[HP_REV_COUNTRYCODEUCI]
		&& !h.present[HP_REV_SIGNATURE])
		ereport(ERROR,
				(errcode(ERRCODE_HP_REVOKE_NO_HASH),
				 errmsg("revocation: the pass has no revocation hash (no \"ci\" and no signature bytes), so revoking it would add nothing"),
				 errhint("Revoke its DSC in health_pass.trust_list, or insert the hash another registry gave into health_pass.revocation.")));

	relid = hp_extension_relation_oid("revocation");
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("revocation: health_pass.revocation is missing")));
	qualified = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										   get_rel_name(relid));

	/* the issuing country, when iss is a country code as the gateway wants */
	if (c.iss != NULL && c.iss_len == 2 && c.iss[0] >= 'A' && c.iss[0] <= 'Z'
		&& c.iss[1] >= 'A' && c.iss[1] <= 'Z')
	{
		country = PointerGetDatum(cstring_to_text_with_len((const char *) c.iss, 2));
		country_null = false;
	}
	/*
	 * the kid as a gateway batch can carry it (revocation_import() takes at
	 * most 64 bytes, an EU kid has 8): a longer one is not kept, so that
	 * revocation_export() of the entry gives a batch another registry
	 * accepts (a red-team pass's 200-byte kid did not)
	 */
	if (c.kid != NULL && c.kid_len <= 64)
		kid = PointerGetDatum(hp_bytea(c.kid, c.kid_len));
	if (c.has_exp)
		expires = TimestampTzGetDatum(time_t_to_timestamptz((pg_time_t) c.exp));

	/* the audit subject: the UVCI, else the SIGNATURE hash */
	if (c.uvci != NULL)
	{
		int			len;

		subject = hp_utf8_to_server(c.uvci, c.uvci_len, &len);
		subject = pnstrdup(subject, len);
	}
	else
	{
		subject = psprintf("signature:%s",
						   text_to_cstring(DatumGetTextPP(DirectFunctionCall2(binary_encode,
																			  PointerGetDatum(hp_bytea(h.hash[HP_REV_SIGNATURE], HP_REV_HASH_LEN)),
																			  CStringGetTextDatum("hex")))));
	}

	GetUserIdAndSecContext(&save_user, &save_sec);
	namestrcpy(&by, GetUserNameFromId(save_user, false));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	SetUserIdAndSecContext(hp_extension_owner(),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	/*
	 * As the owner, never under the caller's search_path: a function or
	 * operator of the caller's schema must not be found by name (as a
	 * SECURITY DEFINER function with SET search_path; an error pops it with
	 * the (sub)transaction's abort)
	 */
	guc_nest = hp_search_path_pin();
	PG_TRY();
	{
		for (int t = 0; t < HP_REV_NTYPES; t++)
			if (h.present[t]
				&& insert_hash(qualified, &h, t, country, country_null, kid,
							   kid == (Datum) 0, expires, !c.has_exp,
							   PointerGetDatum(reason), NameGetDatum(&by)))
				added++;
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	hp_search_path_restore(guc_nest);
	SPI_finish();

	/* recorded when the transaction commits (see the header comment) */
	pending_add(relid, subject, reason_s, save_user);

	PG_RETURN_INT32(added);
}

PG_FUNCTION_INFO_V1(hp_revocation_imported);
/*
 * _revocation_imported(subject text, reason text): called by
 * revocation_import() (SECURITY DEFINER, as the extension owner) once a
 * batch is in, so the batch is recorded when the transaction commits, as a
 * revoke() is, under the role that called the import.  Not PUBLIC.
 */
Datum
hp_revocation_imported(PG_FUNCTION_ARGS)
{
	HpRevRef	r;

	hp_require_preload();
	hp_revocation_ref(&r);
	pending_add(r.relid, text_to_cstring(PG_GETARG_TEXT_PP(0)),
				text_to_cstring(PG_GETARG_TEXT_PP(1)), GetOuterUserId());
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(hp_revocation_caller);
/*
 * _revocation_caller() -> name: the role that called revocation_import()
 * (the outer user: SET ROLE counts, the SECURITY DEFINER switch does not),
 * so that revoked_by names the same role as the batch's audit record
 */
Datum
hp_revocation_caller(PG_FUNCTION_ARGS)
{
	char	   *name = GetUserNameFromId(GetOuterUserId(), false);
	Name		result = (Name) palloc0(NAMEDATALEN);

	namestrcpy(result, name);
	PG_RETURN_NAME(result);
}
