/*
 * plan.c
 *    Planner and utility hooks that keep every read of a protected table on
 *    a path the gate (gate.c) can see:
 *    - no parallel plan for a query over a protected table (workers would
 *      read rows outside this backend's statement);
 *    - no index-only scan of an index lacking the subject column (the gate
 *      needs the subject of every row);
 *    - COPY tbl TO becomes COPY (SELECT ... FROM ONLY tbl) TO, since plain
 *      COPY TO reads the heap without the executor (for every role: a
 *      superuser's COPY is audited too);
 *    - ALTER TABLE of health_pass.audit_log (which could disable its guard
 *      triggers) is refused to every role but superusers;
 *    - DROP DATABASE and ALTER DATABASE RENAME first stop that database's
 *      audit writer, which would otherwise count as a session in it;
 *    - DDL that would read a protected table around the gate is refused
 *      to non-superusers (ddl.c).
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/plancat.h"
#include "optimizer/planner.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "hp.h"
#include "hp_access.h"

static planner_hook_type prev_planner = NULL;
static get_relation_info_hook_type prev_relinfo = NULL;
static ProcessUtility_hook_type prev_utility = NULL;

/* Walker: does this query tree read a protected table? */
static bool
hp_reads_protected(Node *node, void *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->rtekind == RTE_RELATION && hp_protected_attnum(rte->relid) > 0;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, hp_reads_protected, ctx,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, hp_reads_protected, ctx);
}

/* planner_hook: plan queries over protected tables without parallelism */
static PlannedStmt *
hp_planner(Query *parse, const char *query_string, int cursorOptions,
		   ParamListInfo boundParams)
{
	if ((cursorOptions & CURSOR_OPT_PARALLEL_OK) && hp_any_protected() &&
		hp_reads_protected((Node *) parse, NULL))
		cursorOptions &= ~CURSOR_OPT_PARALLEL_OK;
	if (prev_planner)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

/* get_relation_info_hook: no index-only scans that hide the subject */
static void
hp_relation_info(PlannerInfo *root, Oid relid, bool inhparent, RelOptInfo *rel)
{
	AttrNumber	attnum;
	ListCell   *lc;

	if (prev_relinfo)
		prev_relinfo(root, relid, inhparent, rel);
	if (!hp_any_protected() || (attnum = hp_protected_attnum(relid)) <= 0)
		return;
	/* a protected table hidden from hp_planner (an inlined SQL function)
	 * still gets no partial paths of its own */
	rel->rel_parallel_workers = 0;
	foreach(lc, rel->indexlist)
	{
		IndexOptInfo *index = lfirst(lc);
		bool		has_subject = false;

		for (int i = 0; i < index->ncolumns; i++)
			if (index->indexkeys[i] == attnum)
				has_subject = true;
		if (!has_subject)
			for (int i = 0; i < index->ncolumns; i++)
				index->canreturn[i] = false;
	}
}

/* Turn COPY tbl [(cols)] TO into COPY (SELECT cols FROM ONLY tbl) TO */
static void
hp_copy_to_query(CopyStmt *cs, Relation rel)
{
	SelectStmt *select = makeNode(SelectStmt);
	RangeVar   *from;
	List	   *targets = NIL;
	ListCell   *lc;

	from = makeRangeVar(get_namespace_name(RelationGetNamespace(rel)),
						pstrdup(RelationGetRelationName(rel)), -1);
	from->inh = false;
	if (cs->attlist == NIL)
	{
		ColumnRef  *cr = makeNode(ColumnRef);
		ResTarget  *rt = makeNode(ResTarget);

		cr->fields = list_make1(makeNode(A_Star));
		cr->location = -1;
		rt->val = (Node *) cr;
		rt->location = -1;
		targets = list_make1(rt);
	}
	foreach(lc, cs->attlist)
	{
		ColumnRef  *cr = makeNode(ColumnRef);
		ResTarget  *rt = makeNode(ResTarget);

		cr->fields = list_make1(makeString(pstrdup(strVal(lfirst(lc)))));
		cr->location = -1;
		rt->val = (Node *) cr;
		rt->location = -1;
		targets = lappend(targets, rt);
	}
	select->targetList = targets;
	select->fromClause = list_make1(from);
	cs->query = (Node *) select;
	cs->relation = NULL;
	cs->attlist = NIL;
}

/*
 * Refuse ALTER TABLE ... ALTER COLUMN ... SET STATISTICS on the subject
 * column of a protected table: protect() set it to 0 so that ANALYZE keeps
 * subject values out of pg_stats, and the table's owner may not undo that.
 */
static void
hp_guard_subject_statistics(AlterTableStmt *at, Oid relid)
{
	AttrNumber	subject;
	ListCell   *lc;

	if (!hp_any_protected())	/* also loads the cache */
		return;
	subject = hp_protected_attnum(relid);
	if (subject <= 0)
		return;
	foreach(lc, at->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		AttrNumber	attnum;

		if (cmd->subtype != AT_SetStatistics)
			continue;
		attnum = cmd->name ? get_attnum(relid, cmd->name) : cmd->num;
		if (attnum == subject)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser may change the statistics target of the subject column of protected table \"%s\"",
							get_rel_name(relid)),
					 errdetail("health_pass.protect() keeps subject values out of pg_statistic, where pg_stats would show them.")));
	}
}

/* ProcessUtility_hook: COPY TO through the executor; guard the audit log */
static void
hp_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
		   ProcessUtilityContext context, ParamListInfo params,
		   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *node = pstmt->utilityStmt;
	Oid			dropped = InvalidOid;

	/* DDL that would read a protected table around the gate (ddl.c) */
	hp_ddl_check(pstmt);

	if (IsA(node, CopyStmt) && !((CopyStmt *) node)->is_from &&
		((CopyStmt *) node)->relation && hp_any_protected())
	{
		Oid			relid = RangeVarGetRelid(((CopyStmt *) node)->relation,
											 AccessShareLock, true);

		/* a partitioned table is left to COPY, which refuses it */
		if (OidIsValid(relid) && hp_protected_attnum(relid) > 0 &&
			get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		{
			Relation	rel = relation_open(relid, NoLock);

			pstmt = copyObject(pstmt);
			readOnlyTree = false;
			hp_copy_to_query((CopyStmt *) pstmt->utilityStmt, rel);
			relation_close(rel, NoLock);
		}
	}
	else if (IsA(node, AlterTableStmt) && !superuser())
	{
		AlterTableStmt *at = (AlterTableStmt *) node;
		Oid			relid = RangeVarGetRelid(at->relation, NoLock, true);

		if (OidIsValid(relid) && (relid == hp_relation_oid("audit_log") ||
								  relid == hp_relation_oid("audit_block")))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser may alter health_pass.%s", get_rel_name(relid))));
		if (OidIsValid(relid))
			hp_guard_subject_statistics(at, relid);
	}
	else if (IsA(node, DropdbStmt) ||
			 (IsA(node, RenameStmt) && ((RenameStmt *) node)->renameType == OBJECT_DATABASE))
	{
		const char *name = IsA(node, DropdbStmt) ? ((DropdbStmt *) node)->dbname :
		((RenameStmt *) node)->subname;
		Oid			dbid = get_database_oid(name, true);

		if (OidIsValid(dbid) && pg_database_ownercheck(dbid, GetUserId()))
		{
			hp_writer_stop(dbid);
			if (IsA(node, DropdbStmt))
				dropped = dbid;
		}
	}

	if (prev_utility)
		prev_utility(pstmt, queryString, readOnlyTree, context, params,
					 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
	hp_note_audit_superusers(node);
	if (OidIsValid(dropped))
		hp_queue_forget(dropped);
}

/* Install the hooks; called from _PG_init when preloaded */
void
hp_plan_init(void)
{
	prev_planner = planner_hook;
	planner_hook = hp_planner;
	prev_relinfo = get_relation_info_hook;
	get_relation_info_hook = hp_relation_info;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = hp_utility;
	hp_ddl_init();
}
