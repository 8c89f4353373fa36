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
 *    - DROP DATABASE and ALTER DATABASE RENAME first stop that database's
 *      audit writer, which would otherwise count as a session in it, but
 *      only once every check PostgreSQL makes before counting sessions
 *      passes: a command that fails leaves the writer alone;
 *    - DDL that would read a protected table around the gate, and commands
 *      that would lock the audit log against its writer (ALTER TABLE of it
 *      among them), are refused to non-superusers (ddl.c).
 */
#include "postgres.h"

#include "access/xact.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_subscription.h"
#include "access/twophase.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/plancat.h"
#include "optimizer/planner.h"
#include "replication/slot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "access/hp_access.h"

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

		/*
		 * No probe of the index's actual first and last values: when a
		 * range condition falls past the histogram's ends, the planner reads
		 * them from a btree index (get_actual_variable_range(), as the
		 * reader, past the gate), and the cost of "id > N" then told the
		 * live maximum of id to any reader.  PostgreSQL skips the probe for
		 * a hypothetical index; the flag changes nothing else for a btree
		 * (only GIN's and BRIN's cost functions read it), and the executor
		 * never sees it.
		 */
		if (index->relam == BTREE_AM_OID)
			index->hypothetical = true;
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

/*
 * Does some session other than this one and the audit writer use database
 * dbid, or a prepared transaction?  Waits up to 5 s for such sessions to
 * end, as PostgreSQL does before it gives up (autovacuum workers do not
 * count: PostgreSQL stops them).  With force, PostgreSQL terminates them
 * instead, which needs the right to signal each: true when one cannot be.
 */
/*
 * CREATEDB as ALTER DATABASE ... RENAME checks it (superuser, or rolcreatedb
 * of the current user).  PostgreSQL's have_createdb_privilege() is exported
 * only from 15.19 on; this builds against every 15.x.
 */
static bool
hp_have_createdb_privilege(void)
{
	HeapTuple	tup;
	bool		result = false;

	if (superuser())
		return true;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_authid) GETSTRUCT(tup))->rolcreatedb;
		ReleaseSysCache(tup);
	}
	return result;
}

static bool
hp_db_in_use(Oid dbid, int writer_pid, bool force)
{
	for (int tries = 0; tries < 50; tries++)
	{
		int			n;
		bool		busy = false;

		CHECK_FOR_INTERRUPTS();
		pgstat_clear_backend_activity_snapshot();
		n = pgstat_fetch_stat_numbackends();
		for (int i = 1; i <= n && !busy; i++)
		{
			LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);
			PgBackendStatus *be = l ? &l->backendStatus : NULL;

			if (be == NULL || be->st_databaseid != dbid || be->st_procpid == MyProcPid ||
				be->st_procpid == writer_pid || be->st_procpid == 0 ||
				be->st_backendType == B_AUTOVAC_WORKER)
				continue;
			/* TerminateOtherDBBackends' checks, for each session */
			if (!force ||
				(superuser_arg(be->st_userid) && !superuser()) ||
				(!has_privs_of_role(GetUserId(), be->st_userid) &&
				 !has_privs_of_role(GetUserId(), ROLE_PG_SIGNAL_BACKEND)))
				busy = true;
		}
		pgstat_clear_backend_activity_snapshot();
		if (!busy)
			break;
		if (force || tries == 49)
			return true;
		pg_usleep(100 * 1000L);
	}

	/* prepared transactions keep a database in use, with or without force */
	if (max_prepared_xacts > 0)
	{
		bool		isnull;
		int64		prepared;
		int			nest;

		/*
		 * Under a pinned search_path, every name qualified: an =(oid, oid)
		 * of the caller's schema made the count 0, and the writer was
		 * stopped for a DROP DATABASE that then failed
		 */
		nest = hp_search_path_pin();
		SPI_connect();
		if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_xacts p, "
								  "pg_catalog.pg_database d WHERE d.oid OPERATOR(pg_catalog.=) $1 "
								  "AND p.database OPERATOR(pg_catalog.=) d.datname",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(dbid)},
								  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not count the prepared transactions of database %u", dbid);
		prepared = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		hp_search_path_restore(nest);
		if (prepared > 0)
			return true;
	}
	return false;
}

/*
 * Would this DROP DATABASE or ALTER DATABASE ... RENAME of dbid succeed once
 * the audit writer is gone?  PostgreSQL counts the writer as a session and
 * refuses, so the writer must be stopped first, but only when every other
 * check PostgreSQL makes (src/backend/commands/dbcommands.c) passes: else a
 * database owner without CREATEDB, or one whose command fails on a name,
 * a template or another session, could stop the writer at will.
 */
static bool
hp_db_command_can_succeed(Node *node, Oid dbid, bool toplevel)
{
	HpQueue    *q = hp_queues ? hp_queue_for_database(dbid, false) : NULL;
	HeapTuple	tup;
	bool		istemplate;
	int			writer_pid = 0;
	bool		force = false;

	if (q == NULL)
		return false;			/* no writer to stop */
	/* DROP DATABASE runs only at top level, outside a transaction block */
	if (IsA(node, DropdbStmt) && (!toplevel || IsTransactionBlock() || IsSubTransaction()))
		return false;
	LWLockAcquire(q->lock, LW_SHARED);
	writer_pid = q->writer_pid;
	LWLockRelease(q->lock);
	if (writer_pid == 0)
		return false;
	if (!pg_database_ownercheck(dbid, GetUserId()) || dbid == MyDatabaseId)
		return false;
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dbid));
	if (!HeapTupleIsValid(tup))
		return false;
	istemplate = ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
	ReleaseSysCache(tup);

	if (IsA(node, RenameStmt))
	{
		RenameStmt *rs = (RenameStmt *) node;

		if (!hp_have_createdb_privilege() ||
			OidIsValid(get_database_oid(rs->newname, true)))
			return false;
	}
	else
	{
		DropdbStmt *ds = (DropdbStmt *) node;
		ListCell   *lc;
		int			nslots,
					nactive;

		if (istemplate)
			return false;
		foreach(lc, ds->options)
		{
			DefElem    *opt = lfirst_node(DefElem, lc);

			if (strcmp(opt->defname, "force") != 0)
				return false;
			force = true;
		}
		if ((ReplicationSlotsCountDBSlots(dbid, &nslots, &nactive) && nactive > 0) ||
			CountDBSubscriptions(dbid) > 0)
			return false;
	}
	return !hp_db_in_use(dbid, writer_pid, force);
}

/* The utility hook's work: COPY TO through the executor; guard the audit log */
static void
hp_utility_guarded(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
		   ProcessUtilityContext context, ParamListInfo params,
		   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *node = pstmt->utilityStmt;
	Oid			dropped = InvalidOid;
	bool		audit_superusers_before = hp_audit_superusers;
	List	   *fks_before;

	/* DDL that would read a protected table around the gate (ddl.c) */
	hp_ddl_check(pstmt);
	fks_before = hp_ddl_fk_before(node);

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
	else if (IsA(node, AlterTableStmt))
	{
		AlterTableStmt *at = (AlterTableStmt *) node;
		Oid			relid = RangeVarGetRelid(at->relation, NoLock, true);

		if (OidIsValid(relid) && !superuser())
			hp_guard_subject_statistics(at, relid);
	}
	else if (IsA(node, DropdbStmt) ||
			 (IsA(node, RenameStmt) && ((RenameStmt *) node)->renameType == OBJECT_DATABASE))
	{
		const char *name = IsA(node, DropdbStmt) ? ((DropdbStmt *) node)->dbname :
		((RenameStmt *) node)->subname;
		Oid			dbid = get_database_oid(name, true);

		if (OidIsValid(dbid) &&
			hp_db_command_can_succeed(node, dbid, context == PROCESS_UTILITY_TOPLEVEL))
			hp_writer_stop(dbid);
		/* once dropped, its queue is freed, whether a writer ran or not */
		if (IsA(node, DropdbStmt))
			dropped = dbid;
	}

	if (prev_utility)
		prev_utility(pstmt, queryString, readOnlyTree, context, params,
					 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
	hp_ddl_fk_after(node, fks_before);
	hp_note_audit_superusers(node, audit_superusers_before);
	/* quota counts exist only in a database that had a queue */
	if (OidIsValid(dropped) && hp_queues && hp_queue_for_database(dropped, false))
	{
		hp_quota_forget(dropped);
		hp_queue_forget(dropped);
	}
}

/*
 * ProcessUtility_hook, the only one: the statement runs guarded (above),
 * counted as nested for audit_sync (send.c); a client's statement other than
 * a transaction command ends with its records durable under audit_sync
 * (COMMIT waits in the commit itself, ROLLBACK makes nothing visible)
 */
static void
hp_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
		   ProcessUtilityContext context, ParamListInfo params,
		   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (context == PROCESS_UTILITY_TOPLEVEL)
		hp_statement_count++;
	hp_send_utility_enter();
	PG_TRY();
	{
		hp_utility_guarded(pstmt, queryString, readOnlyTree, context, params,
						   queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		hp_send_utility_leave();
	}
	PG_END_TRY();
	if (context == PROCESS_UTILITY_TOPLEVEL && !IsA(pstmt->utilityStmt, TransactionStmt))
		hp_send_sync();
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
}
