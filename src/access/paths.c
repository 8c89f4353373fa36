/*
 * paths.c
 *    Index conditions run inside the index scan, before the gate (gate.c)
 *    has seen the row.  So an index path over a protected table may use only
 *    conditions that are leakproof, the rule PostgreSQL applies to tables
 *    under row-level security (restriction_is_securely_promotable): after
 *    the planner built a relation's paths, set_rel_pathlist_hook removes the
 *    index and bitmap paths of a protected table whose index conditions or
 *    ORDER BY operators pass a column to a function that is not LEAKPROOF
 *    (numeric and jsonb comparisons, for example).  The condition then runs
 *    as a filter after the gate.  Removing a path can leave the relation
 *    without the paths it pruned as dominated, so then a sequential scan is
 *    added again and the index paths are built once more with the leaky
 *    conditions hidden from the planner (they stay in baserestrictinfo,
 *    and so in the plan, as filters).
 *
 *    The paths are removed for every role, superusers included: a plan
 *    cached for one role can be executed after SET ROLE by another.
 */
#include "postgres.h"

#include "catalog/pg_am_d.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/clauses.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "utils/lsyscache.h"

#include "access/hp_access.h"

static set_rel_pathlist_hook_type prev_pathlist = NULL;

/* Is this restriction one that passes a column to leaky code? */
static bool
hp_rinfo_leaky(RestrictInfo *rinfo)
{
	return contain_leaked_vars((Node *) rinfo->clause) ||
		hp_runs_untrusted_leakproof((Node *) rinfo->clause);
}

/*
 * Is this index condition unsafe before the gate?  Passing a column to leaky
 * code always is.  A leaky call without a column (person <= my_stable_fn())
 * is evaluated once per scan as a runtime key, except where the condition
 * is rechecked row by row: lossy bitmap pages, BRIN, GIN, GiST, hash.  There
 * it runs only on rows the conditions before it accepted, and so counts them.
 */
static bool
hp_cond_leaky(RestrictInfo *rinfo, bool rechecked)
{
	return hp_rinfo_leaky(rinfo) ||
		(rechecked && hp_runs_leaky_code((Node *) rinfo->clause));
}

/* Does this path run a condition that is not leakproof inside an index? */
static bool
hp_path_leaky_in(Path *path, bool lossy)
{
	ListCell   *lc;

	switch (nodeTag(path))
	{
		case T_IndexPath:		/* index and index-only scans */
			{
				IndexPath  *ip = (IndexPath *) path;
				bool		rechecked = lossy || ip->indexinfo->relam != BTREE_AM_OID;

				foreach(lc, ip->indexclauses)
				{
					IndexClause *ic = lfirst_node(IndexClause, lc);
					ListCell   *lq;

					if (hp_cond_leaky(ic->rinfo, rechecked))
						return true;
					foreach(lq, ic->indexquals)
						if (hp_cond_leaky(lfirst_node(RestrictInfo, lq), rechecked))
							return true;
				}
				return contain_leaked_vars((Node *) ip->indexorderbys) ||
					(rechecked && hp_runs_leaky_code((Node *) ip->indexorderbys));
			}
		case T_BitmapHeapPath:
			/* a bitmap page may be lossy, then every row on it is rechecked */
			return hp_path_leaky_in(((BitmapHeapPath *) path)->bitmapqual, true);
		case T_BitmapAndPath:
			foreach(lc, ((BitmapAndPath *) path)->bitmapquals)
				if (hp_path_leaky_in(lfirst(lc), lossy))
					return true;
			return false;
		case T_BitmapOrPath:
			foreach(lc, ((BitmapOrPath *) path)->bitmapquals)
				if (hp_path_leaky_in(lfirst(lc), lossy))
					return true;
			return false;
		default:
			return false;
	}
}

static bool
hp_path_leaky(Path *path)
{
	return hp_path_leaky_in(path, false);
}

/* Drop the paths of list that use leaky index conditions; count them */
static List *
hp_drop_leaky(List *paths, int *dropped)
{
	ListCell   *lc;

	foreach(lc, paths)
		if (hp_path_leaky(lfirst(lc)))
		{
			paths = foreach_delete_current(paths, lc);
			(*dropped)++;
		}
	return paths;
}

/* The leakproof members of a list of RestrictInfos */
static List *
hp_leakproof_rinfos(List *rinfos)
{
	List	   *out = NIL;
	ListCell   *lc;

	foreach(lc, rinfos)
		if (!hp_cond_leaky(lfirst_node(RestrictInfo, lc), true))
			out = lappend(out, lfirst(lc));
	return out;
}

/*
 * Build the relation's index paths again, the leaky restrictions hidden
 * from the planner for the time it takes.
 */
static void
hp_index_paths_without_leaks(PlannerInfo *root, RelOptInfo *rel)
{
	List	   *saved_restrict = rel->baserestrictinfo;
	List	   *saved_index = NIL;
	ListCell   *lc;

	foreach(lc, rel->indexlist)
	{
		IndexOptInfo *index = lfirst(lc);

		saved_index = lappend(saved_index, index->indrestrictinfo);
		index->indrestrictinfo = hp_leakproof_rinfos(index->indrestrictinfo);
	}
	rel->baserestrictinfo = hp_leakproof_rinfos(saved_restrict);
	PG_TRY();
	{
		create_index_paths(root, rel);
	}
	PG_FINALLY();
	{
		ListCell   *ls;

		rel->baserestrictinfo = saved_restrict;
		forboth(lc, rel->indexlist, ls, saved_index)
			((IndexOptInfo *) lfirst(lc))->indrestrictinfo = lfirst(ls);
	}
	PG_END_TRY();
}

/* set_rel_pathlist_hook */
static void
hp_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	int			dropped = 0;

	if (prev_pathlist)
		prev_pathlist(root, rel, rti, rte);
	if (rte->rtekind != RTE_RELATION || !hp_any_protected() || hp_protected_attnum(rte->relid) <= 0)
		return;
	rel->pathlist = hp_drop_leaky(rel->pathlist, &dropped);
	rel->partial_pathlist = hp_drop_leaky(rel->partial_pathlist, &dropped);
	if (dropped == 0)
		return;
	/* what the dropped paths pruned as dominated: a plain scan, and index
	 * paths on the leakproof conditions */
	add_path(rel, create_seqscan_path(root, rel, rel->lateral_relids, 0));
	hp_index_paths_without_leaks(root, rel);
	rel->pathlist = hp_drop_leaky(rel->pathlist, &dropped);
	/* a dropped path may have pruned the plain scan added above */
	if (rel->pathlist == NIL)
		rel->pathlist = list_make1(create_seqscan_path(root, rel, rel->lateral_relids, 0));
	if (rel->pathlist == NIL)
		elog(ERROR, "health_pass left protected table \"%s\" without a path",
			 get_rel_name(rte->relid));
}

/* Install the hook; called from _PG_init when preloaded */
void
hp_paths_init(void)
{
	prev_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = hp_set_rel_pathlist;
}
