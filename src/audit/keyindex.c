/*
 * keyindex.c
 *    The subject index of the audit log (docs/design/audit_index.md): which
 *    blocks of health_pass.audit_block hold records of a (relation,
 *    subject), kept as sorted runs merged level by level, off the writer's
 *    batches.
 *
 *    A pair is (key, block): key = hp_subject_key(relid, subject) of a
 *    record (HP_KEY_UNREADABLE for a block that does not decode), block =
 *    the block's min_id.  A run is a list of pairs sorted by key, then
 *    block, without duplicates, cut into pages of at most
 *    HP_KEY_PAGE_PAIRS: rows (run, page, lo, hi, pairs) of
 *    health_pass.audit_key_page, found by (run, hi, page); its row in
 *    health_pass.audit_key_run says its level and whether it is live.
 *    health_pass.audit_key_mark holds the mark: the min_id of the last
 *    block the runs cover.  Blocks after the mark are the tail, which
 *    who_read() tests with their bloom filters.
 *
 *    Who writes:
 *    - the audit writer, between its batches (hp_keyidx_writer_step), each
 *      step a transaction of its own: a level-0 run of the blocks after the
 *      mark (and at most the chain head), moving the mark to the last one's
 *      min_id in the same transaction; one step of a merge of HP_KEY_FANIN
 *      live runs of one level into one run of the next; or a sweep of a dead
 *      run's pages.  The merged run is built not live over as many steps as
 *      it takes, then made live, and its inputs made dead (level -1), in one
 *      transaction; dead runs' pages are deleted HP_KEY_SWEEP_PAGES at a
 *      time.  The merge's state (the inputs' current pages, the output page
 *      being filled) is this process's; a merge it does not finish (an
 *      error, a restart) leaves a run that is not live, made dead when the
 *      next merge starts.  Merges leave out pairs of blocks older than the
 *      oldest block (archived);
 *    - a superuser's INSERT or UPDATE of audit_block (statement triggers,
 *      _audit_key_patch): a level-0 run of those blocks' keys, taken from
 *      their records, whatever the mark, so an edited block, a block
 *      inserted behind the mark and a wiped bloom filter are found by what
 *      the records hold.
 *    Who reads: who_read() (hp_keyidx_lookup), under the statement's
 *    snapshot: the mark, the live runs, and for each run and key the pages
 *    whose key range holds the key.  The mark and the runs change only in
 *    transactions that commit them together, so a snapshot sees the runs
 *    and the mark that cover the same blocks.
 *
 *    Locks: the writer never waits.  A step takes the index's tables and
 *    audit_block with conditional locks, then claims the mark's row FOR
 *    UPDATE SKIP LOCKED; when either is taken, it does nothing.
 *    audit_reindex() updates the mark's row before it deletes the runs, so
 *    no step runs beside it.  Patches take nothing but ordinary row and
 *    table locks: they only insert new runs.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"
#include "audit/hp_block.h"

#define HP_KEY_PAGE_PAIRS 496	/* pairs a page holds: one row per 8 kB heap page */
#define HP_KEY_FANIN 8			/* runs of one level merged into one of the next */
#define HP_KEY_STEP_BLOCKS 64	/* blocks a level-0 step indexes, at most */
#define HP_KEY_STEP_PAIRS 32768 /* pairs a merge step moves, at most */
#define HP_KEY_PATCH_PAIRS (1 << 20)	/* pairs of one patch run, at most */
#define HP_KEY_BUSY_LAG 131072	/* records behind the mark that a busy writer lets be */
#define HP_KEY_SHORT_LAG 8192	/* ... after a short batch */
#define HP_KEY_RETRY_MS 10000	/* pause after a step failed */
#define HP_KEY_SWEEP_PAGES 2000	/* pages of dead runs a step deletes, at most */
#define HP_KEY_SWEEP_BUSY 20000	/* dead pages a busy writer lets be */

typedef struct HpKeyPair
{
	int64		key;
	int64		block;
} HpKeyPair;

/* (key, block) order */
static int
hp_pair_cmp(const void *a, const void *b)
{
	const HpKeyPair *x = a,
			   *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->block < y->block ? -1 : x->block > y->block;
}

/* The relations of the index, or false when the extension has none */
typedef struct HpKeyRels
{
	Oid			mark;
	Oid			run;
	Oid			page;
	Oid			page_hi;
} HpKeyRels;

static bool
hp_key_rels(HpKeyRels *r)
{
	r->mark = hp_extension_relation_oid("audit_key_mark");
	r->run = hp_extension_relation_oid("audit_key_run");
	r->page = hp_extension_relation_oid("audit_key_page");
	r->page_hi = hp_extension_relation_oid("audit_key_page_hi");
	return OidIsValid(r->mark) && OidIsValid(r->run) && OidIsValid(r->page) &&
		OidIsValid(r->page_hi);
}

/* ---- SPI helpers (the caller is connected) ---- */

static SPIPlanPtr
hp_key_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*cache = p;
	}
	return *cache;
}

static void
hp_key_exec(SPIPlanPtr plan, Datum *args, int expect, long limit)
{
	int			rc = SPI_execute_plan(plan, args, NULL, false, limit);

	if (rc != expect)
		elog(ERROR, "subject index query failed: %s", SPI_result_code_string(rc));
}

static int64
hp_key_int8(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	if (isnull)
		elog(ERROR, "subject index: unexpected NULL");
	return DatumGetInt64(d);
}

static SPIPlanPtr plan_page_insert,
			plan_run_insert,
			plan_nextval,
			plan_mark_read,
			plan_mark_set,
			plan_blocks_after,
			plan_blocks_by_id,
			plan_page_read,
			plan_levels,
			plan_inputs,
			plan_run_live,
			plan_drop_runs,
			plan_drop_dead,
			plan_floor,
			plan_sweep_pick,
			plan_sweep_pages,
			plan_sweep_run,
			plan_clamp_read,
			plan_clamp_claim;

static int64
hp_key_next_run(void)
{
	hp_key_exec(hp_key_plan(&plan_nextval,
							"SELECT pg_catalog.nextval('health_pass.audit_key_run_seq')", 0, NULL),
				NULL, SPI_OK_SELECT, 1);
	return hp_key_int8(0, 1);
}

/*
 * Claim the mark: its row, locked FOR UPDATE SKIP LOCKED, so a step never
 * waits for audit_reindex() or a superuser's edit of it; every step of the
 * writer claims it first, and audit_reindex() updates it first.  Returns
 * the mark, or -1 when the row is locked by another transaction (or gone:
 * then nothing is indexed, and who_read() reads the whole log as tail).
 */
static int64
hp_key_mark_claim(void)
{
	hp_key_exec(hp_key_plan(&plan_mark_read,
							"SELECT mark FROM health_pass.audit_key_mark FOR UPDATE SKIP LOCKED",
							0, NULL),
				NULL, SPI_OK_SELECT, 1);
	if (SPI_processed != 1)
		return -1;
	return hp_key_int8(0, 1);
}

static void
hp_key_mark_set(int64 mark)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(mark)};

	hp_key_exec(hp_key_plan(&plan_mark_set,
							"UPDATE health_pass.audit_key_mark SET mark = $1", 1, types),
				args, SPI_OK_UPDATE, 0);
	if (SPI_processed != 1)
		elog(ERROR, "subject index: health_pass.audit_key_mark does not hold one row");
}

/* ---- writing a run: pairs in order, cut into pages ---- */

typedef struct HpRunWriter
{
	int64		run;
	int32		page;			/* pages written */
	int64		total;			/* pairs written or buffered */
	int			n;				/* pairs in buf */
	bool		any;			/* last is set */
	HpKeyPair	last;			/* the pair put last (duplicates dropped) */
	HpKeyPair	buf[HP_KEY_PAGE_PAIRS];
} HpRunWriter;

static void
hp_run_flush(HpRunWriter *w)
{
	Oid			types[5] = {INT8OID, INT4OID, INT8OID, INT8OID, BYTEAOID};
	Datum		args[5];
	bytea	   *b;

	if (w->n == 0)
		return;
	b = palloc(VARHDRSZ + w->n * sizeof(HpKeyPair));
	SET_VARSIZE(b, VARHDRSZ + w->n * sizeof(HpKeyPair));
	memcpy(VARDATA(b), w->buf, w->n * sizeof(HpKeyPair));
	args[0] = Int64GetDatum(w->run);
	args[1] = Int32GetDatum(w->page);
	args[2] = Int64GetDatum(w->buf[0].key);
	args[3] = Int64GetDatum(w->buf[w->n - 1].key);
	args[4] = PointerGetDatum(b);
	hp_key_exec(hp_key_plan(&plan_page_insert,
							"INSERT INTO health_pass.audit_key_page (run, page, lo, hi, pairs) "
							"VALUES ($1, $2, $3, $4, $5)", 5, types),
				args, SPI_OK_INSERT, 0);
	pfree(b);
	w->page++;
	w->n = 0;
}

static void
hp_run_put(HpRunWriter *w, const HpKeyPair *p)
{
	if (w->any && w->last.key == p->key && w->last.block == p->block)
		return;
	w->last = *p;
	w->any = true;
	w->buf[w->n++] = *p;
	w->total++;
	if (w->n == HP_KEY_PAGE_PAIRS)
		hp_run_flush(w);
}

static void
hp_run_row(int64 run, int level, int64 first_id, int64 last_id, int64 pairs, int32 pages,
		   bool live)
{
	Oid			types[7] = {INT8OID, INT4OID, INT8OID, INT8OID, INT8OID, INT4OID, BOOLOID};
	Datum		args[7] = {Int64GetDatum(run), Int32GetDatum(level), Int64GetDatum(first_id),
	Int64GetDatum(last_id), Int64GetDatum(pairs), Int32GetDatum(pages), BoolGetDatum(live)};

	hp_key_exec(hp_key_plan(&plan_run_insert,
							"INSERT INTO health_pass.audit_key_run "
							"(run, level, first_id, last_id, pairs, pages, live) "
							"VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, types),
				args, SPI_OK_INSERT, 0);
}

/* A growing array of pairs */
typedef struct HpPairs
{
	HpKeyPair  *p;
	int64		n;
	int64		cap;
} HpPairs;

static void
hp_pairs_add(HpPairs *a, int64 key, int64 block)
{
	if (a->n == a->cap)
	{
		a->cap = Max(1024, a->cap * 2);
		if ((Size) a->cap * sizeof(HpKeyPair) > MaxAllocSize)
			elog(ERROR, "subject index: too many pairs in one run");
		a->p = a->p ? repalloc(a->p, a->cap * sizeof(HpKeyPair)) : palloc(a->cap * sizeof(HpKeyPair));
	}
	a->p[a->n].key = key;
	a->p[a->n].block = block;
	a->n++;
}

/*
 * Add the pairs of one block's records to a (HP_KEY_UNREADABLE when it
 * does not decode).  The detoasted records and their decoding live in
 * scratch, reset before returning.
 */
static void
hp_pairs_of_block(HpPairs *a, int64 block, Datum records, MemoryContext scratch)
{
	MemoryContext old = MemoryContextSwitchTo(scratch);
	HpBlock		b;
	const char *why = NULL;
	bool		ok = hp_block_unpack(DatumGetByteaPP(records), &b, &why);

	MemoryContextSwitchTo(old);
	if (!ok)
		hp_pairs_add(a, (int64) HP_KEY_UNREADABLE, block);
	else
		for (int i = 0; i < b.n; i++)
			if (b.entries[i].subject)
				hp_pairs_add(a, (int64) hp_subject_key(b.entries[i].relid, b.entries[i].subject),
							 block);
	MemoryContextReset(scratch);
}

/* Sort a's pairs and write them as a new live run; returns its pairs */
static int64
hp_run_write(HpPairs *a, int level, int64 first_id, int64 last_id)
{
	HpRunWriter *w = palloc0(sizeof(HpRunWriter));
	int64		total;

	if (a->n > 1)
		qsort(a->p, a->n, sizeof(HpKeyPair), hp_pair_cmp);
	w->run = hp_key_next_run();
	for (int64 i = 0; i < a->n; i++)
		hp_run_put(w, &a->p[i]);
	hp_run_flush(w);
	hp_run_row(w->run, level, first_id, last_id, w->total, w->page, true);
	total = w->total;
	pfree(w);
	return total;
}

/* ---- the writer's steps ---- */

/* What the writer knows of the index between its steps */
typedef struct HpMergeIn
{
	int64		run;
	int32		pages;
	int32		next;			/* next page to read */
	HpKeyPair  *p;				/* the current page's pairs */
	int			n;
	int			pos;
} HpMergeIn;

typedef struct HpKeyState
{
	Oid			pagerel;		/* the tables this state is of */
	int64		mark;			/* -1: not known */
	int			fullest;		/* most live runs of one level, at the last step */
	int64		dead_pages;		/* pages of dead runs, at the last step */
	TimestampTz retry_after;
	bool		warned;
	bool		tail_empty;		/* the last level-0 step found no block after the mark */
	bool		clamp_pending;	/* hp_keyidx_clamp could not bring the mark back ... */
	int64		clamp_head;		/* ... to this head: a level-0 step will */
	bool		clamp_done;		/* this step did it (cleared once it commits) */
	TimestampTz checked;		/* when a level-0 step last read the mark */
	/* the merge under way */
	bool		merging;
	int			nin;
	HpMergeIn	in[HP_KEY_FANIN];
	HpRunWriter *out;
	int			out_level;
	int64		floor;			/* the oldest block's min_id at the merge's start */
	MemoryContext cxt;
} HpKeyState;

static HpKeyState hp_ks = {InvalidOid, -1};

static void
hp_merge_forget(void)
{
	hp_ks.merging = false;
	hp_ks.nin = 0;
	hp_ks.out = NULL;
	if (hp_ks.cxt)
		MemoryContextReset(hp_ks.cxt);
}

/*
 * Refresh what decides the next step: hp_ks.fullest, the most live runs any
 * one level has, and hp_ks.dead_pages, the pages of dead runs to sweep
 */
static void
hp_key_count_levels(void)
{
	hp_key_exec(hp_key_plan(&plan_levels,
							"SELECT coalesce((SELECT pg_catalog.count(*) FROM health_pass.audit_key_run "
							"  WHERE live GROUP BY level ORDER BY 1 DESC LIMIT 1), 0)::pg_catalog.int8, "
							"coalesce((SELECT pg_catalog.sum(pages) FROM health_pass.audit_key_run "
							"  WHERE level OPERATOR(pg_catalog.=) -1), 0)::pg_catalog.int8", 0, NULL),
				NULL, SPI_OK_SELECT, 1);
	hp_ks.fullest = (int) hp_key_int8(0, 1);
	hp_ks.dead_pages = hp_key_int8(0, 2);
}

/*
 * A level-0 step, the mark claimed: the blocks after the mark and at most
 * the chain head written (at most HP_KEY_STEP_BLOCKS) become a run, and the
 * mark moves to the last one's min_id.  A mark past the head (the newest
 * records deleted by a superuser, the chain continued from before them) is
 * first brought back to it, so the blocks written next are in the tail; a
 * block a superuser inserted past the head stays in the tail (and was
 * indexed by its trigger).  False when there is nothing to index.
 */
static bool
hp_key_level0(int64 mark, int64 written)
{
	Oid			types[3] = {INT8OID, INT8OID, INT8OID};
	Datum		args[3];
	HpPairs		a = {0};
	int64		first_id,
				last_id,
				last_min;
	uint64		nblocks;
	MemoryContext scratch;

	if (hp_ks.clamp_pending)
	{
		/* the writer's start could not: the head of then, not of now */
		written = Min(written, hp_ks.clamp_head);
		hp_ks.clamp_done = true;
	}
	if (mark > written)
	{
		hp_key_mark_set(written);
		mark = written;
	}
	hp_ks.mark = mark;
	args[0] = Int64GetDatum(mark);
	args[1] = Int64GetDatum(written);
	args[2] = Int64GetDatum(HP_KEY_STEP_BLOCKS);
	hp_key_exec(hp_key_plan(&plan_blocks_after,
							"SELECT min_id, max_id, records FROM ONLY health_pass.audit_block "
							"WHERE min_id OPERATOR(pg_catalog.>) $1 AND min_id OPERATOR(pg_catalog.<=) $2 "
							"ORDER BY min_id LIMIT $3",
							3, types),
				args, SPI_OK_SELECT, 0);
	nblocks = SPI_processed;
	if (nblocks == 0)
	{
		hp_ks.tail_empty = true;
		return false;
	}
	first_id = hp_key_int8(0, 1);
	last_min = hp_key_int8(nblocks - 1, 1);
	last_id = last_min;
	scratch = AllocSetContextCreate(CurrentMemoryContext, "health_pass subject index block",
									ALLOCSET_DEFAULT_SIZES);
	for (uint64 i = 0; i < nblocks; i++)
	{
		bool		isnull;
		Datum		rec = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);

		CHECK_FOR_INTERRUPTS();
		if (!isnull)
			hp_pairs_of_block(&a, hp_key_int8(i, 1), rec, scratch);
		last_id = Max(last_id, hp_key_int8(i, 2));
	}
	MemoryContextDelete(scratch);
	SPI_freetuptable(SPI_tuptable);
	(void) hp_run_write(&a, 0, first_id, last_id);
	hp_key_mark_set(last_min);
	hp_ks.mark = last_min;
	return true;
}

/* Load input i's next page into the merge's memory; false at its end */
static bool
hp_merge_load(HpMergeIn *in)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		args[2];
	bool		isnull;
	bytea	   *b;
	Size		len;

	if (in->next >= in->pages)
		return false;
	args[0] = Int64GetDatum(in->run);
	args[1] = Int32GetDatum(in->next);
	hp_key_exec(hp_key_plan(&plan_page_read,
							"SELECT pairs FROM health_pass.audit_key_page "
							"WHERE run OPERATOR(pg_catalog.=) $1 AND page OPERATOR(pg_catalog.=) $2",
							2, types),
				args, SPI_OK_SELECT, 1);
	if (SPI_processed != 1)
		elog(ERROR, "subject index: page %d of run " INT64_FORMAT " is missing",
			 in->next, in->run);
	b = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	len = VARSIZE_ANY_EXHDR(b);
	if (len == 0 || len % sizeof(HpKeyPair) != 0 || len > HP_KEY_PAGE_PAIRS * sizeof(HpKeyPair))
		elog(ERROR, "subject index: page %d of run " INT64_FORMAT " is malformed",
			 in->next, in->run);
	if (in->p == NULL)
		in->p = MemoryContextAlloc(hp_ks.cxt, HP_KEY_PAGE_PAIRS * sizeof(HpKeyPair));
	memcpy(in->p, VARDATA_ANY(b), len);
	in->n = (int) (len / sizeof(HpKeyPair));
	in->pos = 0;
	in->next++;
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* Start a merge of the oldest HP_KEY_FANIN live runs of the lowest full level */
static bool
hp_merge_start(void)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		args[2];
	int			level;
	int64		first_id = PG_INT64_MAX,
				last_id = PG_INT64_MIN;

	/* what a merge left unfinished is swept later (hp_key_sweep) */
	hp_key_exec(hp_key_plan(&plan_drop_dead,
							"UPDATE health_pass.audit_key_run SET level = -1 "
							"WHERE NOT live AND level OPERATOR(pg_catalog.>=) 0", 0, NULL),
				NULL, SPI_OK_UPDATE, 0);
	args[0] = Int32GetDatum(HP_KEY_FANIN);
	args[1] = Int32GetDatum(HP_KEY_FANIN);
	hp_key_exec(hp_key_plan(&plan_inputs,
							"SELECT run, pages::pg_catalog.int8, first_id, last_id, level::pg_catalog.int8 "
							"FROM health_pass.audit_key_run "
							"WHERE live AND level OPERATOR(pg_catalog.=) "
							"(SELECT level FROM health_pass.audit_key_run WHERE live GROUP BY level "
							" HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>=) $1 ORDER BY level LIMIT 1) "
							"ORDER BY run LIMIT $2", 2, types),
				args, SPI_OK_SELECT, 0);
	if (SPI_processed < HP_KEY_FANIN)
		return false;
	if (hp_ks.cxt == NULL)
		hp_ks.cxt = AllocSetContextCreate(TopMemoryContext, "health_pass subject index merge",
										  ALLOCSET_DEFAULT_SIZES);
	hp_merge_forget();
	level = (int) hp_key_int8(0, 5);
	for (int i = 0; i < HP_KEY_FANIN; i++)
	{
		HpMergeIn  *in = &hp_ks.in[i];

		memset(in, 0, sizeof(*in));
		in->run = hp_key_int8(i, 1);
		in->pages = (int32) hp_key_int8(i, 2);
		first_id = Min(first_id, hp_key_int8(i, 3));
		last_id = Max(last_id, hp_key_int8(i, 4));
	}
	hp_ks.nin = HP_KEY_FANIN;
	SPI_freetuptable(SPI_tuptable);

	/*
	 * pairs of blocks archived away are left out of the merged run: the
	 * oldest block now, read after the inputs were chosen, so a block whose
	 * run is an input is counted in it
	 */
	hp_key_exec(hp_key_plan(&plan_floor,
							"SELECT coalesce(pg_catalog.min(min_id), 0) FROM ONLY health_pass.audit_block",
							0, NULL),
				NULL, SPI_OK_SELECT, 1);
	hp_ks.floor = hp_key_int8(0, 1);
	hp_ks.out = MemoryContextAllocZero(hp_ks.cxt, sizeof(HpRunWriter));
	hp_ks.out->run = hp_key_next_run();
	hp_ks.out_level = level + 1;
	hp_run_row(hp_ks.out->run, hp_ks.out_level, first_id, last_id, 0, 0, false);
	for (int i = 0; i < hp_ks.nin; i++)
		(void) hp_merge_load(&hp_ks.in[i]);
	hp_ks.merging = true;
	return true;
}

/* Move up to HP_KEY_STEP_PAIRS pairs of the merge; at its end swap it in */
static void
hp_merge_step(void)
{
	Oid			types[3] = {INT8OID, INT4OID, INT8OID};
	Datum		args[3];

	for (int moved = 0; moved < HP_KEY_STEP_PAIRS; moved++)
	{
		HpMergeIn  *best = NULL;

		for (int i = 0; i < hp_ks.nin; i++)
		{
			HpMergeIn  *in = &hp_ks.in[i];

			if (in->pos == in->n && !hp_merge_load(in))
				continue;
			if (best == NULL || hp_pair_cmp(&in->p[in->pos], &best->p[best->pos]) < 0)
				best = in;
		}
		if (best == NULL)
		{
			Datum		runs[HP_KEY_FANIN];
			ArrayType  *arr;
			Oid			atypes[1] = {INT8ARRAYOID};

			/* the end: the merged run is live, its inputs are gone */
			hp_run_flush(hp_ks.out);
			args[0] = Int64GetDatum(hp_ks.out->run);
			args[1] = Int32GetDatum(hp_ks.out->page);
			args[2] = Int64GetDatum(hp_ks.out->total);
			hp_key_exec(hp_key_plan(&plan_run_live,
									"UPDATE health_pass.audit_key_run SET live = true, pages = $2, "
									"pairs = $3 WHERE run OPERATOR(pg_catalog.=) $1 AND NOT live",
									3, types),
						args, SPI_OK_UPDATE, 0);
			if (SPI_processed != 1)
				elog(ERROR, "subject index: merged run " INT64_FORMAT " was removed",
					 hp_ks.out->run);
			for (int i = 0; i < hp_ks.nin; i++)
				runs[i] = Int64GetDatum(hp_ks.in[i].run);
			arr = construct_array(runs, hp_ks.nin, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
			/* the inputs leave in this transaction; their pages are swept later */
			hp_key_exec(hp_key_plan(&plan_drop_runs,
									"UPDATE health_pass.audit_key_run SET live = false, level = -1 "
									"WHERE run OPERATOR(pg_catalog.=) ANY ($1) AND live", 1, atypes),
						(Datum[]) {PointerGetDatum(arr)}, SPI_OK_UPDATE, 0);
			if (SPI_processed != (uint64) hp_ks.nin)
				elog(ERROR, "subject index: the inputs of merged run " INT64_FORMAT " changed",
					 hp_ks.out->run);
			hp_merge_forget();
			return;
		}
		if (best->p[best->pos].block >= hp_ks.floor)
			hp_run_put(hp_ks.out, &best->p[best->pos]);
		best->pos++;
	}
}

/*
 * Delete up to HP_KEY_SWEEP_PAGES pages of one dead run (level -1: the
 * inputs of a merge, a merge abandoned), and the run once it has none:
 * bounded, so a merge's swap never deletes a level's pages at once.  False
 * when no run is dead.
 */
static bool
hp_key_sweep(void)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		args[2];
	int64		run;

	hp_key_exec(hp_key_plan(&plan_sweep_pick,
							"SELECT run FROM health_pass.audit_key_run "
							"WHERE level OPERATOR(pg_catalog.=) -1 AND NOT live ORDER BY run LIMIT 1",
							0, NULL),
				NULL, SPI_OK_SELECT, 1);
	if (SPI_processed == 0)
		return false;
	run = hp_key_int8(0, 1);
	args[0] = Int64GetDatum(run);
	args[1] = Int32GetDatum(HP_KEY_SWEEP_PAGES);
	hp_key_exec(hp_key_plan(&plan_sweep_pages,
							"DELETE FROM health_pass.audit_key_page WHERE run OPERATOR(pg_catalog.=) $1 "
							"AND page OPERATOR(pg_catalog.<) ((SELECT pg_catalog.min(page) "
							"FROM health_pass.audit_key_page WHERE run OPERATOR(pg_catalog.=) $1) "
							"OPERATOR(pg_catalog.+) $2)", 2, types),
				args, SPI_OK_DELETE, 0);
	if (SPI_processed == 0)
		hp_key_exec(hp_key_plan(&plan_sweep_run,
								"DELETE FROM health_pass.audit_key_run WHERE run OPERATOR(pg_catalog.=) $1 "
								"AND level OPERATOR(pg_catalog.=) -1", 1, types),
					args, SPI_OK_DELETE, 0);
	return true;
}

typedef enum HpKeyWork
{
	HP_KEY_NONE,
	HP_KEY_LEVEL0,
	HP_KEY_MERGE,
	HP_KEY_SWEEP
} HpKeyWork;

/* Try a lock on an index table without waiting (the writer never waits) */
static bool
hp_key_try_lock(Oid relid, LOCKMODE mode)
{
	return OidIsValid(relid) && ConditionalLockRelationOid(relid, mode);
}

/*
 * One step, in the writer's transaction: the work asked for, or when that
 * has nothing to do, a merge or a sweep that is due.  Nothing waits: the
 * tables are locked conditionally and the mark claimed with SKIP LOCKED;
 * when any is taken by another transaction, nothing is done.  False when
 * nothing was done.
 */
static bool
hp_key_step(HpKeyWork work, int64 written)
{
	HpKeyRels	r;
	bool		did = false;
	int64		mark;

	hp_ks.tail_empty = false;
	if (!hp_key_rels(&r))
	{
		/* an extension older than the index, or none: nothing to keep */
		hp_ks.tail_empty = true;
		return false;
	}
	if (r.page != hp_ks.pagerel)
	{
		/* the extension was made again: start from its tables */
		hp_merge_forget();
		hp_ks.pagerel = r.page;
		hp_ks.mark = -1;
	}
	if (!hp_key_try_lock(r.mark, RowExclusiveLock) ||
		!hp_key_try_lock(r.run, RowExclusiveLock) ||
		!hp_key_try_lock(r.page, RowExclusiveLock) ||
		!hp_key_try_lock(r.page_hi, RowExclusiveLock) ||
		!hp_key_try_lock(hp_extension_relation_oid("audit_block"), AccessShareLock))
		return false;
	SPI_connect();
	hp_ks.tail_empty = false;
	mark = hp_key_mark_claim();
	if (mark >= 0)
	{
		if (work == HP_KEY_LEVEL0)
		{
			hp_ks.checked = GetCurrentTimestamp();
			did = hp_key_level0(mark, written);
			hp_key_count_levels();
		}
		if (!did && work != HP_KEY_SWEEP && (hp_ks.merging || hp_ks.fullest >= HP_KEY_FANIN))
		{
			did = hp_ks.merging || hp_merge_start();
			if (did)
				hp_merge_step();
		}
		if (!did && (work == HP_KEY_SWEEP || hp_ks.dead_pages > 0))
			did = hp_key_sweep();
	}
	hp_key_count_levels();
	SPI_finish();
	return did;
}

/*
 * Called by the audit writer between its batches (writer.c), with the chain
 * head at written: do one step of index work when it is due, in a
 * transaction of its own, as the bootstrap superuser.  busy: the last batch
 * was full, so only work that must not wait (a level with twice
 * HP_KEY_FANIN runs, the tail past HP_KEY_BUSY_LAG, dead pages past
 * HP_KEY_SWEEP_BUSY); short: a short batch, so a level-0 step of at least
 * HP_KEY_SHORT_LAG records, a merge or a sweep; otherwise (the queue is
 * empty) any.  A level-0 step also runs at least once a second (every 10 s
 * while busy) whatever the lag this process remembers: the table's mark is
 * the truth (audit_reindex(), the extension made again).  Returns true when
 * it did work; never throws: a step that fails is logged, the index waits
 * HP_KEY_RETRY_MS (so that is how often it can be logged), and who_read()
 * stays complete meanwhile (it reads the tail).
 */
bool
hp_keyidx_writer_step(int64 written, HpKeyUrgency urgency)
{
	volatile HpKeyWork work = HP_KEY_NONE;
	bool		stale;
	int64		lag;
	volatile bool did = false;
	Oid			save_userid;
	int			save_sec_context;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (RecoveryInProgress() || GetCurrentTimestamp() < hp_ks.retry_after)
		return false;
	lag = hp_ks.mark < 0 ? PG_INT64_MAX : written - hp_ks.mark;
	stale = hp_ks.clamp_pending ||
		TimestampDifferenceExceeds(hp_ks.checked, GetCurrentTimestamp(),
								   urgency == HP_KEY_BUSY ? 10000 : 1000);
	switch (urgency)
	{
		case HP_KEY_BUSY:
			if (hp_ks.fullest >= 2 * HP_KEY_FANIN)
				work = HP_KEY_MERGE;
			else if (lag > HP_KEY_BUSY_LAG || stale)
				work = HP_KEY_LEVEL0;
			else if (hp_ks.dead_pages > HP_KEY_SWEEP_BUSY)
				work = HP_KEY_SWEEP;
			break;
		case HP_KEY_SHORT:
			if (lag >= HP_KEY_SHORT_LAG || stale)
				work = HP_KEY_LEVEL0;
			else if (hp_ks.merging || hp_ks.fullest >= HP_KEY_FANIN)
				work = HP_KEY_MERGE;
			else if (hp_ks.dead_pages > 0)
				work = HP_KEY_SWEEP;
			break;
		default:
			if (lag > 0 || stale)
				work = HP_KEY_LEVEL0;
			else if (hp_ks.merging || hp_ks.fullest >= HP_KEY_FANIN)
				work = HP_KEY_MERGE;
			else if (hp_ks.dead_pages > 0)
				work = HP_KEY_SWEEP;
			break;
	}
	if (work == HP_KEY_NONE)
		return false;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		/* switched inside the transaction, as in hp_writer_xact() */
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING,
							   work == HP_KEY_LEVEL0 ? "indexing the audit log's new blocks"
							   : work == HP_KEY_MERGE ? "merging runs of the audit log's subject index"
							   : "sweeping merged runs of the audit log's subject index");
		hp_ks.clamp_done = false;
		did = hp_key_step(work, written);
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (hp_ks.clamp_done)
			hp_ks.clamp_pending = false;
		if (hp_ks.tail_empty)
			hp_ks.mark = written;	/* nothing after the mark: wait for new records */
		if (hp_ks.warned)
			ereport(LOG, (errmsg("health_pass: the audit log's subject index is kept again")));
		hp_ks.warned = false;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		hp_merge_forget();
		hp_ks.mark = -1;
		/* at most once per HP_KEY_RETRY_MS: each failure is logged */
		ereport(WARNING,
					(errmsg("health_pass: the audit log's subject index was not updated: %s",
							edata->message),
					 errdetail("who_read() stays complete: it reads the blocks the index does not cover yet, more slowly."),
					 errhint("It is tried again every %d seconds.", HP_KEY_RETRY_MS / 1000)));
		hp_ks.warned = true;
		hp_ks.retry_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HP_KEY_RETRY_MS);
		FreeErrorData(edata);
		RESUME_INTERRUPTS();
		did = true;
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	MemoryContextSwitchTo(oldcxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return did;
}

/*
 * Called by the writer in the transaction that reads the chain head, before
 * it writes any block (writer.c): a mark past the head (a superuser deleted
 * the newest blocks; the chain goes on from before them, writing their ids
 * again) is brought back to the head now, in that transaction, so no block
 * the writer writes can have a min_id at or behind a mark that does not
 * cover it.  Never waits and never fails the head's load: when another
 * transaction holds the mark's table or row, the clamp is left pending,
 * logged, and done by the first level-0 step that can claim the mark (to
 * the head of then, not of that step: the blocks written meanwhile are after
 * it).  Until then who_read() may miss those blocks; the writer itself does
 * not stop for the index.
 */
void
hp_keyidx_clamp(int64 head)
{
	HpKeyRels	r;
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(head)};
	Oid			one = hp_extension_relation_oid("audit_key_mark_one");
	int64		mark;

	hp_ks.mark = -1;
	if (!hp_key_rels(&r))
		return;
	hp_ks.clamp_pending = true;
	hp_ks.clamp_head = head;
	if (!hp_key_try_lock(r.mark, RowExclusiveLock) ||
		(OidIsValid(one) && !hp_key_try_lock(one, RowExclusiveLock)))
	{
		ereport(WARNING,
				(errmsg("health_pass: the subject index's mark is locked by another transaction"),
				 errdetail("The mark is brought back to the audit chain's head (" INT64_FORMAT ") by the first index step that can take it; until then who_read() may miss records written meanwhile.",
						   head)));
		return;
	}
	SPI_connect();
	hp_key_exec(hp_key_plan(&plan_clamp_read,
							"SELECT mark FROM health_pass.audit_key_mark", 0, NULL),
				NULL, SPI_OK_SELECT, 0);
	mark = SPI_processed == 1 ? hp_key_int8(0, 1) : -1;
	if (mark >= 0 && mark <= head)
		hp_ks.clamp_pending = false;
	else if (mark > head)
	{
		hp_key_exec(hp_key_plan(&plan_clamp_claim,
								"SELECT mark FROM health_pass.audit_key_mark "
								"WHERE mark OPERATOR(pg_catalog.>) $1 FOR UPDATE SKIP LOCKED", 1, types),
					args, SPI_OK_SELECT, 0);
		if (SPI_processed == 1)
		{
			hp_key_mark_set(head);
			hp_ks.clamp_pending = false;
		}
		else
			ereport(WARNING,
					(errmsg("health_pass: the subject index's mark is locked by another transaction"),
					 errdetail("The mark is brought back to the audit chain's head (" INT64_FORMAT ") by the first index step that can take it; until then who_read() may miss records written meanwhile.",
							   head)));
	}
	SPI_finish();
}

/* ---- who_read()'s side ---- */

static int
hp_int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/* The first index in p[0..n) whose key is >= key */
static int
hp_pairs_lower(const HpKeyPair *p, int n, int64 key)
{
	int			lo = 0,
				hi = n;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (p[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The blocks the subject index says may hold one of keys[0..nkeys), under
 * snap: their min_ids, sorted and distinct, in *blocks (palloc'd), their
 * number returned; *mark is the min_id of the last block the index covers: blocks
 * with a greater min_id are the caller's to read.  Without the index's
 * tables (an extension not yet updated), no blocks and a mark of 0.
 */
int
hp_keyidx_lookup(Snapshot snap, const int64 *keys, int nkeys, int64 **blocks, int64 *mark)
{
	HpKeyRels	r;
	Relation	markrel,
				runrel,
				pagerel,
				hirel;
	TableScanDesc scan;
	HeapTuple	tup;
	int64	   *runs = NULL;
	int			nruns = 0,
				caprun = 0;
	int64	   *found = NULL;
	int			nfound = 0,
				capfound = 0;

	*mark = 0;
	*blocks = NULL;
	if (!hp_key_rels(&r))
		return 0;
	markrel = table_open(r.mark, AccessShareLock);
	scan = table_beginscan(markrel, snap, 0, NULL);
	{
		int			rows = 0;

		while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			bool		isnull;
			Datum		d = heap_getattr(tup, 1, RelationGetDescr(markrel), &isnull);

			rows++;
			if (!isnull)
				*mark = DatumGetInt64(d);
		}
		table_endscan(scan);
		table_close(markrel, AccessShareLock);
		/* a mark table a superuser changed: trust no runs, read every block */
		if (rows != 1)
		{
			*mark = 0;
			return 0;
		}
	}

	runrel = table_open(r.run, AccessShareLock);
	scan = table_beginscan(runrel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull,
					livenull;
		Datum		run = heap_getattr(tup, 1, RelationGetDescr(runrel), &isnull);
		Datum		live = heap_getattr(tup, 7, RelationGetDescr(runrel), &livenull);

		if (isnull || livenull || !DatumGetBool(live))
			continue;
		if (nruns == caprun)
		{
			caprun = Max(32, caprun * 2);
			runs = runs ? repalloc(runs, caprun * sizeof(int64)) : palloc(caprun * sizeof(int64));
		}
		runs[nruns++] = DatumGetInt64(run);
	}
	table_endscan(scan);
	table_close(runrel, AccessShareLock);

	pagerel = table_open(r.page, AccessShareLock);
	hirel = index_open(r.page_hi, AccessShareLock);
	for (int i = 0; i < nruns; i++)
		for (int k = 0; k < nkeys; k++)
		{
			ScanKeyData sk[2];
			SysScanDesc ss;

			CHECK_FOR_INTERRUPTS();
			ScanKeyInit(&sk[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(runs[i]));
			ScanKeyInit(&sk[1], 4, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(keys[k]));
			ss = systable_beginscan_ordered(pagerel, hirel, snap, 2, sk);
			while ((tup = systable_getnext_ordered(ss, ForwardScanDirection)) != NULL)
			{
				bool		n1,
							n2,
							n3;
				int64		lo = DatumGetInt64(heap_getattr(tup, 3, RelationGetDescr(pagerel), &n1));
				int64		hi = DatumGetInt64(heap_getattr(tup, 4, RelationGetDescr(pagerel), &n2));
				Datum		pd = heap_getattr(tup, 5, RelationGetDescr(pagerel), &n3);
				bytea	   *b;
				const HpKeyPair *p;
				int			np,
							j;

				if (n1 || n2 || n3)
					elog(ERROR, "subject index: a page of run " INT64_FORMAT " has a NULL column",
						 runs[i]);
				if (lo > keys[k])
					break;
				b = DatumGetByteaPP(pd);
				if (VARSIZE_ANY_EXHDR(b) % sizeof(HpKeyPair) != 0)
					elog(ERROR, "subject index: a page of run " INT64_FORMAT " is malformed", runs[i]);
				/* the pairs are not aligned in the tuple: copy them */
				np = (int) (VARSIZE_ANY_EXHDR(b) / sizeof(HpKeyPair));
				p = palloc(np * sizeof(HpKeyPair));
				memcpy((void *) p, VARDATA_ANY(b), np * sizeof(HpKeyPair));
				for (j = hp_pairs_lower(p, np, keys[k]); j < np && p[j].key == keys[k]; j++)
				{
					if (nfound == capfound)
					{
						capfound = Max(64, capfound * 2);
						found = found ? repalloc(found, capfound * sizeof(int64))
							: palloc(capfound * sizeof(int64));
					}
					found[nfound++] = p[j].block;
				}
				pfree((void *) p);
				if (hi > keys[k])
					break;
			}
			systable_endscan_ordered(ss);
		}
	index_close(hirel, AccessShareLock);
	table_close(pagerel, AccessShareLock);

	if (nfound > 1)
	{
		int			m = 1;

		qsort(found, nfound, sizeof(int64), hp_int64_cmp);
		for (int i = 1; i < nfound; i++)
			if (found[i] != found[m - 1])
				found[m++] = found[i];
		nfound = m;
	}
	*blocks = found;
	return nfound;
}

/* ---- superusers' changes to audit_block, and the index's own functions ---- */

PG_FUNCTION_INFO_V1(hp_audit_key_patch);

/*
 * _audit_key_patch(blocks bigint[], updated boolean) → bigint: called by
 * audit_block's statement triggers after a superuser's INSERT (updated
 * false) or UPDATE (true) with the min_ids of the rows written: indexes them
 * all, from their records, as level-0 runs of at most HP_KEY_PATCH_PAIRS
 * pairs; returns the pairs added.  Whatever the mark: a block written behind
 * it would otherwise never be found, one after it is indexed twice (the
 * duplicate pairs merge away).  Reads the blocks HP_KEY_STEP_BLOCKS at a
 * time, each batch's memory freed before the next.
 */
Datum
hp_audit_key_patch(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	HpKeyRels	r;
	Datum	   *ids;
	bool	   *nulls;
	int			nids;
	int64		added = 0;
	HpPairs		a = {0};
	int64		first_id = PG_INT64_MAX,
				last_id = PG_INT64_MIN;
	Oid			types[1] = {INT8ARRAYOID};
	int			kept = 0;
	MemoryContext chunkcxt;
	int			nest;

	hp_audit_refuse_unless_superuser("_audit_key_patch()");
	if (!hp_key_rels(&r))
		PG_RETURN_INT64(0);
	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &ids, &nulls, &nids);
	for (int i = 0; i < nids; i++)
		if (!nulls[i])
			ids[kept++] = ids[i];

	/*
	 * The triggers that call it pin search_path (as the writer does for its
	 * steps); a superuser calling it himself gets it pinned too: the plans
	 * are kept, and a plan is made again under the search_path of its use
	 */
	nest = hp_search_path_pin();
	SPI_connect();
	chunkcxt = AllocSetContextCreate(CurrentMemoryContext, "health_pass subject index patch",
									 ALLOCSET_DEFAULT_SIZES);
	for (int start = 0; start < kept; start += HP_KEY_STEP_BLOCKS)
	{
		int			n = Min(kept - start, HP_KEY_STEP_BLOCKS);
		ArrayType  *some = construct_array(ids + start, n, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE);

		hp_key_exec(hp_key_plan(&plan_blocks_by_id,
								"SELECT min_id, max_id, records FROM ONLY health_pass.audit_block "
								"WHERE min_id OPERATOR(pg_catalog.=) ANY ($1)", 1, types),
					(Datum[]) {PointerGetDatum(some)}, SPI_OK_SELECT, 0);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		rec = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);

			CHECK_FOR_INTERRUPTS();
			first_id = Min(first_id, hp_key_int8(i, 1));
			last_id = Max(last_id, hp_key_int8(i, 2));
			if (!isnull)
				hp_pairs_of_block(&a, hp_key_int8(i, 1), rec, chunkcxt);
		}
		SPI_freetuptable(SPI_tuptable);
		pfree(some);
		if (a.n >= HP_KEY_PATCH_PAIRS || start + n >= kept)
		{
			if (a.n > 0)
				added += hp_run_write(&a, 0, first_id, last_id);
			a.n = 0;
			first_id = PG_INT64_MAX;
			last_id = PG_INT64_MIN;
		}
	}
	MemoryContextDelete(chunkcxt);
	SPI_finish();
	hp_search_path_restore(nest);
	PG_RETURN_INT64(added);
}
