/*
 * records.c
 *    audit_block rows as the server sees them: packing a run of records
 *    into a row (writer, upgrade), unpacking one into audit_log rows (the
 *    view, audit_verify, who_read), and the superuser-only edit path that
 *    lets UPDATE and DELETE on the audit_log view change the block under it.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"
#include "audit/hp_block.h"

/* palloc for the block decoder */
static void *
hp_block_alloc(void *arg, size_t size)
{
	return palloc(size);
}

StaticAssertDecl(HP_NAME_MAX == NAMEDATALEN - 1, "a name in a block is at most a name");
StaticAssertDecl(HP_TS_MIN == MIN_TIMESTAMP && HP_TS_END == END_TIMESTAMP,
				 "the record checks use timestamptz's range");
StaticAssertDecl(HP_OUTCOME_DENIED == HP_DENIED, "an invalid outcome is written as denied");
StaticAssertDecl(HP_NTEXT == 7, "seven text fields in a record");

#define HP_LOG_COLUMNS 16		/* audit_log's columns (and _audit_rows' OUT columns) */

/* Valid prefix of s in the database encoding (HpTextValid) */
size_t
hp_db_text_valid(void *arg, const char *s, size_t len)
{
	if (len > (size_t) PG_INT32_MAX)
		len = PG_INT32_MAX;
	return (size_t) pg_encoding_verifymbstr(GetDatabaseEncoding(), s, (int) len);
}

/* "client_addr, outcome": the names of the fields set in bad */
char *
hp_fields_text(uint32 bad)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int f = 0; f < HP_NFIELD; f++)
		if (bad & (1u << f))
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", hp_field_name((HpField) f));
	return buf.data;
}

/*
 * True when s is a node name: 1 to HP_NODE_MAX bytes of letters, digits
 * and "_.:-" (what health_pass.node_name and _audit_ship() accept)
 */
bool
hp_node_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > HP_NODE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			  (s[i] >= '0' && s[i] <= '9') || strchr("_.:-", s[i]) != NULL) || s[i] == '\0')
			return false;
	return true;
}

/* The node of a queued record: NULL for this server's own, "invalid" for bad bytes */
static const char *
hp_node_of_record(const HpRecord *r)
{
	const char *nul = memchr(r->node, '\0', sizeof(r->node));

	if (r->node[0] == '\0')
		return NULL;
	return nul && hp_node_name_ok(r->node, nul - r->node) ? r->node : "invalid";
}

/*
 * Entry of a record queued by a backend, checked first (a record in shared
 * memory is only as good as the code that wrote it).  A valid record's
 * strings point into r; an invalid one is written in a safe form, in
 * memory of the current context, saying which fields were invalid: it is
 * never dropped, and nothing downstream can fail on it.
 */
void
hp_entry_of_record(const HpRecord *r, HpEntry *e)
{
	HpRawRecord raw;
	uint32		bad;
	char	   *arena;
	size_t		cap;

	raw.logged_at = r->logged_at;
	raw.statement_id = r->statement_id;
	raw.relid = r->relid;
	raw.backend_pid = r->backend_pid;
	raw.outcome = r->outcome;
	/* the bytes of the flags, which need not be 0 or 1 */
	memcpy(&raw.subject_null, &r->subject_null, 1);
	memcpy(&raw.client_addr_null, &r->client_addr_null, 1);
	raw.text[HP_F_SESSION_USER] = NameStr(r->session_user_name);
	raw.size[HP_F_SESSION_USER] = NAMEDATALEN;
	raw.text[HP_F_CURRENT_USER] = NameStr(r->current_user_name);
	raw.size[HP_F_CURRENT_USER] = NAMEDATALEN;
	raw.text[HP_F_CLIENT_ADDR] = r->client_addr;
	raw.size[HP_F_CLIENT_ADDR] = HP_ADDR_LEN;
	raw.text[HP_F_APPNAME] = r->application_name;
	raw.size[HP_F_APPNAME] = HP_APPNAME_LEN;
	raw.text[HP_F_SUBJECT] = r->subject;
	raw.size[HP_F_SUBJECT] = HP_SUBJECT_LEN;
	raw.text[HP_F_PURPOSE] = r->purpose;
	raw.size[HP_F_PURPOSE] = HP_PURPOSE_LEN;
	raw.text[HP_F_REASON] = r->reason;
	raw.size[HP_F_REASON] = HP_REASON_LEN;
	bad = hp_record_check(&raw, hp_db_text_valid, NULL, GetCurrentTimestamp(), e, NULL, 0);
	e->node = hp_node_of_record(r);
	if (bad == 0)
		return;
	cap = hp_record_arena_size(&raw);
	arena = palloc(cap);
	hp_record_check(&raw, hp_db_text_valid, NULL, GetCurrentTimestamp(), e, arena, cap);
	e->node = hp_node_of_record(r);
	ereport(LOG,
			(errmsg("health_pass: an audit record of backend %d had invalid fields: %s",
					(int) r->backend_pid, hp_fields_text(bad)),
			 errdetail("It is written with those fields escaped or replaced, and its reason says so.")));
}

/*
 * The summary columns of a block of n entries: min_id, max_id, min_at,
 * max_at and subjects (bloom filter of (relation, subject)).  Entries need
 * no particular order; ids and times are taken as they are.
 */
void
hp_block_summary(const HpEntry *e, int n, Datum *values, bool *nulls)
{
	size_t		bloom_size = hp_bloom_size(n);
	bytea	   *bloom = palloc0(VARHDRSZ + bloom_size);
	int64		min_id = e[0].id,
				max_id = e[0].id;
	TimestampTz min_at = e[0].logged_at,
				max_at = e[0].logged_at;

	SET_VARSIZE(bloom, VARHDRSZ + bloom_size);
	for (int i = 0; i < n; i++)
	{
		if (e[i].subject)
			hp_bloom_add((uint8 *) VARDATA(bloom), bloom_size, e[i].relid, e[i].subject);
		min_id = Min(min_id, e[i].id);
		max_id = Max(max_id, e[i].id);
		min_at = Min(min_at, e[i].logged_at);
		max_at = Max(max_at, e[i].logged_at);
	}
	memset(nulls, 0, 5 * sizeof(bool));
	values[0] = Int64GetDatum(min_id);
	values[1] = Int64GetDatum(max_id);
	values[2] = TimestampTzGetDatum(min_at);
	values[3] = TimestampTzGetDatum(max_at);
	values[4] = PointerGetDatum(bloom);
}

/* The audit_block row of n entries chained to prev: the summary, then records */
void
hp_block_form(const uint8 *prev, const HpEntry *e, int n, Datum *values, bool *nulls)
{
	size_t		cap = hp_block_encoded_max(e, n);
	bytea	   *records = palloc(VARHDRSZ + cap);
	int		   *ctx = palloc(2 * sizeof(int) * Max(n, 1));
	size_t		len;

	len = hp_block_encode(prev, e, n, ctx, (uint8 *) VARDATA(records), cap);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("audit records do not fit in one block"),
				 errdetail("A block holds at most 1 MB and text fields of at most %d bytes.",
						   HP_BLOCK_MAX_TEXT)));
	SET_VARSIZE(records, VARHDRSZ + len);
	pfree(ctx);
	hp_block_summary(e, n, values, nulls);
	values[5] = PointerGetDatum(records);
	nulls[5] = false;
}

/* Unpack a records value; false (why set) when it is not a block */
bool
hp_block_unpack(bytea *records, HpBlock *b, const char **why)
{
	return hp_block_decode((const uint8 *) VARDATA_ANY(records), VARSIZE_ANY_EXHDR(records),
						   hp_block_alloc, NULL, b, why);
}

/* Unpack a records value, or fail naming the block (the edit path) */
static void
hp_block_unpack_or_error(bytea *records, HpBlock *b)
{
	const char *why = NULL;

	if (!hp_block_unpack(records, b, &why))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("health_pass.audit_block holds a damaged block: %s", why),
				 errhint("Run health_pass.audit_verify() to find the first damaged record.")));
}

/* Text datum, or NULL */
static Datum
hp_text_datum(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* Text s as audit_log shows it: rendered when it is not valid text */
static const char *
hp_shown_text(const char *s, bool bad)
{
	char	   *out;

	if (s == NULL || !bad)
		return s;
	out = palloc(4 * strlen(s) + 1);
	hp_render(s, strlen(s), hp_db_text_valid, NULL, out);
	return out;
}

/* name datum of s, which hp_entry_check() found valid or hp_shown_text() made so */
static Datum
hp_name_datum(const char *s, bool *isnull)
{
	Name		n;
	int			len;

	*isnull = (s == NULL);
	if (s == NULL)
		return (Datum) 0;
	n = palloc0(NAMEDATALEN);
	len = pg_mbcliplen(s, strlen(s), NAMEDATALEN - 1);
	memcpy(NameStr(*n), s, len);
	return NameGetDatum(n);
}

/* inet datum of an address hp_inet_parse() read */
static Datum
hp_inet_datum(const HpInet *a)
{
	inet	   *ip = palloc0(sizeof(inet));

	ip_family(ip) = a->v6 ? PGSQL_AF_INET6 : PGSQL_AF_INET;
	ip_bits(ip) = a->bits;
	memcpy(ip_addr(ip), a->addr, a->v6 ? 16 : 4);
	SET_INET_VARSIZE(ip);
	return InetPGetDatum(ip);
}

/*
 * The HP_LOG_COLUMNS audit_log columns of entry e (the one function that
 * turns a record into a row: _audit_rows() and who_read() use it), chained to prev.  A field that
 * cannot be shown as it is (hp_entry_check) is shown in a safe form: text
 * rendered with its invalid bytes as \xNN, an address, outcome or time
 * NULL; and the reason starts with "unreadable record: " and those fields.
 * audit_verify() reports such a record; the hash is of the stored fields.
 */
static void
hp_entry_datums(const HpEntry *e, const uint8 *prev, Datum *v, bool *nulls)
{
	uint32		bad = hp_entry_check(e, hp_db_text_valid, NULL);
	HpInet		a;
	const char *reason = e->reason;

#define HP_BAD(f) ((bad & (1u << (f))) != 0)
	memset(nulls, 0, HP_LOG_COLUMNS * sizeof(bool));
	v[0] = Int64GetDatum(e->id);
	nulls[1] = HP_BAD(HP_F_LOGGED_AT);
	v[1] = TimestampTzGetDatum(e->logged_at);
	v[2] = hp_name_datum(hp_shown_text(e->session_user_name, HP_BAD(HP_F_SESSION_USER)), &nulls[2]);
	v[3] = hp_name_datum(hp_shown_text(e->current_user_name, HP_BAD(HP_F_CURRENT_USER)), &nulls[3]);
	nulls[4] = (e->client_addr == NULL || !hp_inet_parse(e->client_addr, &a));
	v[4] = nulls[4] ? (Datum) 0 : hp_inet_datum(&a);
	v[5] = hp_text_datum(hp_shown_text(e->application_name, HP_BAD(HP_F_APPNAME)), &nulls[5]);
	v[6] = Int32GetDatum(e->backend_pid);
	v[7] = Int64GetDatum(e->statement_id);
	v[8] = ObjectIdGetDatum(e->relid);
	v[9] = hp_text_datum(hp_shown_text(e->subject, HP_BAD(HP_F_SUBJECT)), &nulls[9]);
	v[10] = hp_text_datum(hp_shown_text(e->purpose, HP_BAD(HP_F_PURPOSE)), &nulls[10]);
	nulls[11] = HP_BAD(HP_F_OUTCOME);
	v[11] = nulls[11] ? (Datum) 0 : CStringGetTextDatum(hp_outcome_name((HpOutcome) e->outcome));
	if (bad)
	{
		const char *shown = hp_shown_text(reason, HP_BAD(HP_F_REASON));

		reason = psprintf("unreadable record: %s%s%s", hp_fields_text(bad),
						  shown ? "; " : "", shown ? shown : "");
	}
	v[12] = hp_text_datum(reason, &nulls[12]);
	v[13] = PointerGetDatum(hp_bytea(prev, 32));
	v[14] = PointerGetDatum(hp_bytea(e->hash, 32));
	/* the standby that read (a shipped record); not a field hp_entry_check() knows */
	v[15] = hp_text_datum(hp_shown_text(e->node, e->node &&
										hp_db_text_valid(NULL, e->node, strlen(e->node)) !=
										strlen(e->node)), &nulls[15]);
#undef HP_BAD
}

/*
 * The one audit_log row of a block that does not decode: every column NULL
 * but reason, "unreadable block: <why>", and prev_hash when the block's
 * header holds it.
 */
static void
hp_unreadable_block_datums(bytea *records, const char *why, Datum *v, bool *nulls)
{
	const uint8 *raw = (const uint8 *) VARDATA_ANY(records);
	size_t		len = VARSIZE_ANY_EXHDR(records);

	for (int i = 0; i < HP_LOG_COLUMNS; i++)
	{
		nulls[i] = true;
		v[i] = (Datum) 0;
	}
	nulls[12] = false;
	v[12] = CStringGetTextDatum(psprintf("unreadable block: %s", why ? why : "unknown"));
	if (len >= 35 && raw[0] == 'H' && raw[1] == 'B')
	{
		nulls[13] = false;
		v[13] = PointerGetDatum(hp_bytea(raw + 3, 32));
	}
}

PG_FUNCTION_INFO_V1(hp_audit_records);

/*
 * _audit_rows(records bytea): the audit_log rows of one block, in the
 * order they were written.  prev_hash is the hash of the record before:
 * the block's own for the first, the previous record's for the others.
 * Never fails on what the block holds: a block that does not decode is
 * one row, every column NULL but reason, "unreadable block: <why>" (and
 * prev_hash when the block's header holds it); audit_verify() reports it.
 */
Datum
hp_audit_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *records = PG_GETARG_BYTEA_PP(0);
	HpBlock		b;
	const uint8 *prev;
	const char *why = NULL;
	Datum		v[HP_LOG_COLUMNS];
	bool		nulls[HP_LOG_COLUMNS];

	InitMaterializedSRF(fcinfo, 0);
	if (!hp_block_unpack(records, &b, &why))
	{
		hp_unreadable_block_datums(records, why, v, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
		return (Datum) 0;
	}
	prev = b.prev_hash;
	for (int i = 0; i < b.n; i++)
	{
		hp_entry_datums(&b.entries[i], prev, v, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
		prev = b.entries[i].hash;
	}
	return (Datum) 0;
}

/* qsort: int64 keys ascending */
static int
hp_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

PG_FUNCTION_INFO_V1(hp_audit_keys);

/*
 * _audit_keys(records bytea) returns bigint[]: the subject-index keys of a
 * block (docs/design/audit_index.md), each distinct (relation, subject)
 * of its records hashed to 64 bits (hp_subject_key), sorted; a block that
 * does not decode has the one key HP_KEY_UNREADABLE, so the GIN index on
 * this expression finds it too.  Computed from the records themselves, not
 * from the block's summary columns, which a superuser can change apart.
 * IMMUTABLE: the key of a record never changes (the hash is fixed).
 */
Datum
hp_audit_keys(PG_FUNCTION_ARGS)
{
	bytea	   *records = PG_GETARG_BYTEA_PP(0);
	HpBlock		b;
	const char *why = NULL;
	Datum	   *keys;
	int64	   *k;
	int			n = 0;

	if (!hp_block_unpack(records, &b, &why))
	{
		Datum		unreadable = Int64GetDatum(HP_KEY_UNREADABLE);

		PG_RETURN_ARRAYTYPE_P(construct_array(&unreadable, 1, INT8OID, 8, FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	}
	k = palloc(sizeof(int64) * Max(b.n, 1));
	for (int i = 0; i < b.n; i++)
		if (b.entries[i].subject)
			k[n++] = (int64) hp_subject_key(b.entries[i].relid, b.entries[i].subject);
	qsort(k, n, sizeof(int64), hp_cmp_int64);
	keys = palloc(sizeof(Datum) * Max(n, 1));
	{
		int			m = 0;

		for (int i = 0; i < n; i++)
			if (m == 0 || k[i] != k[i - 1])
				keys[m++] = Int64GetDatum(k[i]);
		n = m;
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(keys, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* A row who_read() returns, with the id it is sorted by */
typedef struct HpFound
{
	bool		unreadable;		/* a block that does not decode: first */
	int64		id;
	Datum	   *v;
	bool	   *nulls;
} HpFound;

/* qsort: unreadable blocks first, then newest record first (ORDER BY id DESC) */
static int
hp_cmp_found(const void *a, const void *b)
{
	const HpFound *x = a,
			   *y = b;

	if (x->unreadable != y->unreadable)
		return x->unreadable ? -1 : 1;
	return x->id > y->id ? -1 : x->id < y->id;
}

/* who_read()'s state while it reads blocks */
typedef struct HpWhoRead
{
	Oid		   *relids;
	int			nrels;
	const char *subject;
	HpFound    *found;
	int			nfound;
	int			cap;
} HpWhoRead;

static HpFound *
hp_who_read_add(HpWhoRead *w)
{
	if (w->nfound == w->cap)
	{
		w->cap = Max(16, w->cap * 2);
		w->found = w->found ? repalloc(w->found, w->cap * sizeof(HpFound))
			: palloc(w->cap * sizeof(HpFound));
	}
	return &w->found[w->nfound];
}

/*
 * One block who_read() reads (subjects: its bloom filter, records): its
 * records of the subject, or its "unreadable block" row when it does not
 * decode and its bloom filter may hold the subject.  Each block's scratch
 * memory is freed before the next (cxt); only the rows kept stay.
 */
static void
hp_who_read_block(HpWhoRead *w, Datum subjects, Datum rec, MemoryContext cxt)
{
	MemoryContext keep = MemoryContextSwitchTo(cxt);
	bytea	   *records = DatumGetByteaPP(rec);
	HpBlock		b;
	const char *why = NULL;
	const uint8 *prev;

	CHECK_FOR_INTERRUPTS();
	if (!hp_block_unpack(records, &b, &why))
	{
		bytea	   *bl = DatumGetByteaPP(subjects);
		bool		may = false;

		/* the block's bloom filter says whether it may hold the subject */
		for (int k = 0; k < w->nrels && !may; k++)
			may = hp_bloom_test((const uint8 *) VARDATA_ANY(bl), VARSIZE_ANY_EXHDR(bl),
								w->relids[k], w->subject);
		if (may)
		{
			HpFound    *f;

			MemoryContextSwitchTo(keep);
			f = hp_who_read_add(w);
			f->unreadable = true;
			f->id = 0;
			f->v = palloc(HP_LOG_COLUMNS * sizeof(Datum));
			f->nulls = palloc(HP_LOG_COLUMNS * sizeof(bool));
			hp_unreadable_block_datums(records, why, f->v, f->nulls);
			w->nfound++;
		}
		MemoryContextSwitchTo(keep);
		MemoryContextReset(cxt);
		return;
	}
	prev = b.prev_hash;
	for (int k = 0; k < b.n; prev = b.entries[k].hash, k++)
	{
		const HpEntry *e = &b.entries[k];
		bool		rel_ok = false;
		HpFound    *f;

		if (e->subject == NULL)
			continue;
		for (int j = 0; j < w->nrels && !rel_ok; j++)
			rel_ok = (e->relid == w->relids[j]);
		/* a subject shown rendered may match only as rendered */
		if (!rel_ok || (strcmp(e->subject, w->subject) != 0 &&
						(hp_entry_check(e, hp_db_text_valid, NULL) & (1u << HP_F_SUBJECT)) == 0))
			continue;
		MemoryContextSwitchTo(keep);
		f = hp_who_read_add(w);
		f->unreadable = false;
		f->id = e->id;
		f->v = palloc(HP_LOG_COLUMNS * sizeof(Datum));
		f->nulls = palloc(HP_LOG_COLUMNS * sizeof(bool));
		hp_entry_datums(e, prev, f->v, f->nulls);
		MemoryContextSwitchTo(cxt);
		if (f->nulls[9] || strcmp(TextDatumGetCString(f->v[9]), w->subject) != 0)
			continue;
		w->nfound++;
	}
	MemoryContextSwitchTo(keep);
	MemoryContextReset(cxt);
}

/* The plans of who_read()'s queries, kept for the session */
static SPIPlanPtr hp_who_read_tail_plan = NULL;
static SPIPlanPtr hp_who_read_ids_plan = NULL;

static SPIPlanPtr
hp_who_read_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "could not prepare who_read's query: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*cache = plan;
	}
	return *cache;
}

/* Is block (a min_id) one of the n sorted ones? */
static bool
hp_block_listed(const int64 *blocks, int n, int64 block)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (blocks[mid] == block)
			return true;
		if (blocks[mid] < block)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * Read the blocks a who_read() cursor of (min_id, subjects, records)
 * returns.  In the tail, a block is read only when its bloom filter may
 * hold the subject or the index names it (listed, sorted, nlisted of them,
 * maybe none); else (the blocks the index names) every block is read.
 */
static void
hp_who_read_portal(HpWhoRead *w, Portal portal, MemoryContext cxt, bool tail,
				   const int64 *listed, int nlisted)
{
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 64);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	t = SPI_tuptable->vals[r];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		n0,
						n1,
						n2;
			Datum		id = SPI_getbinval(t, d, 1, &n0);
			Datum		bloom = SPI_getbinval(t, d, 2, &n1);
			Datum		rec = SPI_getbinval(t, d, 3, &n2);
			bool		may = !tail;

			if (n0 || n1 || n2)
				continue;
			if (!may)
				may = hp_block_listed(listed, nlisted, DatumGetInt64(id));
			if (!may)
			{
				bytea	   *bl = DatumGetByteaPP(bloom);

				for (int k = 0; k < w->nrels && !may; k++)
					may = hp_bloom_test((const uint8 *) VARDATA_ANY(bl), VARSIZE_ANY_EXHDR(bl),
										w->relids[k], w->subject);
				if ((Pointer) bl != DatumGetPointer(bloom))
					pfree(bl);
			}
			if (may)
				hp_who_read_block(w, bloom, rec, cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
}

/*
 * who_read(tbl, subject) after the caller turned subject into the text the
 * log keeps (subject_text()): every audit_log row of that subject of tbl
 * and of its partitions and children (pg_inherits, as of now), newest
 * first, and first the one row of each block that does not decode and
 * whose bloom filter may hold the subject.  The blocks are those the
 * subject index names (keyindex.c, docs/design/audit_index.md) and those
 * after its mark whose bloom filter may hold one of the keys, all read
 * under the statement's snapshot; the queries run as the caller, so
 * SELECT on audit_block is needed, as before.  Rows are built by
 * hp_entry_datums(), as audit_log's, and matched on the shown subject.
 */
void
hp_audit_who_read(FunctionCallInfo fcinfo, Oid tbl, const char *subject)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *rels;
	int64	   *keys;
	int64	   *blocks;
	int			nblocks;
	int64		mark;
	HpWhoRead	w = {0};
	MemoryContext blockcxt;
	Portal		portal;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	rels = find_all_inheritors(tbl, NoLock, NULL);
	w.nrels = list_length(rels);
	w.relids = palloc(sizeof(Oid) * w.nrels);
	w.subject = subject;
	keys = palloc(sizeof(int64) * (w.nrels + 1));
	for (i = 0; i < w.nrels; i++)
	{
		w.relids[i] = list_nth_oid(rels, i);
		keys[i] = (int64) hp_subject_key(w.relids[i], subject);
	}
	keys[w.nrels] = (int64) HP_KEY_UNREADABLE;
	blockcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass who_read block",
									 ALLOCSET_DEFAULT_SIZES);

	/* as the queries below would: the caller needs SELECT on audit_block */
	{
		Oid			blockrel = hp_extension_relation_oid("audit_block");

		if (!OidIsValid(blockrel))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("health_pass.audit_block does not exist")));
		if (pg_class_aclcheck(blockrel, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, "audit_block");
	}
	nblocks = hp_keyidx_lookup(GetActiveSnapshot(), keys, w.nrels + 1, &blocks, &mark);

	SPI_connect();

	/*
	 * The tail: blocks after the index's mark, each read when its bloom
	 * filter may hold the subject, or when the index names it (a block a
	 * superuser changed is indexed again at once, whatever its filter).
	 */
	{
		Oid			types[1] = {INT8OID};
		Datum		arg = Int64GetDatum(mark);

		portal = SPI_cursor_open(NULL,
								 hp_who_read_plan(&hp_who_read_tail_plan,
												  "SELECT min_id, subjects, records FROM ONLY health_pass.audit_block "
												  "WHERE min_id OPERATOR(pg_catalog.>) $1", 1, types),
								 &arg, NULL, true);
	}
	hp_who_read_portal(&w, portal, blockcxt, true, blocks, nblocks);
	SPI_cursor_close(portal);

	/* the blocks the index names, up to its mark (those after it: above) */
	for (int start = 0; start < nblocks && blocks[start] <= mark; start += 256)
	{
		int			n = 0;
		Datum	   *ids = palloc(256 * sizeof(Datum));
		Datum		arr;
		Oid			types[1] = {INT8ARRAYOID};

		while (n < 256 && start + n < nblocks && blocks[start + n] <= mark)
		{
			ids[n] = Int64GetDatum(blocks[start + n]);
			n++;
		}
		arr = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		portal = SPI_cursor_open(NULL,
								 hp_who_read_plan(&hp_who_read_ids_plan,
												  "SELECT min_id, subjects, records FROM ONLY health_pass.audit_block "
												  "WHERE min_id OPERATOR(pg_catalog.=) ANY ($1)", 1, types),
								 &arr, NULL, true);
		hp_who_read_portal(&w, portal, blockcxt, false, NULL, 0);
		SPI_cursor_close(portal);
		pfree(ids);
	}

	if (w.nfound > 1)
		qsort(w.found, w.nfound, sizeof(HpFound), hp_cmp_found);
	for (i = 0; i < w.nfound; i++)
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, w.found[i].v, w.found[i].nulls);
	SPI_finish();
	MemoryContextDelete(blockcxt);
}

PG_FUNCTION_INFO_V1(hp_audit_may_hold);

/* _audit_may_hold(subjects bytea, tbl regclass, subject text): bloom test */
Datum
hp_audit_may_hold(PG_FUNCTION_ARGS)
{
	bytea	   *bloom = PG_GETARG_BYTEA_PP(0);
	char	   *subject = text_to_cstring(PG_GETARG_TEXT_PP(2));

	PG_RETURN_BOOL(hp_bloom_test((const uint8 *) VARDATA_ANY(bloom), VARSIZE_ANY_EXHDR(bloom),
								 PG_GETARG_OID(1), subject));
}

/* Text of column i (1-based) of tuple t, or NULL */
static char *
hp_col_text(HeapTuple t, TupleDesc d, int i)
{
	bool		isnull;
	Datum		v = heap_getattr(t, i, d, &isnull);

	if (isnull)
		return NULL;
	switch (TupleDescAttr(d, i - 1)->atttypid)
	{
		case NAMEOID:
			return pstrdup(NameStr(*DatumGetName(v)));
		case INETOID:
			return TextDatumGetCString(DirectFunctionCall1(network_host, v));
		default:
			return TextDatumGetCString(v);
	}
}

/* Integer column i of t (0 when NULL) */
static Datum
hp_col_datum(HeapTuple t, TupleDesc d, int i)
{
	bool		isnull;
	Datum		v = heap_getattr(t, i, d, &isnull);

	return isnull ? (Datum) 0 : v;
}

/*
 * Entry of an audit_log row (the view's HP_LOG_COLUMNS columns), as a superuser's
 * UPDATE sets it.  prev_hash is not kept: it is the previous record's hash.
 */
static void
hp_entry_of_row(HeapTuple t, TupleDesc d, HpEntry *e, bool replacement)
{
	char	   *outcome = hp_col_text(t, d, 12);
	bool		isnull;
	Datum		hash = heap_getattr(t, 15, d, &isnull);
	int			o;

	e->id = DatumGetInt64(hp_col_datum(t, d, 1));
	e->logged_at = DatumGetTimestampTz(hp_col_datum(t, d, 2));
	e->session_user_name = hp_col_text(t, d, 3);
	e->current_user_name = hp_col_text(t, d, 4);
	e->client_addr = hp_col_text(t, d, 5);
	e->application_name = hp_col_text(t, d, 6);
	e->backend_pid = DatumGetInt32(hp_col_datum(t, d, 7));
	e->statement_id = DatumGetInt64(hp_col_datum(t, d, 8));
	e->relid = DatumGetObjectId(hp_col_datum(t, d, 9));
	e->subject = hp_col_text(t, d, 10);
	e->purpose = hp_col_text(t, d, 11);
	e->reason = hp_col_text(t, d, 13);
	e->node = d->natts >= 16 ? hp_col_text(t, d, 16) : NULL;
	if (e->node && strlen(e->node) > HP_NODE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("audit_log.node is at most %d bytes", HP_NODE_MAX)));
	for (o = 0; o <= HP_OUTCOME_LAST; o++)
		if (outcome && strcmp(outcome, hp_outcome_name((HpOutcome) o)) == 0)
			break;
	/* the old row is only looked for (by id and hash): it may be unreadable */
	if (o > HP_OUTCOME_LAST && replacement)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("audit_log.outcome must be allowed, denied, quota_exceeded, break_glass, superuser, issued, revoked, failover, archived or verified")));
	e->outcome = (uint8) o;
	if (isnull || VARSIZE_ANY_EXHDR(DatumGetByteaPP(hash)) != 32)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("audit_log.hash must be 32 bytes")));
	memcpy(e->hash, VARDATA_ANY(DatumGetByteaPP(hash)), 32);
}

/* Refuse a change to the audit log unless the caller is a superuser */
void
hp_audit_refuse_unless_superuser(const char *what)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("health_pass.audit_log is append-only: only its writer may add records and only a superuser may %s them",
						what)));
}

/*
 * Find the block holding record old (same id and hash) and replace it with
 * repl, or drop it when repl is NULL; the block is packed again and
 * updated, or deleted once empty.  False when no block holds the record.
 */
static bool
hp_block_edit(const HpEntry *old, const HpEntry *repl)
{
	Oid			argtypes[7] = {INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	BYTEAOID, BYTEAOID, TIDOID};
	bool		found = false;
	SPITupleTable *tt;
	uint64		rows;
	int			nest = hp_search_path_pin();	/* none of the caller's operators */

	SPI_connect();
	if (SPI_execute_with_args("SELECT ctid, records FROM health_pass.audit_block "
							  "WHERE min_id OPERATOR(pg_catalog.<=) $1 AND max_id OPERATOR(pg_catalog.>=) $1 "
							  "ORDER BY min_id FOR UPDATE",
							  1, argtypes, (Datum[]) {Int64GetDatum(old->id)}, NULL,
							  false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read health_pass.audit_block");
	tt = SPI_tuptable;
	rows = SPI_processed;
	for (uint64 r = 0; r < rows && !found; r++)
	{
		HeapTuple	t = tt->vals[r];
		TupleDesc	d = tt->tupdesc;
		bool		isnull;
		Datum		ctid = SPI_getbinval(t, d, 1, &isnull);
		HpBlock		b;
		Datum		v[7];
		bool		nulls[7];
		char		nullflags[7];
		int			i;

		hp_block_unpack_or_error(DatumGetByteaPP(SPI_getbinval(t, d, 2, &isnull)), &b);
		for (i = 0; i < b.n; i++)
			if (b.entries[i].id == old->id && memcmp(b.entries[i].hash, old->hash, 32) == 0)
				break;
		if (i == b.n)
			continue;
		found = true;
		if (repl)
			b.entries[i] = *repl;
		else
			memmove(&b.entries[i], &b.entries[i + 1], (b.n - i - 1) * sizeof(HpEntry));
		b.n -= repl ? 0 : 1;
		if (b.n == 0)
		{
			if (SPI_execute_with_args("DELETE FROM health_pass.audit_block WHERE ctid OPERATOR(pg_catalog.=) $1",
									  1, &argtypes[6], &ctid, NULL, false, 0) != SPI_OK_DELETE)
				elog(ERROR, "could not delete from health_pass.audit_block");
			break;
		}
		hp_block_form(b.prev_hash, b.entries, b.n, v, nulls);
		v[6] = ctid;
		nulls[6] = false;
		for (int k = 0; k < 7; k++)
			nullflags[k] = nulls[k] ? 'n' : ' ';
		if (SPI_execute_with_args("UPDATE health_pass.audit_block SET min_id = $1, max_id = $2, "
								  "min_at = $3, max_at = $4, subjects = $5, records = $6 "
								  "WHERE ctid OPERATOR(pg_catalog.=) $7", 7, argtypes, v, nullflags, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update health_pass.audit_block");
	}
	SPI_finish();
	hp_search_path_restore(nest);
	return found;
}

PG_FUNCTION_INFO_V1(hp_audit_edit);

/*
 * INSTEAD OF trigger on the audit_log view.  Every role but a superuser is
 * refused, as on a table.  A superuser's UPDATE or DELETE changes the
 * block that holds the record: audit_log behaves like the table it shows,
 * and audit_verify() finds what was changed.  Records are added only by
 * the writer.
 */
Datum
hp_audit_edit(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	d;
	HpEntry		old,
				repl;
	bool		found;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hp_audit_edit must be called as a row trigger")));
	d = RelationGetDescr(td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		hp_audit_refuse_unless_superuser("insert");
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("records are added to health_pass.audit_log only by its writer")));
	}
	hp_audit_refuse_unless_superuser(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "update" : "delete");
	hp_entry_of_row(td->tg_trigtuple, d, &old, false);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		hp_entry_of_row(td->tg_newtuple, d, &repl, true);
		found = hp_block_edit(&old, &repl);
	}
	else
		found = hp_block_edit(&old, NULL);
	if (!found)
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
						   td->tg_newtuple : td->tg_trigtuple);
}

PG_FUNCTION_INFO_V1(hp_audit_pack_table);

/*
 * _audit_pack_table(old regclass): move the records of an audit_log table
 * (the layout before 0.5.0) into audit_block, HP_BLOCK_RECORDS at a time in
 * id order, ids and hashes as they are.  Returns the records moved.
 */
Datum
hp_audit_pack_table(PG_FUNCTION_ARGS)
{
	Oid			old = PG_GETARG_OID(0);
	Oid			argtypes[6] = {INT8OID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	BYTEAOID, BYTEAOID};
	char	   *relname = get_rel_name(old);
	Portal		portal;
	int64		moved = 0;
	HpEntry    *e = palloc(HP_BLOCK_RECORDS * sizeof(HpEntry));
	MemoryContext batchcxt,
				outer;
	int			nest;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may move audit records")));
	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", old)));
	nest = hp_search_path_pin();	/* none of the caller's operators */
	SPI_connect();
	batchcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass pack batch",
									 ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT id, logged_at, session_user_name, "
												"current_user_name, client_addr, application_name, "
												"backend_pid, statement_id, relation, subject, purpose, "
												"outcome, reason, prev_hash, hash FROM %s ORDER BY id",
												quote_qualified_identifier(get_namespace_name(get_rel_namespace(old)),
																		   relname)),
									   0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		uint8		prev[32] = {0};
		Datum		v[6];
		bool		nulls[6];
		char		nullflags[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		bool		isnull;
		SPITupleTable *tt;
		int			n;
		Datum		p;

		SPI_cursor_fetch(portal, true, HP_BLOCK_RECORDS);
		tt = SPI_tuptable;
		n = (int) SPI_processed;
		if (n == 0)
			break;
		outer = MemoryContextSwitchTo(batchcxt);
		for (int r = 0; r < n; r++)
			hp_entry_of_row(tt->vals[r], tt->tupdesc, &e[r], true);
		/* the first record keeps the prev_hash it was stored with */
		p = SPI_getbinval(tt->vals[0], tt->tupdesc, 14, &isnull);
		if (!isnull && VARSIZE_ANY_EXHDR(DatumGetByteaPP(p)) == 32)
			memcpy(prev, VARDATA_ANY(DatumGetByteaPP(p)), 32);
		hp_block_form(prev, e, n, v, nulls);
		MemoryContextSwitchTo(outer);
		if (SPI_execute_with_args("INSERT INTO health_pass.audit_block "
								  "(min_id, max_id, min_at, max_at, subjects, records) "
								  "VALUES ($1, $2, $3, $4, $5, $6)",
								  6, argtypes, v, nullflags, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into health_pass.audit_block");
		SPI_freetuptable(tt);
		MemoryContextReset(batchcxt);
		moved += n;
	}
	SPI_cursor_close(portal);
	SPI_finish();
	hp_search_path_restore(nest);
	PG_RETURN_INT64(moved);
}

/*
 * Begin a scan of audit_block (rel, opened and locked by the caller) newest
 * block first, through its primary key on min_id: no SQL, so no planner
 * setting or plan applies.  The writer reads the chain head this way, the
 * quota rebuild the recent records.  The table must be the one the writer
 * makes rows for: 6 columns, the primary key a btree on min_id alone.
 */
void
hp_block_scan_begin(HpBlockScan *bs, Relation rel, LOCKMODE lockmode, Snapshot snap)
{
	Oid			pk = RelationGetPrimaryKeyIndex(rel);

	if (!OidIsValid(pk) || RelationGetDescr(rel)->natts != 6)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("health_pass.audit_block is not the table health_pass expects (6 columns, primary key min_id)")));
	bs->idx = index_open(pk, lockmode);
	if (bs->idx->rd_rel->relam != BTREE_AM_OID || bs->idx->rd_index->indnkeyatts != 1 ||
		bs->idx->rd_index->indkey.values[0] != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the primary key of health_pass.audit_block is not the btree on min_id health_pass expects")));
	bs->snap = RegisterSnapshot(snap);
	bs->slot = table_slot_create(rel, NULL);
	bs->scan = index_beginscan(rel, bs->idx, bs->snap, 0, 0);
	index_rescan(bs->scan, NULL, 0, NULL, 0);
}

/* The next (older) block into bs->slot; false after the oldest */
bool
hp_block_scan_next(HpBlockScan *bs)
{
	return index_getnext_slot(bs->scan, BackwardScanDirection, bs->slot);
}

/* End the scan (the caller closes the table); the index lock is kept to
 * the end of the transaction, like the table's */
void
hp_block_scan_end(HpBlockScan *bs)
{
	index_endscan(bs->scan);
	ExecDropSingleTupleTableSlot(bs->slot);
	UnregisterSnapshot(bs->snap);
	index_close(bs->idx, NoLock);
}

/*
 * The anchors of the chain (health_pass.audit_anchor, docs/design/
 * audit_index.md): every row, sorted by id, into *out (palloc'd in the
 * current context); returns how many.  A direct scan of the table, no
 * SQL and no privilege check: the writer reads its chain head from it when
 * every block was archived, and audit_verify() reads it for whoever may
 * read audit_block.  A row of the wrong shape (a superuser's) is skipped.
 * No table (an extension script before 0.10.0): none.  Read under snap, or
 * under a new snapshot when snap is NULL.
 */
int
hp_anchors_read(HpAnchor **out, Snapshot snap)
{
	Oid			relid = hp_extension_relation_oid("audit_anchor");
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	int			n = 0,
				cap = 8;
	HpAnchor   *a = palloc(cap * sizeof(HpAnchor));

	*out = a;
	if (!OidIsValid(relid))
		return 0;
	rel = table_open(relid, AccessShareLock);
	if (RelationGetDescr(rel)->natts < 3 ||
		TupleDescAttr(RelationGetDescr(rel), 0)->atttypid != INT8OID ||
		TupleDescAttr(RelationGetDescr(rel), 1)->atttypid != BYTEAOID ||
		TupleDescAttr(RelationGetDescr(rel), 2)->atttypid != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("health_pass.audit_anchor is not the table health_pass expects (id bigint, hash bytea, kind text, ...)")));
	snap = RegisterSnapshot(snap ? snap : GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snap, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		n1,
					n2,
					n3;
		Datum		id = slot_getattr(slot, 1, &n1);
		Datum		hash = slot_getattr(slot, 2, &n2);
		Datum		kind = slot_getattr(slot, 3, &n3);
		bytea	   *h;
		char	   *k;

		CHECK_FOR_INTERRUPTS();
		if (n1 || n2 || n3)
			continue;
		h = DatumGetByteaPP(hash);
		k = TextDatumGetCString(kind);
		if (VARSIZE_ANY_EXHDR(h) != 32 ||
			(strcmp(k, "archived") != 0 && strcmp(k, "verified") != 0))
			continue;
		if (n == cap)
		{
			cap *= 2;
			a = repalloc(a, cap * sizeof(HpAnchor));
		}
		a[n].id = DatumGetInt64(id);
		memcpy(a[n].hash, VARDATA_ANY(h), 32);
		a[n].archived = (strcmp(k, "archived") == 0);
		a[n].recorded = false;
		n++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	if (n > 1)
		qsort(a, n, sizeof(HpAnchor), hp_cmp_int64);	/* id is the first member */
	*out = a;
	return n;
}
