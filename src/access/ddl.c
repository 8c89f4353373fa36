/*
 * ddl.c
 *    DDL on protected tables, and the row security they are put under.
 *
 *    - hp_ddl_check() (called from the utility hook in plan.c) refuses to
 *      every role but superusers, the table's owner included, DDL that would
 *      run expressions over a protected table's existing rows before the
 *      gate sees them (CHECK constraints and their validation, column type
 *      changes, stored generated columns, volatile defaults, expression and
 *      partial indexes, expression statistics, and the rebuilds of such
 *      indexes), code that would see rows other roles change (triggers,
 *      rules, policies), changes to partitioning and inheritance that would
 *      move a protected table out of protection or under an unprotected
 *      parent, and switching off row security.  Each refusal is audited
 *      (outcome denied, subject NULL) before the error; the record is in
 *      shared memory and survives the rollback.  docs/design/ddl.md lists
 *      what is refused and what is allowed, and why.
 *    - hp_ddl_check() also refuses to non-superusers every command that
 *      would lock the audit log (audit_block, its indexes and TOAST, the
 *      audit_log view) in a mode its writer's ROW EXCLUSIVE conflicts with,
 *      or rename, move or drop it: held, or queued behind another session's
 *      lock, such a lock stalls the writer and every audited read with it
 *      (docs/design/writer.md).  These refusals are audited the same way.
 *    - protect() enables and forces row security on a protected table so
 *      that pg_stats, pg_stats_ext and pg_stats_ext_exprs hide its values
 *      from every role subject to it; hp_rls_policy() supplies a permissive
 *      policy "true" for tables that had no row security of their own, so
 *      the rows a role sees are still decided by the gate alone.
 *    - _protect_blockers() lists what keeps a table from being protected.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/nbtree.h"
#include "catalog/heap.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_language.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_range.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/tablespace.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "parser/parse_node.h"
#include "parser/parse_oper.h"
#include "parser/parse_relation.h"
#include "parser/parse_type.h"
#include "rewrite/rewriteHandler.h"
#include "rewrite/rowsecurity.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access/hp_access.h"

static row_security_policy_hook_type prev_rls_permissive = NULL;

/*
 * Record a refused DDL statement on relid (outcome denied, subject NULL).
 * The record goes to shared memory first, so the rollback the error that
 * follows causes does not take it away.
 */
static void
hp_ddl_audit_refusal(Oid relid, const char *what)
{
	HpRecord	rec;

	hp_record_session(&rec);
	rec.logged_at = GetCurrentTimestamp();
	rec.statement_id = hp_next_statement_id();
	rec.relid = relid;
	rec.outcome = HP_DENIED;
	rec.subject_null = true;
	strlcpy(rec.purpose, hp_purpose ? hp_purpose : "", HP_PURPOSE_LEN);
	snprintf(rec.reason, HP_REASON_LEN, "refused DDL: %s", what);
	hp_denial_audit(&rec);		/* counted like a denied read (denials.c) */
}

/*
 * What PostgreSQL itself requires of the role for the command hp_ddl_check()
 * is looking at.  A refusal is audited and raised only when the role meets
 * it: a role PostgreSQL refuses anyway falls through to PostgreSQL's 42501,
 * with no record (nothing ran), so that roles without privileges cannot
 * fill the denial table with refusals (docs/design/denials.md).
 *
 *   hp_cmd_named   the relation the command names (InvalidOid: none, or
 *                  several, or the command is over a database or schema)
 *   hp_cmd_priv    a privilege on it that suffices (CREATE TRIGGER)
 *   hp_cmd_type    ALTER DOMAIN: the domain, whose owner may run it
 *   hp_cmd_wide    REINDEX SCHEMA/DATABASE, VACUUM FULL, CLUSTER: the owner
 *                  of the database or of the table's schema may run them
 *
 * Erring towards "may" is safe (the refusal stands); erring towards "may
 * not" would let PostgreSQL run a refused command, so every "may not" is a
 * case PostgreSQL refuses for want of that ownership or privilege.
 */
static Oid	hp_cmd_named = InvalidOid;
static AclMode hp_cmd_priv = 0;
static Oid	hp_cmd_type = InvalidOid;
static bool hp_cmd_wide = false;

/* Would PostgreSQL let the current user run the command on protected relid? */
static bool
hp_role_may_run(Oid relid)
{
	Oid			user = GetUserId();

	if (OidIsValid(hp_cmd_type))
		return pg_type_ownercheck(hp_cmd_type, user);
	if (pg_class_ownercheck(relid, user))
		return true;
	if (OidIsValid(hp_cmd_named) &&
		(pg_class_ownercheck(hp_cmd_named, user) ||
		 (hp_cmd_priv != 0 &&
		  (pg_class_aclcheck(hp_cmd_named, user, hp_cmd_priv) == ACLCHECK_OK ||
		   pg_class_aclcheck(relid, user, hp_cmd_priv) == ACLCHECK_OK))))
		return true;
	if (hp_cmd_wide &&
		(pg_database_ownercheck(MyDatabaseId, user) ||
		 pg_namespace_ownercheck(get_rel_namespace(relid), user)))
		return true;
	return false;
}

/* Audit a refused DDL statement on protected table relid, then raise */
static void
hp_ddl_refused(Oid relid, const char *what, const char *hint)
{
	char	   *name = get_rel_name(relid);

	hp_ddl_audit_refusal(relid, what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is refused on protected table \"%s\"", what, name ? name : "?"),
			 errhint("%s", hint)));
}

/*
 * Refuse a DDL statement on protected table relid (hp_ddl_refused); or,
 * when PostgreSQL would refuse the role anyway, return and let it.
 */
static void
hp_ddl_refuse(Oid relid, const char *what)
{
	if (hp_role_may_run(relid))
		hp_ddl_refused(relid, what, "Only a superuser may run it on a protected table.");
}

/*
 * Refuse a change to a function (its owner's: PostgreSQL refuses others)
 * that protected table relid runs, when relid is valid; audited on relid
 */
static void
hp_ddl_refuse_function(Oid relid, const char *what)
{
	char	   *name;

	if (!OidIsValid(relid))
		return;
	name = get_rel_name(relid);
	hp_ddl_audit_refusal(relid, what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is refused (protected table \"%s\")", what, name ? name : "?"),
			 errdetail("It was accepted there as it is; new code would run over the table's rows outside the gate."),
			 errhint("Only a superuser may change it while the table is protected.")));
}

/*
 * Audit a command refused on the audit log (relid: audit_block or
 * audit_log, as hp_audit_relation() names it), then raise.
 */
static void
hp_ddl_refuse_audit(Oid relid, const char *what)
{
	char	   *name = get_rel_name(relid);

	hp_ddl_audit_refusal(relid, what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is refused on health_pass.%s", what, name ? name : "?"),
			 errdetail("The audit writer takes ROW EXCLUSIVE on the audit log for every batch; a stronger lock, held or queued, stalls it and every audited read."),
			 errhint("Only a superuser may run it on the audit log.")));
}

/* The TOAST table of relid, or InvalidOid */
static Oid
hp_toast_of(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			toast = InvalidOid;

	if (HeapTupleIsValid(tup))
	{
		toast = ((Form_pg_class) GETSTRUCT(tup))->reltoastrelid;
		ReleaseSysCache(tup);
	}
	return toast;
}

/*
 * Is relid part of the audit log: audit_block, an index of it, its TOAST
 * table or that table's index (the relations the writer locks ROW EXCLUSIVE
 * for every batch), or the audit_log view over it?  Returns the relation a
 * refusal names (audit_block, or audit_log for the view), else InvalidOid.
 */
static Oid
hp_audit_relation(Oid relid)
{
	Oid			block,
				log,
				heap = relid;
	char		kind;

	if (!OidIsValid(relid))
		return InvalidOid;
	block = hp_extension_relation_oid("audit_block");
	log = hp_extension_relation_oid("audit_log");
	if (OidIsValid(log) && relid == log)
		return log;
	if (!OidIsValid(block))
		return InvalidOid;
	if (relid == block)
		return block;
	kind = get_rel_relkind(relid);
	if (kind == RELKIND_INDEX)
		heap = IndexGetRelation(relid, true);
	else if (kind != RELKIND_TOASTVALUE)
		return InvalidOid;
	if (heap == block || (OidIsValid(heap) && heap == hp_toast_of(block)))
		return block;
	return InvalidOid;
}

static Oid
hp_rangevar_oid(RangeVar *rv);
static void hp_check_extension(Node *node);
static void hp_ddl_command(Node *node);

/* The audit relation a RangeVar names, or InvalidOid */
static Oid
hp_audit_rangevar(RangeVar *rv)
{
	return rv ? hp_audit_relation(hp_rangevar_oid(rv)) : InvalidOid;
}

/* Walker: does a view's query read an audit relation (through views too)? */
static bool
hp_view_reads_audit(Node *node, void *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;
		int		   *depth = ctx;
		bool		found = false;

		if (rte->rtekind != RTE_RELATION)
			return false;
		if (OidIsValid(hp_audit_relation(rte->relid)))
			return true;
		if (rte->relkind == RELKIND_VIEW && *depth < 16)
		{
			Relation	view = try_relation_open(rte->relid, AccessShareLock);

			if (view == NULL)
				return false;
			(*depth)++;
			found = hp_view_reads_audit((Node *) get_view_query(view), ctx);
			(*depth)--;
			relation_close(view, AccessShareLock);
		}
		return found;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, hp_view_reads_audit, ctx,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, hp_view_reads_audit, ctx);
}

/*
 * The audit relation a LOCK TABLE of relid would lock: relid itself, or a
 * relation a view reads (LOCK TABLE locks what a view reads, with the view
 * owner's privileges).
 */
static Oid
hp_audit_lock_target(Oid relid)
{
	Oid			on = hp_audit_relation(relid);
	int			depth = 0;

	if (OidIsValid(on) || !OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_VIEW)
		return on;
	{
		Relation	view = try_relation_open(relid, AccessShareLock);
		bool		reads;

		if (view == NULL)
			return InvalidOid;
		reads = hp_view_reads_audit((Node *) get_view_query(view), &depth);
		relation_close(view, AccessShareLock);
		return reads ? hp_extension_relation_oid("audit_block") : InvalidOid;
	}
}

/* Does audit_block have an index CLUSTER without a table would use? */
static bool
hp_audit_clustered(Oid block)
{
	Relation	rel = try_relation_open(block, AccessShareLock);
	List	   *indexes;
	ListCell   *lc;
	bool		found = false;

	if (rel == NULL)
		return false;
	indexes = RelationGetIndexList(rel);
	relation_close(rel, AccessShareLock);
	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			continue;
		found |= ((Form_pg_index) GETSTRUCT(tup))->indisclustered;
		ReleaseSysCache(tup);
	}
	return found;
}

/* The audit relation a foreign key in constraints would reference */
static Oid
hp_audit_referenced(List *constraints)
{
	ListCell   *lc;

	foreach(lc, constraints)
	{
		Node	   *n = lfirst(lc);
		Oid			on;

		if (IsA(n, Constraint) && ((Constraint *) n)->contype == CONSTR_FOREIGN &&
			OidIsValid(on = hp_audit_rangevar(((Constraint *) n)->pktable)))
			return on;
		if (IsA(n, ColumnDef) &&
			OidIsValid(on = hp_audit_referenced(((ColumnDef *) n)->constraints)))
			return on;
	}
	return InvalidOid;
}

/* The relation a DROP TRIGGER/RULE/POLICY object name (rel..., name) is on */
static Oid
hp_drop_on_relation(List *names)
{
	List	   *rel;

	if (list_length(names) < 2)
		return InvalidOid;
	rel = list_truncate(list_copy(names), list_length(names) - 1);
	return RangeVarGetRelid(makeRangeVarFromNameList(rel), NoLock, true);
}

/*
 * Refuse to non-superusers every command that would lock the audit log
 * against its writer: the writer takes ROW EXCLUSIVE on audit_block, its
 * indexes and TOAST for each batch, so SHARE or stronger on any of them,
 * held or merely queued behind another session's lock (ANALYZE in an open
 * transaction), stalls it and fails every audited read.  Also refused:
 * renaming, moving or dropping them, which stops the writer as surely.
 * The database owner may VACUUM and REINDEX every table of the database, a
 * role with the extension owner's privileges may do all of it.
 */
static void
hp_check_audit_locks(Node *node)
{
	Oid			block = hp_extension_relation_oid("audit_block");
	Oid			on = InvalidOid;
	const char *what = NULL;
	ListCell   *lc;

	if (!OidIsValid(block))
		return;
	switch (nodeTag(node))
	{
		case T_VacuumStmt:
			{
				VacuumStmt *vs = (VacuumStmt *) node;
				bool		full = false;

				if (!vs->is_vacuumcmd)
					break;
				foreach(lc, vs->options)
				{
					DefElem    *opt = lfirst_node(DefElem, lc);

					if (strcmp(opt->defname, "full") == 0)
						full = defGetBoolean(opt);
				}
				if (!full)
					break;
				what = "VACUUM FULL";
				/* without a list: every table the role may vacuum */
				if (vs->rels == NIL &&
					(pg_class_ownercheck(block, GetUserId()) ||
					 pg_database_ownercheck(MyDatabaseId, GetUserId())))
					on = block;
				foreach(lc, vs->rels)
				{
					VacuumRelation *vr = lfirst_node(VacuumRelation, lc);

					if (!OidIsValid(on))
						on = vr->relation ? hp_audit_rangevar(vr->relation) :
							hp_audit_relation(vr->oid);
				}
				break;
			}
		case T_ClusterStmt:
			{
				ClusterStmt *cs = (ClusterStmt *) node;

				what = "CLUSTER";
				if (cs->relation)
					on = hp_audit_rangevar(cs->relation);
				else if (pg_class_ownercheck(block, GetUserId()) && hp_audit_clustered(block))
					on = block;
				break;
			}
		case T_ReindexStmt:
			{
				ReindexStmt *rs = (ReindexStmt *) node;

				what = "REINDEX";
				switch (rs->kind)
				{
					case REINDEX_OBJECT_INDEX:
					case REINDEX_OBJECT_TABLE:
						on = hp_audit_rangevar(rs->relation);
						break;
					case REINDEX_OBJECT_SCHEMA:
						{
							Oid			nsp = get_namespace_oid(rs->name, true);

							if (OidIsValid(nsp) &&
								(nsp == get_rel_namespace(block) || nsp == PG_TOAST_NAMESPACE))
								on = block;
							break;
						}
					case REINDEX_OBJECT_DATABASE:
						if (pg_database_ownercheck(MyDatabaseId, GetUserId()) ||
							pg_class_ownercheck(block, GetUserId()))
							on = block;
						break;
					case REINDEX_OBJECT_SYSTEM:
						break;
				}
				break;
			}
		case T_LockStmt:
			{
				LockStmt   *ls = (LockStmt *) node;

				/* the modes ROW EXCLUSIVE conflicts with */
				if (ls->mode < ShareLock)
					break;
				what = "LOCK TABLE in SHARE mode or stronger";
				foreach(lc, ls->relations)
					if (!OidIsValid(on))
						on = hp_audit_lock_target(hp_rangevar_oid(lfirst_node(RangeVar, lc)));
				break;
			}
		case T_TruncateStmt:
			what = "TRUNCATE";
			foreach(lc, ((TruncateStmt *) node)->relations)
				if (!OidIsValid(on))
					on = hp_audit_rangevar(lfirst_node(RangeVar, lc));
			break;
		case T_AlterTableStmt:
			{
				AlterTableStmt *at = (AlterTableStmt *) node;

				what = "ALTER TABLE";
				on = hp_audit_rangevar(at->relation);
				/* a foreign key locks the table it references */
				foreach(lc, at->cmds)
				{
					AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

					if (!OidIsValid(on) && cmd->def &&
						(cmd->subtype == AT_AddConstraint || cmd->subtype == AT_AddConstraintRecurse ||
						 cmd->subtype == AT_AddColumn || cmd->subtype == AT_AddColumnRecurse))
					{
						on = hp_audit_referenced(list_make1(cmd->def));
						what = "a foreign key referencing the audit log";
					}
					if (!OidIsValid(on) && cmd->subtype == AT_AddInherit && cmd->def &&
						OidIsValid(on = hp_audit_rangevar((RangeVar *) cmd->def)))
						what = "ALTER TABLE ... INHERIT the audit log";
				}
				break;
			}
		case T_AlterTableMoveAllStmt:
			{
				AlterTableMoveAllStmt *mv = (AlterTableMoveAllStmt *) node;
				Oid			from = get_tablespace_oid(mv->orig_tablespacename, true);
				HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(block));
				Oid			spc = InvalidOid;

				if (!HeapTupleIsValid(tup))
					break;
				spc = ((Form_pg_class) GETSTRUCT(tup))->reltablespace;
				ReleaseSysCache(tup);
				if (from == MyDatabaseTableSpace)
					from = InvalidOid;
				what = "ALTER ... ALL IN TABLESPACE";
				if (from == spc && pg_class_ownercheck(block, GetUserId()))
					on = block;
				break;
			}
		case T_CreateStmt:
			{
				CreateStmt *cs = (CreateStmt *) node;

				what = "a foreign key referencing the audit log";
				on = hp_audit_referenced(cs->tableElts);
				if (!OidIsValid(on))
					on = hp_audit_referenced(cs->constraints);
				/* a child or partition of the log: its rows would read as the log's */
				foreach(lc, cs->inhRelations)
					if (!OidIsValid(on) &&
						OidIsValid(on = hp_audit_rangevar(lfirst_node(RangeVar, lc))))
						what = "CREATE TABLE ... INHERITS or PARTITION OF the audit log";
				break;
			}
		case T_RenameStmt:
			what = "ALTER ... RENAME";
			on = hp_audit_rangevar(((RenameStmt *) node)->relation);
			break;
		case T_AlterObjectSchemaStmt:
			what = "ALTER ... SET SCHEMA";
			on = hp_audit_rangevar(((AlterObjectSchemaStmt *) node)->relation);
			break;
		case T_IndexStmt:
			what = "CREATE INDEX";
			on = hp_audit_rangevar(((IndexStmt *) node)->relation);
			break;
		case T_CreateTrigStmt:
			what = "CREATE TRIGGER";
			on = hp_audit_rangevar(((CreateTrigStmt *) node)->relation);
			break;
		case T_RuleStmt:
			what = "CREATE RULE";
			on = hp_audit_rangevar(((RuleStmt *) node)->relation);
			break;
		case T_CreatePolicyStmt:
			what = "CREATE POLICY";
			on = hp_audit_rangevar(((CreatePolicyStmt *) node)->table);
			break;
		case T_AlterPolicyStmt:
			what = "ALTER POLICY";
			on = hp_audit_rangevar(((AlterPolicyStmt *) node)->table);
			break;
		case T_DropStmt:
			{
				DropStmt   *ds = (DropStmt *) node;

				what = "DROP";
				foreach(lc, ds->objects)
				{
					if (OidIsValid(on))
						break;
					switch (ds->removeType)
					{
						case OBJECT_TABLE:
						case OBJECT_INDEX:
						case OBJECT_VIEW:
							on = hp_audit_relation(RangeVarGetRelid(makeRangeVarFromNameList(lfirst(lc)),
																	NoLock, true));
							break;
						case OBJECT_TRIGGER:
						case OBJECT_RULE:
						case OBJECT_POLICY:
							on = hp_audit_relation(hp_drop_on_relation(lfirst(lc)));
							break;
						case OBJECT_EXTENSION:
							/* only when PostgreSQL would let the role: its owner */
							if (strcmp(strVal(lfirst(lc)), "health_pass") == 0 &&
								pg_extension_ownercheck(get_extension_oid("health_pass", false),
														GetUserId()))
								on = block;
							break;
						case OBJECT_SCHEMA:
							if (get_namespace_oid(strVal(lfirst(lc)), true) == get_rel_namespace(block) &&
								pg_namespace_ownercheck(get_rel_namespace(block), GetUserId()))
								on = block;
							break;
						default:
							break;
					}
				}
				break;
			}
		default:
			break;
	}
	if (what && OidIsValid(on))
		hp_ddl_refuse_audit(on, what);
}

/*
 * Audit a command refused on the extension or its objects (recorded on
 * audit_block, or InvalidOid when even that is gone), then raise.
 */
static void
hp_ddl_refuse_extension(const char *what, const char *object)
{
	hp_ddl_audit_refusal(hp_extension_relation_oid("audit_block"), what);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is refused on %s", what, object),
			 errdetail("The gate and the audit writer find the extension's objects in its schema; renaming, moving, re-owning or dropping them turns auditing off."),
			 errhint("Only a superuser may run it.")));
}

/* Is this the extension's schema, named? */
static bool
hp_is_extension_schema(const char *name, Oid nsp)
{
	return name != NULL && get_namespace_oid(name, true) == nsp;
}

/* Is the relation rv names in the extension's schema? */
static bool
hp_rangevar_in_extension(RangeVar *rv, Oid nsp)
{
	Oid			relid = hp_rangevar_oid(rv);

	return OidIsValid(relid) && get_rel_namespace(relid) == nsp;
}

/* Is the function owa names (of kind objtype) in the extension's schema,
 * and does the current user own it? */
static bool
hp_function_in_extension(ObjectType objtype, Node *owa, Oid nsp)
{
	Oid			fn;

	if (owa == NULL || !IsA(owa, ObjectWithArgs))
		return false;
	fn = LookupFuncWithArgs(objtype, (ObjectWithArgs *) owa, true);
	return OidIsValid(fn) && get_func_namespace(fn) == nsp &&
		pg_proc_ownercheck(fn, GetUserId());
}

/* Does roles (RoleSpec list) name a role whose objects include the extension's? */
static bool
hp_roles_own_extension(List *roles, Oid nsp)
{
	Oid			extowner = hp_extension_owner();
	Oid			nspowner = InvalidOid;
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	ListCell   *lc;

	if (HeapTupleIsValid(tup))
	{
		nspowner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
	}
	foreach(lc, roles)
	{
		Oid			role = get_rolespec_oid(lfirst(lc), true);

		/*
		 * Only a role the current user has the privileges of (else 42501),
		 * and not the bootstrap superuser (PostgreSQL refuses that itself).
		 */
		if (OidIsValid(role) && (role == extowner || role == nspowner) &&
			role != BOOTSTRAP_SUPERUSERID && has_privs_of_role(GetUserId(), role))
			return true;
	}
	return false;
}

/*
 * Refuse to non-superusers every command that would rename, move, re-own or
 * drop the extension, its schema or the objects in it, or change which
 * objects belong to it: the gate, the writer and the event trigger find them
 * there, and a renamed schema turned auditing off (issue 12: a role with
 * the extension owner's privileges, not a superuser, could).  Only commands PostgreSQL would let the role
 * run are refused and audited; COMMENT and the like are left alone.
 */
static void
hp_check_extension(Node *node)
{
	Oid			nsp = hp_extension_namespace();
	Oid			user = GetUserId();
	const char *what = NULL;
	const char *object = "the health_pass extension";

	if (!OidIsValid(nsp))
		return;
	switch (nodeTag(node))
	{
		case T_RenameStmt:
			{
				RenameStmt *rs = (RenameStmt *) node;

				if (rs->renameType == OBJECT_SCHEMA)
				{
					if (hp_is_extension_schema(rs->subname, nsp) &&
						pg_namespace_ownercheck(nsp, user))
						what = "ALTER SCHEMA ... RENAME", object = "the health_pass extension's schema";
				}
				else if (rs->renameType == OBJECT_FUNCTION || rs->renameType == OBJECT_PROCEDURE ||
						 rs->renameType == OBJECT_ROUTINE)
				{
					if (hp_function_in_extension(rs->renameType, rs->object, nsp))
						what = "ALTER FUNCTION ... RENAME", object = "a function of the health_pass extension";
				}
				else if (rs->relation && hp_rangevar_in_extension(rs->relation, nsp) &&
						 pg_class_ownercheck(hp_rangevar_oid(rs->relation), user))
					what = "ALTER ... RENAME", object = "a relation of the health_pass extension";
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *as = (AlterObjectSchemaStmt *) node;

				if (as->objectType == OBJECT_EXTENSION)
				{
					if (strcmp(strVal(as->object), "health_pass") == 0 &&
						pg_extension_ownercheck(get_extension_oid("health_pass", false), user))
						what = "ALTER EXTENSION ... SET SCHEMA";
				}
				else if (as->objectType == OBJECT_FUNCTION || as->objectType == OBJECT_PROCEDURE ||
						 as->objectType == OBJECT_ROUTINE)
				{
					if (hp_function_in_extension(as->objectType, as->object, nsp))
						what = "ALTER FUNCTION ... SET SCHEMA", object = "a function of the health_pass extension";
				}
				else if (as->relation && hp_rangevar_in_extension(as->relation, nsp) &&
						 pg_class_ownercheck(hp_rangevar_oid(as->relation), user))
					what = "ALTER ... SET SCHEMA", object = "a relation of the health_pass extension";
				break;
			}
		case T_AlterOwnerStmt:
			{
				AlterOwnerStmt *ao = (AlterOwnerStmt *) node;

				if (ao->objectType == OBJECT_SCHEMA)
				{
					if (hp_is_extension_schema(strVal(ao->object), nsp) &&
						pg_namespace_ownercheck(nsp, user))
						what = "ALTER SCHEMA ... OWNER TO", object = "the health_pass extension's schema";
				}
				else if (ao->objectType == OBJECT_FUNCTION || ao->objectType == OBJECT_PROCEDURE ||
						 ao->objectType == OBJECT_ROUTINE)
				{
					if (hp_function_in_extension(ao->objectType, ao->object, nsp))
						what = "ALTER FUNCTION ... OWNER TO", object = "a function of the health_pass extension";
				}
				break;
			}
		case T_AlterTableStmt:
			{
				AlterTableStmt *at = (AlterTableStmt *) node;
				ListCell   *lc;

				if (!hp_rangevar_in_extension(at->relation, nsp) ||
					!pg_class_ownercheck(hp_rangevar_oid(at->relation), user))
					break;
				foreach(lc, at->cmds)
					if (lfirst_node(AlterTableCmd, lc)->subtype == AT_ChangeOwner)
						what = "ALTER ... OWNER TO", object = "a relation of the health_pass extension";
				break;
			}
		case T_AlterExtensionContentsStmt:
			{
				AlterExtensionContentsStmt *ac = (AlterExtensionContentsStmt *) node;

				/* ADD makes an object the extension's: nothing of ours moves */
				if (ac->action < 0 && strcmp(ac->extname, "health_pass") == 0 &&
					pg_extension_ownercheck(get_extension_oid("health_pass", false), user))
					what = "ALTER EXTENSION ... DROP";
				break;
			}
		case T_DropStmt:
			{
				DropStmt   *ds = (DropStmt *) node;
				ListCell   *lc;

				foreach(lc, ds->objects)
				{
					if (ds->removeType == OBJECT_SCHEMA &&
						hp_is_extension_schema(strVal(lfirst(lc)), nsp) &&
						pg_namespace_ownercheck(nsp, user))
						what = "DROP SCHEMA", object = "the health_pass extension's schema";
					else if (ds->removeType == OBJECT_EXTENSION &&
							 strcmp(strVal(lfirst(lc)), "health_pass") == 0 &&
							 pg_extension_ownercheck(get_extension_oid("health_pass", false), user))
						what = "DROP EXTENSION";
				}
				break;
			}
		case T_DropOwnedStmt:
			if (hp_roles_own_extension(((DropOwnedStmt *) node)->roles, nsp))
				what = "DROP OWNED BY the extension's owner";
			break;
		case T_ReassignOwnedStmt:
			if (hp_roles_own_extension(((ReassignOwnedStmt *) node)->roles, nsp))
				what = "REASSIGN OWNED BY the extension's owner";
			break;
		default:
			break;
	}
	if (what)
		hp_ddl_refuse_extension(what, object);
}

/* relid when it is protected; else its first protected descendant when
 * recurse; else InvalidOid */
static Oid
hp_protected_in(Oid relid, bool recurse)
{
	ListCell   *lc;

	if (!OidIsValid(relid))
		return InvalidOid;
	if (hp_protected_attnum(relid) > 0)
		return relid;
	if (!recurse || !has_subclass(relid))
		return InvalidOid;
	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		if (hp_protected_attnum(lfirst_oid(lc)) > 0)
			return lfirst_oid(lc);
	return InvalidOid;
}

/* Does relid have an index with expressions or a predicate, or an invalid
 * unique or exclusion index?  (A rebuild runs code over every row, or fails
 * on a duplicate.) */
static bool
hp_has_expression_index(Oid relid)
{
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	bool		found = false;

	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return false;
	indexes = RelationGetIndexList(rel);
	relation_close(rel, AccessShareLock);
	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (!HeapTupleIsValid(tup))
			continue;
		if (!heap_attisnull(tup, Anum_pg_index_indexprs, NULL) ||
			!heap_attisnull(tup, Anum_pg_index_indpred, NULL))
			found = true;

		/*
		 * An invalid unique or exclusion index (a concurrent build that
		 * failed): rebuilding it fails when two rows share a key, which a
		 * valid one already ruled out
		 */
		{
			Form_pg_index ind = (Form_pg_index) GETSTRUCT(tup);

			if ((ind->indisunique || ind->indisexclusion) && !ind->indisvalid)
				found = true;
		}
		ReleaseSysCache(tup);
		if (found)
			break;
	}
	return found;
}

/* relid, or with recurse any of its descendants, protected and with an
 * expression or partial index (a rebuild evaluates them over every row) */
static Oid
hp_protected_with_expression_index(Oid relid, bool recurse)
{
	List	   *rels;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return InvalidOid;
	rels = (recurse && has_subclass(relid)) ?
		find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
	foreach(lc, rels)
	{
		Oid			r = lfirst_oid(lc);

		if (hp_protected_attnum(r) > 0 && hp_has_expression_index(r))
			return r;
	}
	return InvalidOid;
}

/* A protected table (of namespace nsp, when valid) with an expression or
 * partial index.  Whether the command would reach it (a database owner's
 * REINDEX DATABASE or VACUUM FULL reaches tables it does not own) is not
 * asked: refusing a little more is safe. */
static Oid
hp_any_protected_with_expression_index(Oid nsp)
{
	ListCell   *lc;

	foreach(lc, hp_protected_relids())
	{
		Oid			r = lfirst_oid(lc);

		if (OidIsValid(nsp) && get_rel_namespace(r) != nsp)
			continue;
		if (hp_has_expression_index(r))
			return r;
	}
	return InvalidOid;
}

static Oid
hp_rangevar_oid(RangeVar *rv)
{
	return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

/* Would this ADD COLUMN default be volatile (evaluated once per row)? */
static bool
hp_default_volatile(Oid relid, ColumnDef *cd, Node *raw)
{
	ParseState *pstate;
	Relation	rel;
	ParseNamespaceItem *nsitem;
	Type		typ;
	Oid			typid;
	int32		typmod;
	Node	   *expr;
	bool		result;

	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return false;
	pstate = make_parsestate(NULL);
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, true);
	addNSItemToQuery(pstate, nsitem, true, true, true);
	typ = LookupTypeName(pstate, cd->typeName, &typmod, true);
	if (typ == NULL)
	{
		/* serial types exist only in the grammar: their default is nextval() */
		relation_close(rel, AccessShareLock);
		return cd->typeName && cd->typeName->names &&
			strstr(strVal(llast(cd->typeName->names)), "serial") != NULL;
	}
	typid = typeTypeId(typ);
	ReleaseSysCache(typ);
	expr = cookDefault(pstate, copyObject(raw), typid, typmod, cd->colname, 0);
	result = contain_volatile_functions(expr);
	free_parsestate(pstate);
	relation_close(rel, AccessShareLock);
	return result;
}

/* What an ADD COLUMN would evaluate over existing rows, or NULL */
static const char *hp_type_hazard(Oid typid, int depth);

static const char *
hp_add_column_hazard(Oid relid, ColumnDef *cd)
{
	ListCell   *lc;

	/* a domain or range type that runs a user's leaky code on each value */
	if (cd->typeName &&
		hp_type_hazard(LookupTypeNameOid(NULL, cd->typeName, true), 0) != NULL)
		return "ALTER TABLE ... ADD COLUMN of a type with a non-leakproof CHECK or range function";

	if (cd->typeName && cd->typeName->names &&
		strstr(strVal(llast(cd->typeName->names)), "serial") != NULL &&
		list_length(cd->typeName->names) == 1)
		return "ALTER TABLE ... ADD COLUMN with a volatile default";
	foreach(lc, cd->constraints)
	{
		Constraint *c = lfirst_node(Constraint, lc);

		if (c->contype == CONSTR_CHECK)
			return "ALTER TABLE ... ADD COLUMN ... CHECK";
		if (c->contype == CONSTR_GENERATED)
			return "ALTER TABLE ... ADD COLUMN ... GENERATED ... STORED";
		if (c->contype == CONSTR_FOREIGN)
			return "ALTER TABLE ... ADD COLUMN ... REFERENCES";
		if (c->contype == CONSTR_PRIMARY || c->contype == CONSTR_UNIQUE ||
			c->contype == CONSTR_EXCLUSION)
			return "ALTER TABLE ... ADD COLUMN ... PRIMARY KEY / UNIQUE (an index build that fails on a duplicate)";
		if (c->contype == CONSTR_DEFAULT && c->raw_expr &&
			hp_default_volatile(relid, cd, c->raw_expr))
			return "ALTER TABLE ... ADD COLUMN with a volatile default";
	}
	return NULL;
}

/* What an ADD CONSTRAINT would evaluate over existing rows, or NULL */
static const char *
hp_constraint_hazard(Constraint *c)
{
	ListCell   *lc;

	if (c->contype == CONSTR_CHECK)
		return "ALTER TABLE ... ADD CONSTRAINT ... CHECK";

	/*
	 * A foreign key from a protected table: when the owner lacks SELECT on
	 * either table, validation reads every row outside the executor
	 * (validateForeignKeyConstraint) and locks, FOR KEY SHARE, the
	 * referenced row each one names, which the owner then sees in xmax;
	 * afterwards every row written locks the row it references.  Even NOT
	 * VALID: the checks of new rows do the same.
	 */
	if (c->contype == CONSTR_FOREIGN)
		return "ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY";
	if (c->contype == CONSTR_EXCLUSION)
	{
		if (c->where_clause)
			return "ALTER TABLE ... ADD CONSTRAINT ... EXCLUDE ... WHERE";
		foreach(lc, c->exclusions)
		{
			List	   *pair = lfirst(lc);
			IndexElem  *elem = linitial_node(IndexElem, pair);

			if (elem->expr)
				return "ALTER TABLE ... ADD CONSTRAINT ... EXCLUDE with expressions";
		}
	}

	/*
	 * A unique, primary key or exclusion index built over the rows: whether
	 * the build fails says whether two rows share a key, which the owner
	 * can aim at one hidden row by writing its own (docs/design/
	 * write_probes.md: the bit a write probe tells, unaudited).  USING
	 * INDEX turns an index already built into the constraint: no build.
	 */
	if ((c->contype == CONSTR_PRIMARY || c->contype == CONSTR_UNIQUE ||
		 c->contype == CONSTR_EXCLUSION) && c->indexname == NULL)
		return "ALTER TABLE ... ADD PRIMARY KEY / UNIQUE / EXCLUDE (an index build that fails on a duplicate)";
	return NULL;
}

static bool hp_has_foreign_key(Oid relid);
static Oid	hp_protected_using_type(Oid typid);
static bool hp_opclass_untrusted(Oid opclass);

static void
hp_check_alter_table(AlterTableStmt *at)
{
	Oid			relid = hp_rangevar_oid(at->relation);
	bool		recurse = at->relation && at->relation->inh;
	Oid			target;
	ListCell   *lc;

	if (!OidIsValid(relid) || at->objtype == OBJECT_INDEX)
		return;
	if (at->objtype == OBJECT_TYPE)
	{
		/*
		 * ALTER TYPE ... ADD ATTRIBUTE of a composite a protected column
		 * uses: a hazardous attribute type would run on its values
		 * (PostgreSQL itself refuses the other changes of a type in use)
		 */
		foreach(lc, at->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
			Oid			on;

			if ((cmd->subtype == AT_AddColumn || cmd->subtype == AT_AddColumnRecurse) &&
				cmd->def && IsA(cmd->def, ColumnDef) &&
				((ColumnDef *) cmd->def)->typeName &&
				hp_type_hazard(LookupTypeNameOid(NULL, ((ColumnDef *) cmd->def)->typeName, true), 0) != NULL &&
				OidIsValid(on = hp_protected_using_type(get_rel_type_id(relid))))
				hp_ddl_refuse(on, "ALTER TYPE ... ADD ATTRIBUTE of a type with a non-leakproof CHECK or range function");
		}
		return;
	}
	target = hp_protected_in(relid, recurse);
	foreach(lc, at->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		const char *what = NULL;
		Oid			on = target;

		/*
		 * A foreign key NOT VALID that references a protected table, from
		 * any table: nothing checks the rows already there, so their keys
		 * may be guesses, and an ON DELETE or ON UPDATE action then changes
		 * the row of a guess that another role deletes or re-keys in the
		 * protected table, which a trigger on the referencing table sees:
		 * whether that key existed, with no record naming the owner (a
		 * red-team pass).  Validated, the same keys are read through the
		 * gate (as are the checks of every new row).
		 */
		if ((cmd->subtype == AT_AddConstraint || cmd->subtype == AT_AddConstraintRecurse) &&
			cmd->def && IsA(cmd->def, Constraint) &&
			((Constraint *) cmd->def)->contype == CONSTR_FOREIGN &&
			((Constraint *) cmd->def)->skip_validation &&
			!((Constraint *) cmd->def)->initially_valid)	/* CREATE TABLE's: an empty table */
		{
			Oid			pk = hp_protected_in(hp_rangevar_oid(((Constraint *) cmd->def)->pktable), true);

			if (OidIsValid(pk))
				hp_ddl_refuse(pk, "ALTER TABLE ... ADD FOREIGN KEY ... NOT VALID referencing it");
		}

		/*
		 * ADD COLUMN ... REFERENCES: PostgreSQL validates the new key only
		 * when the column has a default of its own, but an identity column
		 * or a domain's volatile default fills the existing rows too, and
		 * they are then never checked (a reviewer put 3,000 guesses behind
		 * a key marked valid).  Add the column, then the foreign key.
		 */
		if ((cmd->subtype == AT_AddColumn || cmd->subtype == AT_AddColumnRecurse) &&
			cmd->def && IsA(cmd->def, ColumnDef))
		{
			ListCell   *cc;

			foreach(cc, ((ColumnDef *) cmd->def)->constraints)
			{
				Constraint *c = lfirst_node(Constraint, cc);
				Oid			pk;

				if (c->contype != CONSTR_FOREIGN)
					continue;
				pk = hp_protected_in(hp_rangevar_oid(c->pktable), true);
				if (OidIsValid(pk))
					hp_ddl_refuse(pk, "ALTER TABLE ... ADD COLUMN ... REFERENCES it (add the column, then the foreign key)");
			}
		}

		switch (cmd->subtype)
		{
			case AT_AddConstraint:
			case AT_AddConstraintRecurse:
				if (cmd->def && IsA(cmd->def, Constraint))
					what = hp_constraint_hazard((Constraint *) cmd->def);
				break;
			case AT_ValidateConstraint:
			case AT_ValidateConstraintRecurse:
				what = "ALTER TABLE ... VALIDATE CONSTRAINT";
				break;
			case AT_AlterColumnType:
				what = "ALTER TABLE ... ALTER COLUMN ... TYPE";
				break;
			case AT_AddColumn:
			case AT_AddColumnRecurse:
				if (OidIsValid(target) && cmd->def && IsA(cmd->def, ColumnDef))
					what = hp_add_column_hazard(relid, (ColumnDef *) cmd->def);
				break;
			case AT_DropColumn:
			case AT_DropColumnRecurse:
				{
					/*
					 * The subject column: without it no row can be gated or
					 * audited (reads and writes fail, and a write failed only
					 * on a conflict, which told the key exists)
					 */
					AttrNumber	att = OidIsValid(target) ? hp_protected_attnum(target) : 0;
					char	   *subject = att > 0 ? get_attname(target, att, true) : NULL;

					if (subject && cmd->name && strcmp(subject, cmd->name) == 0)
						what = "ALTER TABLE ... DROP COLUMN of the subject column";
					break;
				}
			case AT_DisableRowSecurity:
				what = "ALTER TABLE ... DISABLE ROW LEVEL SECURITY";
				break;
			case AT_NoForceRowSecurity:
				what = "ALTER TABLE ... NO FORCE ROW LEVEL SECURITY";
				break;
			case AT_SetAccessMethod:
			case AT_SetLogged:
			case AT_SetUnLogged:
				/* these rewrite the table and rebuild its indexes */
				on = hp_protected_with_expression_index(relid, recurse);
				what = "ALTER TABLE ... SET ACCESS METHOD / LOGGED / UNLOGGED of a table with expression, partial or invalid unique indexes";
				break;
			case AT_AttachPartition:
				{
					PartitionCmd *pc = (PartitionCmd *) cmd->def;

					/* a protected table moved under another table: its
					 * partition key would run over the protected rows */
					on = hp_protected_in(hp_rangevar_oid(pc->name), true);
					what = "ALTER TABLE ... ATTACH PARTITION of a protected table";
					if (!OidIsValid(on) && OidIsValid(target) &&
						OidIsValid(get_default_partition_oid(relid)))
					{
						on = target;
						what = "ALTER TABLE ... ATTACH PARTITION to a protected table with a default partition";
					}
					else if (!OidIsValid(on) && OidIsValid(target) &&
							 OidIsValid(hp_rangevar_oid(pc->name)) &&
							 hp_has_foreign_key(hp_rangevar_oid(pc->name)))
					{
						/* it becomes protected with its foreign key */
						on = target;
						what = "ALTER TABLE ... ATTACH PARTITION of a table with a FOREIGN KEY to a protected table";
					}
					break;
				}
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				{
					PartitionCmd *pc = (PartitionCmd *) cmd->def;
					Oid			part = hp_protected_in(hp_rangevar_oid(pc->name), true);

					if (OidIsValid(part))
						on = part;
					what = "ALTER TABLE ... DETACH PARTITION";
					break;
				}
			case AT_AddInherit:
			case AT_DropInherit:
				{
					Oid			parent = hp_protected_in(hp_rangevar_oid((RangeVar *) cmd->def), false);

					if (!OidIsValid(on))
						on = hp_protected_in(relid, true);
					if (!OidIsValid(on))
						on = parent;
					what = cmd->subtype == AT_AddInherit ?
						"ALTER TABLE ... INHERIT" : "ALTER TABLE ... NO INHERIT";
					break;
				}
			default:
				break;
		}
		if (what && OidIsValid(on))
			hp_ddl_refuse(on, what);
	}
}

static void
hp_check_index(IndexStmt *stmt)
{
	Oid			target;
	ListCell   *lc;

	target = hp_protected_in(hp_rangevar_oid(stmt->relation), stmt->relation->inh);
	if (!OidIsValid(target))
		return;
	if (stmt->whereClause)
		hp_ddl_refuse(target, "CREATE INDEX ... WHERE");
	/* whether the build fails tells whether two rows share a key (above) */
	if (stmt->unique || stmt->primary || stmt->excludeOpNames != NIL)
		hp_ddl_refuse(target, "CREATE UNIQUE INDEX (a build that fails on a duplicate)");
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *elem = lfirst_node(IndexElem, lc);
		Oid			am = get_index_am_oid(stmt->accessMethod ? stmt->accessMethod : DEFAULT_INDEX_TYPE, true);
		Oid			opc = (elem->opclass != NIL && OidIsValid(am)) ?
			get_opclass_oid(am, elem->opclass, true) : InvalidOid;

		if (OidIsValid(opc) && hp_opclass_untrusted(opc))
			hp_ddl_refuse(target, "CREATE INDEX with an operator class whose support function is not LEAKPROOF");
	}
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *elem = lfirst_node(IndexElem, lc);

		if (elem->expr)
			hp_ddl_refuse(target, "CREATE INDEX with expressions");
	}
}

static void
hp_check_reindex(ReindexStmt *stmt)
{
	Oid			on = InvalidOid;

	switch (stmt->kind)
	{
		case REINDEX_OBJECT_INDEX:
			{
				Oid			idx = hp_rangevar_oid(stmt->relation);

				if (OidIsValid(idx))
					on = hp_protected_with_expression_index(IndexGetRelation(idx, true), true);
				break;
			}
		case REINDEX_OBJECT_TABLE:
			on = hp_protected_with_expression_index(hp_rangevar_oid(stmt->relation), true);
			break;
		case REINDEX_OBJECT_SCHEMA:
			{
				Oid			nsp = get_namespace_oid(stmt->name, true);

				if (OidIsValid(nsp))
					on = hp_any_protected_with_expression_index(nsp);
				break;
			}
		case REINDEX_OBJECT_DATABASE:
			on = hp_any_protected_with_expression_index(InvalidOid);
			break;
		case REINDEX_OBJECT_SYSTEM:
			break;
	}
	if (OidIsValid(on))
		hp_ddl_refuse(on, "REINDEX of a table with expression, partial or invalid unique indexes");
}

static void
hp_check_vacuum(VacuumStmt *stmt)
{
	ListCell   *lc;
	bool		full = false;
	Oid			on = InvalidOid;

	if (!stmt->is_vacuumcmd)
		return;
	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "full") == 0)
			full = defGetBoolean(opt);
	}
	if (!full)
		return;
	if (stmt->rels == NIL)
		on = hp_any_protected_with_expression_index(InvalidOid);
	foreach(lc, stmt->rels)
	{
		VacuumRelation *vr = lfirst_node(VacuumRelation, lc);
		Oid			relid = vr->relation ? hp_rangevar_oid(vr->relation) : vr->oid;

		on = hp_protected_with_expression_index(relid, true);
		if (OidIsValid(on))
			break;
	}
	if (OidIsValid(on))
		hp_ddl_refuse(on, "VACUUM FULL of a table with expression, partial or invalid unique indexes");
}

/* Does a CREATE TABLE's list of constraints or columns declare a foreign key? */
static bool
hp_foreign_key_in(List *constraints, List *elements)
{
	ListCell   *lc;

	foreach(lc, constraints)
		if (IsA(lfirst(lc), Constraint) && ((Constraint *) lfirst(lc))->contype == CONSTR_FOREIGN)
			return true;
	foreach(lc, elements)
	{
		Node	   *n = lfirst(lc);

		if (IsA(n, Constraint) && ((Constraint *) n)->contype == CONSTR_FOREIGN)
			return true;
		if (IsA(n, ColumnDef) && hp_foreign_key_in(((ColumnDef *) n)->constraints, NIL))
			return true;
	}
	return false;
}

/* Has table relid a foreign key of its own (not cloned from a parent)? */
static bool
hp_has_foreign_key(Oid relid)
{
	Relation	cat = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(cat, ConstraintRelidTypidNameIndexId, true, NULL, 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
		found = ((Form_pg_constraint) GETSTRUCT(tup))->contype == CONSTRAINT_FOREIGN;
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
	return found;
}

static void
hp_check_create_table(CreateStmt *stmt)
{
	ListCell   *lc;
	Oid			protected_parent = InvalidOid;
	bool		unprotected_parent = false;

	foreach(lc, stmt->inhRelations)
	{
		Oid			parent = hp_rangevar_oid(lfirst_node(RangeVar, lc));

		if (!OidIsValid(parent))
			continue;
		if (hp_protected_attnum(parent) > 0)
			protected_parent = parent;
		else
			unprotected_parent = true;
	}
	/* a foreign key of its own: as ADD CONSTRAINT ... FOREIGN KEY */
	if (OidIsValid(protected_parent) && hp_foreign_key_in(stmt->constraints, stmt->tableElts))
		hp_ddl_refuse(protected_parent,
					  "CREATE TABLE ... PARTITION OF or INHERITS a protected table with a FOREIGN KEY");

	/* its rows would be in the unprotected parent's statistics */
	if (OidIsValid(protected_parent) && unprotected_parent)
		hp_ddl_refuse(protected_parent,
					  "CREATE TABLE ... INHERITS a protected and an unprotected table");

	/*
	 * A new partition's bound is checked against the rows of the default
	 * partition, read outside the executor (check_default_partition_contents):
	 * whether the CREATE fails tells whether protected rows with key values
	 * in the bound exist, one bound after another, with no record
	 */
	if (stmt->partbound != NULL && !stmt->partbound->is_default &&
		OidIsValid(protected_parent) &&
		OidIsValid(get_default_partition_oid(protected_parent)))
		hp_ddl_refuse(protected_parent,
					  "CREATE TABLE ... PARTITION OF a protected table with a default partition");
}

/* Does type t contain type target (through domains, arrays, ranges, multiranges, composites)? */
static bool
hp_type_contains(Oid t, Oid target, int depth)
{
	HeapTuple	tup;
	Form_pg_type f;
	bool		found = false;

	if (!OidIsValid(t) || depth > 8)
		return false;
	if (t == target)
		return true;
	check_stack_depth();
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(t));
	if (!HeapTupleIsValid(tup))
		return false;
	f = (Form_pg_type) GETSTRUCT(tup);
	if (f->typtype == TYPTYPE_DOMAIN)
		found = hp_type_contains(f->typbasetype, target, depth + 1);
	else if (f->typtype == TYPTYPE_RANGE)
		found = hp_type_contains(get_range_subtype(t), target, depth + 1);
	else if (f->typtype == TYPTYPE_MULTIRANGE)
		found = hp_type_contains(get_multirange_range(t), target, depth + 1);
	else if (f->typtype == TYPTYPE_COMPOSITE && OidIsValid(f->typrelid))
	{
		Relation	rel = try_relation_open(f->typrelid, AccessShareLock);

		for (int i = 0; rel != NULL && !found && i < RelationGetDescr(rel)->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);

			found = !att->attisdropped && hp_type_contains(att->atttypid, target, depth + 1);
		}
		if (rel != NULL)
			relation_close(rel, AccessShareLock);
	}
	else if (OidIsValid(f->typelem) && f->typlen == -1)
		found = hp_type_contains(f->typelem, target, depth + 1);
	ReleaseSysCache(tup);
	return found;
}

/*
 * The first protected table with a column whose type contains typid (a
 * domain through domains, arrays, ranges or composites over it: ALTER DOMAIN
 * ... ADD CONSTRAINT ... CHECK and VALIDATE CONSTRAINT evaluate the check
 * over every such column's values)
 */
static Oid
hp_protected_using_type(Oid typid)
{
	ListCell   *lc;

	foreach(lc, hp_protected_relids())
	{
		Oid			relid = lfirst_oid(lc);
		Relation	rel = try_relation_open(relid, AccessShareLock);
		bool		uses = false;

		if (rel == NULL)
			continue;
		for (int i = 0; i < RelationGetDescr(rel)->natts && !uses; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);

			uses = !att->attisdropped && hp_type_contains(att->atttypid, typid, 0);
		}
		relation_close(rel, AccessShareLock);
		if (uses)
			return relid;
	}
	return InvalidOid;
}

static Oid	hp_protected_running(Oid classid, Oid objid, int depth);

/*
 * A protected table running an operator that has op as its negator or
 * commutator (pg_operator.oprnegate, oprcom: pg_depend does not record
 * them)
 */
static Oid
hp_protected_through_related(Oid op, int depth)
{
	Relation	cat = table_open(OperatorRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(cat, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	List	   *ops = NIL;
	ListCell   *lc;
	Oid			found = InvalidOid;

	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_operator o = (Form_pg_operator) GETSTRUCT(tup);

		if ((o->oprnegate == op || o->oprcom == op) && o->oid != op)
			ops = lappend_oid(ops, o->oid);
	}
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
	foreach(lc, ops)
		if (!OidIsValid(found))
			found = hp_protected_running(OperatorRelationId, lfirst_oid(lc), depth + 1);
	return found;
}

/* The operator family of a pg_amproc or pg_amop entry, or InvalidOid */
static Oid
hp_amproc_family(Oid classid, Oid objid)
{
	bool		proc = (classid == AccessMethodProcedureRelationId);
	Relation	cat = table_open(classid, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			family = InvalidOid;

	ScanKeyInit(&key, proc ? Anum_pg_amproc_oid : Anum_pg_amop_oid,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(objid));
	scan = systable_beginscan(cat, proc ? AccessMethodProcedureOidIndexId : AccessMethodOperatorOidIndexId,
							  true, NULL, 1, &key);
	if ((tup = systable_getnext(scan)) != NULL)
		family = proc ? ((Form_pg_amproc) GETSTRUCT(tup))->amprocfamily :
			((Form_pg_amop) GETSTRUCT(tup))->amopfamily;
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
	return family;
}

/* A protected table with an index using an operator class of family */
static Oid
hp_protected_using_family(Oid family, int depth)
{
	Relation	cat = table_open(OperatorClassRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(cat, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	List	   *classes = NIL;
	ListCell   *lc;
	Oid			found = InvalidOid;

	while ((tup = systable_getnext(scan)) != NULL)
		if (((Form_pg_opclass) GETSTRUCT(tup))->opcfamily == family)
			classes = lappend_oid(classes, ((Form_pg_opclass) GETSTRUCT(tup))->oid);
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
	foreach(lc, classes)
		if (!OidIsValid(found))
			found = hp_protected_running(OperatorClassRelationId, lfirst_oid(lc), depth);
	return found;
}

/*
 * A protected table whose objects run function (or operator) obj: an index
 * expression or predicate, a constraint (CHECK, exclusion), a column
 * default or generated expression, a policy, the partition key; a domain
 * CHECK or a range type's function on a type a protected column uses; and,
 * for an operator, whatever uses the operator.  Found through pg_depend,
 * following operators up to a few levels.  InvalidOid when none.
 */
static Oid
hp_protected_running(Oid classid, Oid objid, int depth)
{
	Relation	dep;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			found = InvalidOid;
	List	   *operators = NIL;
	List	   *further = NIL;
	List	   *families = NIL;
	ListCell   *lc;

	if (depth > 6)
		return InvalidOid;
	dep = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(classid));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(objid));
	scan = systable_beginscan(dep, DependReferenceIndexId, true, NULL, 2, key);
	while (!OidIsValid(found) && (tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);
		Oid			rel = InvalidOid;

		if (d->classid == RelationRelationId)
		{
			/* an index (expression, predicate) or a table (partition key) */
			rel = get_rel_relkind(d->objid) == RELKIND_INDEX ||
				get_rel_relkind(d->objid) == RELKIND_PARTITIONED_INDEX ?
				IndexGetRelation(d->objid, true) : d->objid;
		}
		else if (d->classid == ConstraintRelationId)
		{
			HeapTuple	ct = SearchSysCache1(CONSTROID, ObjectIdGetDatum(d->objid));

			if (HeapTupleIsValid(ct))
			{
				Form_pg_constraint c = (Form_pg_constraint) GETSTRUCT(ct);

				if (OidIsValid(c->conrelid))
					rel = c->conrelid;
				else if (OidIsValid(c->contypid))
					found = hp_protected_using_type(c->contypid);
				ReleaseSysCache(ct);
			}
		}
		else if (d->classid == AttrDefaultRelationId)
		{
			ObjectAddress a = GetAttrDefaultColumnAddress(d->objid);

			rel = a.objectId;
		}
		else if (d->classid == PolicyRelationId)
		{
			HeapTuple	pt;
			Relation	pol = table_open(PolicyRelationId, AccessShareLock);
			ScanKeyData pk;
			SysScanDesc ps;

			ScanKeyInit(&pk, Anum_pg_policy_oid, BTEqualStrategyNumber, F_OIDEQ,
						ObjectIdGetDatum(d->objid));
			ps = systable_beginscan(pol, PolicyOidIndexId, true, NULL, 1, &pk);
			if ((pt = systable_getnext(ps)) != NULL)
				rel = ((Form_pg_policy) GETSTRUCT(pt))->polrelid;
			systable_endscan(ps);
			table_close(pol, AccessShareLock);
		}
		else if (d->classid == TypeRelationId)
			found = hp_protected_using_type(d->objid);	/* a range type's function */
		else if (d->classid == OperatorRelationId)
			operators = lappend_oid(operators, d->objid);
		else if (d->classid == ProcedureRelationId)
			/* a function whose SQL-standard body calls it */
			further = lappend_oid(further, d->objid);
		else if (d->classid == StatisticExtRelationId)
		{
			HeapTuple	st = SearchSysCache1(STATEXTOID, ObjectIdGetDatum(d->objid));

			if (HeapTupleIsValid(st))
			{
				rel = ((Form_pg_statistic_ext) GETSTRUCT(st))->stxrelid;
				ReleaseSysCache(st);
			}
		}
		else if (d->classid == AccessMethodProcedureRelationId ||
				 d->classid == AccessMethodOperatorRelationId)
		{
			/* a support function or operator of an operator family: every
			 * index using an operator class of the family runs it */
			Oid			family = hp_amproc_family(d->classid, d->objid);

			if (OidIsValid(family))
				families = lappend_oid(families, family);
		}
		if (OidIsValid(rel))
			found = hp_protected_in(rel, false);
	}
	systable_endscan(scan);
	table_close(dep, AccessShareLock);
	foreach(lc, operators)
		if (!OidIsValid(found))
			found = hp_protected_running(OperatorRelationId, lfirst_oid(lc), depth + 1);
	/* an operator whose negator or commutator it is stands in for it */
	if (!OidIsValid(found) && classid == OperatorRelationId)
		found = hp_protected_through_related(objid, depth);
	foreach(lc, further)
		if (!OidIsValid(found))
			found = hp_protected_running(ProcedureRelationId, lfirst_oid(lc), depth + 1);
	foreach(lc, families)
		if (!OidIsValid(found))
			found = hp_protected_using_family(lfirst_oid(lc), depth + 1);
	return found;
}

/* The function a CREATE OR REPLACE FUNCTION would replace, or InvalidOid */
static Oid
hp_function_replaced(CreateFunctionStmt *cf)
{
	Oid			argtypes[FUNC_MAX_ARGS];
	int			nargs = 0;
	ListCell   *lc;

	char	   *name;
	Oid			nsp;

	if (!cf->replace)
		return InvalidOid;
	/* where CREATE would put it (an unqualified name found in pg_catalog is not it) */
	nsp = QualifiedNameGetCreationNamespace(cf->funcname, &name);
	foreach(lc, cf->parameters)
	{
		FunctionParameter *fp = lfirst_node(FunctionParameter, lc);
		Oid			t;

		if (fp->mode == FUNC_PARAM_OUT || fp->mode == FUNC_PARAM_TABLE)
			continue;
		t = LookupTypeNameOid(NULL, fp->argType, true);
		if (!OidIsValid(t) || nargs >= FUNC_MAX_ARGS)
			return InvalidOid;	/* PostgreSQL will say what is wrong */
		argtypes[nargs++] = t;
	}
	return LookupFuncName(list_make2(makeString(get_namespace_name(nsp)), makeString(name)),
						  nargs, argtypes, true);
}

/* A protected table a publication would add (logical decoding sends its
 * rows past the gate) */
static Oid
hp_published_protected(List *pubobjects)
{
	ListCell   *lc;

	foreach(lc, pubobjects)
	{
		PublicationObjSpec *spec = lfirst_node(PublicationObjSpec, lc);
		Oid			on;

		if (spec->pubtable == NULL || spec->pubtable->relation == NULL)
			continue;
		on = hp_protected_in(hp_rangevar_oid(spec->pubtable->relation), true);
		if (OidIsValid(on))
			return on;
	}
	return InvalidOid;
}

/* Set hp_cmd_* for node (see hp_role_may_run) */
static void
hp_ddl_command(Node *node)
{
	RangeVar   *rv = NULL;

	hp_cmd_named = InvalidOid;
	hp_cmd_priv = 0;
	hp_cmd_type = InvalidOid;
	hp_cmd_wide = false;
	switch (nodeTag(node))
	{
		case T_AlterTableStmt:
			rv = ((AlterTableStmt *) node)->relation;
			break;
		case T_IndexStmt:
			rv = ((IndexStmt *) node)->relation;
			break;
		case T_ReindexStmt:
			rv = ((ReindexStmt *) node)->relation;	/* the index's owner is its table's */
			hp_cmd_wide = (rv == NULL);
			break;
		case T_VacuumStmt:
			hp_cmd_wide = true;
			break;
		case T_ClusterStmt:
			rv = ((ClusterStmt *) node)->relation;
			hp_cmd_wide = (rv == NULL);
			break;
		case T_CreateStatsStmt:
			{
				CreateStatsStmt *cs = (CreateStatsStmt *) node;

				if (list_length(cs->relations) == 1 && IsA(linitial(cs->relations), RangeVar))
					rv = linitial(cs->relations);
				break;
			}
		case T_CreateTrigStmt:
			rv = ((CreateTrigStmt *) node)->relation;
			hp_cmd_priv = ACL_TRIGGER;
			break;
		case T_RuleStmt:
			rv = ((RuleStmt *) node)->relation;
			break;
		case T_CreatePolicyStmt:
			rv = ((CreatePolicyStmt *) node)->table;
			break;
		case T_AlterPolicyStmt:
			rv = ((AlterPolicyStmt *) node)->table;
			break;
		case T_AlterDomainStmt:
			{
				AlterDomainStmt *ad = (AlterDomainStmt *) node;
				Type		typ = LookupTypeName(NULL, makeTypeNameFromNameList(ad->typeName), NULL, true);

				if (typ != NULL)
				{
					hp_cmd_type = typeTypeId(typ);
					ReleaseSysCache(typ);
				}
				break;
			}
		default:
			/* CREATE TABLE ... INHERITS, publications: the table's owner */
			break;
	}
	hp_cmd_named = hp_rangevar_oid(rv);
}

/*
 * Refuse DDL that would read around the gate; called by the utility hook
 * before the statement runs, for every role but superusers.
 */
void
hp_ddl_check(PlannedStmt *pstmt)
{
	Node	   *node = pstmt->utilityStmt;
	Oid			on = InvalidOid;
	const char *what = NULL;

	/*
	 * Transaction control and SET TRANSACTION touch no table.  They must not
	 * read the policy either: reading it takes the transaction's snapshot,
	 * after which BEGIN ISOLATION LEVEL ... or SET TRANSACTION ISOLATION
	 * LEVEL as a session's first statement fails (test/t/072_signing_memo.pl)
	 */
	if (IsA(node, TransactionStmt) ||
		(IsA(node, VariableSetStmt) && ((VariableSetStmt *) node)->kind == VAR_SET_MULTI))
		return;
	if (superuser())
		return;
	hp_check_audit_locks(node);
	hp_check_extension(node);
	if (!hp_any_protected())
		return;
	hp_ddl_command(node);
	switch (nodeTag(node))
	{
		case T_AlterTableStmt:
			hp_check_alter_table((AlterTableStmt *) node);
			break;
		case T_IndexStmt:
			hp_check_index((IndexStmt *) node);
			break;
		case T_ReindexStmt:
			hp_check_reindex((ReindexStmt *) node);
			break;
		case T_VacuumStmt:
			hp_check_vacuum((VacuumStmt *) node);
			break;
		case T_ClusterStmt:
			{
				ClusterStmt *cs = (ClusterStmt *) node;

				on = cs->relation ?
					hp_protected_with_expression_index(hp_rangevar_oid(cs->relation), true) :
					hp_any_protected_with_expression_index(InvalidOid);
				what = "CLUSTER of a table with expression, partial or invalid unique indexes";
				break;
			}
		case T_CreateStatsStmt:
			{
				CreateStatsStmt *cs = (CreateStatsStmt *) node;
				ListCell   *lc;
				bool		exprs = false;

				foreach(lc, cs->exprs)
					if (IsA(lfirst(lc), StatsElem) && ((StatsElem *) lfirst(lc))->expr)
						exprs = true;
				if (exprs && list_length(cs->relations) == 1 &&
					IsA(linitial(cs->relations), RangeVar))
					on = hp_protected_in(hp_rangevar_oid(linitial(cs->relations)), true);
				what = "CREATE STATISTICS with expressions";
				break;
			}
		case T_CreateTrigStmt:
			on = hp_protected_in(hp_rangevar_oid(((CreateTrigStmt *) node)->relation), true);
			what = "CREATE TRIGGER";
			break;
		case T_RuleStmt:
			on = hp_protected_in(hp_rangevar_oid(((RuleStmt *) node)->relation), false);
			what = "CREATE RULE";
			break;
		case T_CreatePolicyStmt:
			on = hp_protected_in(hp_rangevar_oid(((CreatePolicyStmt *) node)->table), false);
			what = "CREATE POLICY";
			break;
		case T_AlterPolicyStmt:
			on = hp_protected_in(hp_rangevar_oid(((AlterPolicyStmt *) node)->table), false);
			what = "ALTER POLICY";
			break;
		case T_CreateStmt:
		case T_CreateForeignTableStmt:
			hp_check_create_table((CreateStmt *) node);
			break;
		case T_AlterDomainStmt:
			{
				AlterDomainStmt *ad = (AlterDomainStmt *) node;

				if ((ad->subtype == 'C' && ad->def && IsA(ad->def, Constraint) &&
					 ((Constraint *) ad->def)->contype == CONSTR_CHECK) ||
					ad->subtype == 'V')
				{
					Oid			typid = typenameTypeId(NULL, makeTypeNameFromNameList(ad->typeName));

					on = hp_protected_using_type(typid);
					what = ad->subtype == 'V' ? "ALTER DOMAIN ... VALIDATE CONSTRAINT of a column's domain" :
						"ALTER DOMAIN ... ADD CONSTRAINT ... CHECK of a column's domain";
				}
				break;
			}
		case T_DropStmt:
			{
				/*
				 * The only triggers on a protected table are internal: the
				 * write-probe trigger (probe.c), which PostgreSQL lets the
				 * owner drop, and foreign keys' (dropped with their key)
				 */
				DropStmt   *ds = (DropStmt *) node;
				ListCell   *lc;

				if (ds->removeType == OBJECT_TRIGGER)
					foreach(lc, ds->objects)
						if (!OidIsValid(on))
							on = hp_protected_in(hp_drop_on_relation(lfirst(lc)), false);
				what = "DROP TRIGGER";
				break;
			}
		case T_RenameStmt:
			{
				RenameStmt *rs = (RenameStmt *) node;

				if (rs->renameType == OBJECT_TRIGGER)
					on = hp_protected_in(hp_rangevar_oid(rs->relation), false);
				what = "ALTER TRIGGER ... RENAME";
				break;
			}
		case T_AlterObjectDependsStmt:
			{
				AlterObjectDependsStmt *ad = (AlterObjectDependsStmt *) node;

				if (ad->objectType == OBJECT_TRIGGER)
					on = hp_protected_in(hp_rangevar_oid(ad->relation), false);
				what = "ALTER TRIGGER ... DEPENDS ON EXTENSION";
				break;
			}
		case T_CreateFunctionStmt:
			{
				/*
				 * A function a protected table's objects run was accepted as
				 * LEAKPROOF (a superuser marked it so) or judged harmless;
				 * its owner may replace its body, or drop LEAKPROOF, without
				 * a superuser.  Then ANALYZE, a CHECK, a generated column or
				 * a predicate runs the new code over rows (a red-team pass
				 * read every row so)
				 */
				Oid			f = hp_function_replaced((CreateFunctionStmt *) node);

				if (OidIsValid(f) && pg_proc_ownercheck(f, GetUserId()))
					hp_ddl_refuse_function(hp_protected_running(ProcedureRelationId, f, 0),
										   "CREATE OR REPLACE FUNCTION of a function a protected table runs");
				break;
			}
		case T_DefineStmt:
			{
				/*
				 * CREATE OPERATOR ... NEGATOR / COMMUTATOR = an operator a
				 * protected table runs fills that operator's oprnegate /
				 * oprcom, and the planner may then run the new one in its
				 * place (a reviewer's)
				 */
				DefineStmt *ds = (DefineStmt *) node;
				TypeName   *left = NULL,
						   *right = NULL;
				ListCell   *lc;

				if (ds->kind != OBJECT_OPERATOR)
					break;
				foreach(lc, ds->definition)
				{
					DefElem    *de = lfirst_node(DefElem, lc);

					if (strcmp(de->defname, "leftarg") == 0)
						left = defGetTypeName(de);
					else if (strcmp(de->defname, "rightarg") == 0)
						right = defGetTypeName(de);
				}
				foreach(lc, ds->definition)
				{
					DefElem    *de = lfirst_node(DefElem, lc);
					bool		neg = strcmp(de->defname, "negator") == 0;
					Oid			l = left ? LookupTypeNameOid(NULL, left, true) : InvalidOid;
					Oid			r = right ? LookupTypeNameOid(NULL, right, true) : InvalidOid;
					Oid			other;

					if (!neg && strcmp(de->defname, "commutator") != 0)
						continue;
					other = LookupOperName(NULL, defGetQualifiedName(de),
										   neg ? l : r, neg ? r : l, true, -1);
					/* PostgreSQL lets only the other operator's owner link it */
					if (OidIsValid(other) && pg_oper_ownercheck(other, GetUserId()))
						hp_ddl_refuse_function(hp_protected_running(OperatorRelationId, other, 0),
											   "CREATE OPERATOR ... NEGATOR / COMMUTATOR of an operator a protected table runs");
				}
				break;
			}
		case T_AlterFunctionStmt:
			{
				Oid			f = LookupFuncWithArgs(((AlterFunctionStmt *) node)->objtype,
												   ((AlterFunctionStmt *) node)->func, true);

				if (OidIsValid(f) && pg_proc_ownercheck(f, GetUserId()))
					hp_ddl_refuse_function(hp_protected_running(ProcedureRelationId, f, 0),
										   "ALTER FUNCTION of a function a protected table runs");
				break;
			}
		case T_CreatePublicationStmt:
			on = hp_published_protected(((CreatePublicationStmt *) node)->pubobjects);
			what = "CREATE PUBLICATION";
			break;
		case T_AlterPublicationStmt:
			{
				AlterPublicationStmt *ap = (AlterPublicationStmt *) node;

				if (ap->action != AP_DropObjects)
					on = hp_published_protected(ap->pubobjects);
				what = "ALTER PUBLICATION ... ADD / SET TABLE";
				break;
			}
		default:
			break;
	}
	if (what && OidIsValid(on))
		hp_ddl_refuse(on, what);
}

/*
 * row_security_policy_hook_permissive: a policy "true" for every command
 * and role on a protected table that had no row security of its own.  Row
 * security is on (protect() forces it) only so that the statistics views
 * hide the table; which rows a role reads is the gate's decision.
 */
static List *
hp_rls_policy(CmdType cmdtype, Relation relation)
{
	List	   *policies = NIL;
	static RowSecurityPolicy *policy = NULL;

	if (prev_rls_permissive)
		policies = prev_rls_permissive(cmdtype, relation);
	if (!hp_any_protected() || !hp_protected_needs_policy(RelationGetRelid(relation)))
		return policies;
	if (policy == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		Datum		role = ObjectIdGetDatum(ACL_ID_PUBLIC);
		RowSecurityPolicy *p = palloc0(sizeof(RowSecurityPolicy));

		p->policy_name = pstrdup("health_pass");
		p->polcmd = '*';
		p->roles = construct_array(&role, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
		p->permissive = true;
		p->qual = (Expr *) makeBoolConst(true, false);
		p->with_check_qual = (Expr *) makeBoolConst(true, false);
		p->hassublinks = false;
		MemoryContextSwitchTo(old);
		policy = p;
	}
	return lappend(policies, policy);
}

void
hp_ddl_init(void)
{
	prev_rls_permissive = row_security_policy_hook_permissive;
	row_security_policy_hook_permissive = hp_rls_policy;
}

PG_FUNCTION_INFO_V1(hp_row_security);

/*
 * health_pass._row_security(tbl, enable, force): set a table's row
 * security flags as ALTER TABLE ... ENABLE/FORCE ROW LEVEL SECURITY would,
 * whoever owns the table.  Used by protect() and unprotect() only (no
 * EXECUTE for PUBLIC).
 */
Datum
hp_row_security(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		enable = PG_GETARG_BOOL(1);
	bool		force = PG_GETARG_BOOL(2);
	Relation	classrel;
	HeapTuple	tup;
	Form_pg_class form;

	/* the lock ALTER TABLE ... ROW LEVEL SECURITY takes */
	LockRelationOid(relid, AccessExclusiveLock);
	classrel = table_open(RelationRelationId, RowExclusiveLock);
	tup = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	form = (Form_pg_class) GETSTRUCT(tup);
	if (form->relrowsecurity != enable || form->relforcerowsecurity != force)
	{
		form->relrowsecurity = enable;
		form->relforcerowsecurity = force;
		CatalogTupleUpdate(classrel, &tup->t_self, tup);
	}
	heap_freetuple(tup);
	table_close(classrel, RowExclusiveLock);
	CacheInvalidateRelcacheByRelid(relid);
	PG_RETURN_VOID();
}

/* Does this stored expression pass a column to a non-LEAKPROOF function? */
/*
 * An operator in node whose negator or commutator runs a function that is
 * not LEAKPROOF: the planner may put them in its place (NOT (a === b)
 * becomes a !== b when a CHECK or a predicate is prepared: a reviewer's)
 */
static bool
hp_related_op_leaky_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, OpExpr) || IsA(node, DistinctExpr) || IsA(node, NullIfExpr) ||
		IsA(node, ScalarArrayOpExpr))
	{
		Oid			opno = IsA(node, ScalarArrayOpExpr) ? ((ScalarArrayOpExpr *) node)->opno :
			((OpExpr *) node)->opno;
		Oid			related[2] = {get_negator(opno), get_commutator(opno)};

		for (int i = 0; i < 2; i++)
			if (OidIsValid(related[i]) && !hp_func_leakproof(get_opcode(related[i])))
				return true;
	}
	return expression_tree_walker(node, hp_related_op_leaky_walker, context);
}

static bool
hp_leaky_text(Datum d)
{
	char	   *s = TextDatumGetCString(d);
	Node	   *expr = stringToNode(s);

	pfree(s);
	return contain_leaked_vars(expr) || hp_related_op_leaky_walker(expr, NULL) ||
		hp_runs_untrusted_leakproof(expr);
}

/*
 * Call each(cat, row, ctx) for the rows of a catalog whose column keycol
 * equals oid, through index (InvalidOid: a scan of the catalog)
 */
static void
hp_catalog_rows(Oid catalog, Oid index, AttrNumber keycol, Oid oid,
				void (*each) (Relation cat, HeapTuple tup, void *ctx), void *ctx)
{
	Relation	cat = table_open(catalog, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key, keycol, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(oid));
	scan = systable_beginscan(cat, index, OidIsValid(index), NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		each(cat, tup, ctx);
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
}

typedef struct BlockerScan
{
	List	  **out;
	const char *(*describe) (Relation cat, HeapTuple tup);
} BlockerScan;

static void
hp_blocker_row(Relation cat, HeapTuple tup, void *ctx)
{
	BlockerScan *b = (BlockerScan *) ctx;
	const char *why = b->describe(cat, tup);

	if (why)
		*b->out = lappend(*b->out, (void *) why);
}

/* The blockers describe() finds among the rows of a catalog that name relid */
static void
hp_blockers_of(Oid catalog, Oid index, AttrNumber keycol, Oid relid,
			   List **out, const char *(*describe) (Relation cat, HeapTuple tup))
{
	BlockerScan b = {out, describe};

	hp_catalog_rows(catalog, index, keycol, relid, hp_blocker_row, &b);
}

static const char *
hp_trigger_blocker(Relation cat, HeapTuple tup)
{
	Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);

	if (t->tgisinternal)
		return NULL;
	return psprintf("trigger %s", quote_identifier(NameStr(t->tgname)));
}

static const char *
hp_rule_blocker(Relation cat, HeapTuple tup)
{
	return psprintf("rule %s",
					quote_identifier(NameStr(((Form_pg_rewrite) GETSTRUCT(tup))->rulename)));
}

/*
 * Does operator class opclass's family have a user-defined support function
 * the gate does not trust as LEAKPROOF?  An index's comparison function sees
 * every key it passes while it looks for a match, before the gate (a
 * reviewer's btree operator class with a leaky FUNCTION 1 printed the
 * subjects next to the one asked for).  Only superusers create operator
 * classes; this keeps a leaky one off protected tables.
 */
static bool
hp_opclass_untrusted(Oid opclass)
{
	Oid			family = get_opclass_family(opclass);
	Relation	cat;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(family))
		return false;
	cat = table_open(AccessMethodProcedureRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_amproc_amprocfamily, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(family));
	scan = systable_beginscan(cat, AccessMethodProcedureIndexId, true, NULL, 1, &key);
	while (!found && (tup = systable_getnext(scan)) != NULL)
	{
		Oid			proc = ((Form_pg_amproc) GETSTRUCT(tup))->amproc;
		HeapTuple	pt;

		if (proc < FirstNormalObjectId || hp_func_leakproof(proc))
			continue;
		/*
		 * C and internal support functions come from extensions a superuser
		 * installed (btree_gist, pg_trgm), like the built-in ones, which are
		 * seldom marked LEAKPROOF either; a PL one is the owner's code
		 */
		pt = SearchSysCache1(PROCOID, ObjectIdGetDatum(proc));
		if (HeapTupleIsValid(pt))
		{
			Oid			lang = ((Form_pg_proc) GETSTRUCT(pt))->prolang;

			found = lang != ClanguageId && lang != INTERNALlanguageId;
			ReleaseSysCache(pt);
		}
	}
	systable_endscan(scan);
	table_close(cat, AccessShareLock);
	return found;
}

static const char *
hp_index_blocker(Relation cat, HeapTuple tup)
{
	Form_pg_index ix = (Form_pg_index) GETSTRUCT(tup);
	bool		isnull;
	Datum		d;

	d = heap_getattr(tup, Anum_pg_index_indclass, RelationGetDescr(cat), &isnull);
	if (!isnull)
	{
		oidvector  *classes = (oidvector *) DatumGetPointer(d);

		for (int i = 0; i < classes->dim1; i++)
			if (hp_opclass_untrusted(classes->values[i]))
				return psprintf("index %s (an operator class with a non-leakproof support function)",
								quote_identifier(get_rel_name(ix->indexrelid)));
	}

	if (!heap_attisnull(tup, Anum_pg_index_indexprs, NULL))
		return psprintf("index %s (expressions)",
						quote_identifier(get_rel_name(ix->indexrelid)));
	d = heap_getattr(tup, Anum_pg_index_indpred, RelationGetDescr(cat), &isnull);
	if (!isnull && hp_leaky_text(d))
		return psprintf("index %s (predicate with a non-leakproof function)",
						quote_identifier(get_rel_name(ix->indexrelid)));
	return NULL;
}

static const char *
hp_constraint_blocker(Relation cat, HeapTuple tup)
{
	Form_pg_constraint c = (Form_pg_constraint) GETSTRUCT(tup);
	bool		isnull;
	Datum		d;

	if (c->contype != CONSTRAINT_CHECK)
		return NULL;
	d = heap_getattr(tup, Anum_pg_constraint_conbin, RelationGetDescr(cat), &isnull);
	if (!isnull && hp_leaky_text(d))
		return psprintf("constraint %s (CHECK with a non-leakproof function)",
						quote_identifier(NameStr(c->conname)));
	return NULL;
}

static const char *
hp_attrdef_blocker(Relation cat, HeapTuple tup)
{
	Form_pg_attrdef ad = (Form_pg_attrdef) GETSTRUCT(tup);
	bool		isnull;
	Datum		d;
	HeapTuple	att = SearchSysCache2(ATTNUM, ObjectIdGetDatum(ad->adrelid),
									  Int16GetDatum(ad->adnum));
	bool		generated = false;
	char	   *name = NULL;

	if (HeapTupleIsValid(att))
	{
		generated = ((Form_pg_attribute) GETSTRUCT(att))->attgenerated != '\0';
		name = pstrdup(NameStr(((Form_pg_attribute) GETSTRUCT(att))->attname));
		ReleaseSysCache(att);
	}
	if (!generated)
		return NULL;
	d = heap_getattr(tup, Anum_pg_attrdef_adbin, RelationGetDescr(cat), &isnull);
	if (!isnull && hp_leaky_text(d))
		return psprintf("generated column %s (a non-leakproof function)",
						quote_identifier(name ? name : "?"));
	return NULL;
}

static const char *
hp_policy_blocker(Relation cat, HeapTuple tup)
{
	Form_pg_policy p = (Form_pg_policy) GETSTRUCT(tup);
	bool		isnull;
	Datum		d;

	d = heap_getattr(tup, Anum_pg_policy_polqual, RelationGetDescr(cat), &isnull);
	if (!isnull && hp_leaky_text(d))
		return psprintf("policy %s (a non-leakproof function)",
						quote_identifier(NameStr(p->polname)));
	d = heap_getattr(tup, Anum_pg_policy_polwithcheck, RelationGetDescr(cat), &isnull);
	if (!isnull && hp_leaky_text(d))
		return psprintf("policy %s (a non-leakproof function)",
						quote_identifier(NameStr(p->polname)));
	return NULL;
}

static const char *
hp_statistics_blocker(Relation cat, HeapTuple tup)
{
	if (heap_attisnull(tup, Anum_pg_statistic_ext_stxexprs, NULL))
		return NULL;
	return psprintf("statistics object %s (expressions)",
					quote_identifier(NameStr(((Form_pg_statistic_ext) GETSTRUCT(tup))->stxname)));
}

static const char *
hp_partkey_blocker(Relation cat, HeapTuple tup)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_pg_partitioned_table_partexprs,
								 RelationGetDescr(cat), &isnull);

	if (!isnull && hp_leaky_text(d))
		return "partition key (a non-leakproof function)";
	return NULL;
}

/* A user-defined function that is not LEAKPROOF (built-in ones send nothing elsewhere) */
static bool
hp_user_leaky_function(Oid fn)
{
	return OidIsValid(fn) && fn >= FirstNormalObjectId && !hp_func_leakproof(fn);
}

static bool
hp_user_leaky_checker(Oid fn, void *context)
{
	return hp_user_leaky_function(fn);
}

/*
 * Does the expression call a user's non-LEAKPROOF function?  (Built-in
 * ones send a value nowhere: their errors go to the role that wrote it.)
 */
static bool
hp_user_leaky_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, hp_user_leaky_checker, context))
		return true;
	return expression_tree_walker(node, hp_user_leaky_walker, context);
}

static const char *hp_type_hazard(Oid typid, int depth);

/*
 * Why a value of type typid runs user code that may send it elsewhere, or
 * NULL: a domain CHECK calling a user's non-LEAKPROOF function (run on
 * every value another role writes, by the domain's owner's code), a range
 * type whose subtype_diff, canonical or subtype comparison function is a
 * user's non-LEAKPROOF one (run by ANALYZE, GiST, and on every range
 * built); through arrays, multiranges, composites and domains over them.
 * Built-in functions pass (a regular expression or a length in a CHECK
 * sends the value nowhere); nesting deeper than 8 levels is refused.
 */
static const char *
hp_type_hazard(Oid typid, int depth)
{
	HeapTuple	tup;
	Form_pg_type t;
	const char *why = NULL;
	char	   *name;

	if (!OidIsValid(typid))
		return NULL;
	if (depth > 8)
		return "a type nested more than 8 levels deep (domains, arrays, ranges, composites)";
	check_stack_depth();
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		return NULL;
	t = (Form_pg_type) GETSTRUCT(tup);
	name = pstrdup(NameStr(t->typname));
	if (t->typtype == TYPTYPE_DOMAIN)
	{
		Relation	cat = table_open(ConstraintRelationId, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	c;

		ScanKeyInit(&key, Anum_pg_constraint_contypid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(typid));
		scan = systable_beginscan(cat, ConstraintTypidIndexId, true, NULL, 1, &key);
		while (why == NULL && HeapTupleIsValid(c = systable_getnext(scan)))
		{
			bool		isnull;
			Datum		d;

			if (((Form_pg_constraint) GETSTRUCT(c))->contype != CONSTRAINT_CHECK)
				continue;
			d = heap_getattr(c, Anum_pg_constraint_conbin, RelationGetDescr(cat), &isnull);
			if (!isnull && hp_user_leaky_walker(stringToNode(TextDatumGetCString(d)), NULL))
				why = psprintf("domain %s (CHECK with a user's non-leakproof function)",
							   quote_identifier(name));
		}
		systable_endscan(scan);
		table_close(cat, AccessShareLock);
		if (why == NULL)
			why = hp_type_hazard(t->typbasetype, depth + 1);
	}
	else if (t->typtype == TYPTYPE_RANGE)
	{
		HeapTuple	r = SearchSysCache1(RANGETYPE, ObjectIdGetDatum(typid));

		if (HeapTupleIsValid(r))
		{
			Form_pg_range rng = (Form_pg_range) GETSTRUCT(r);
			Oid			cmp = get_opfamily_proc(get_opclass_family(rng->rngsubopc),
												rng->rngsubtype, rng->rngsubtype, BTORDER_PROC);

			if (hp_user_leaky_function(rng->rngsubdiff) ||
				hp_user_leaky_function(rng->rngcanonical) || hp_user_leaky_function(cmp))
				why = psprintf("range type %s (a non-leakproof subtype_diff, canonical or comparison function)",
							   quote_identifier(name));
			else
				why = hp_type_hazard(rng->rngsubtype, depth + 1);
			ReleaseSysCache(r);
		}
	}
	else if (t->typtype == TYPTYPE_MULTIRANGE)
		why = hp_type_hazard(get_multirange_range(typid), depth + 1);
	else if (t->typtype == TYPTYPE_COMPOSITE && OidIsValid(t->typrelid))
	{
		Relation	rel = try_relation_open(t->typrelid, AccessShareLock);

		for (int i = 0; rel != NULL && why == NULL && i < RelationGetDescr(rel)->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);

			if (!att->attisdropped)
				why = hp_type_hazard(att->atttypid, depth + 1);
		}
		if (rel != NULL)
			relation_close(rel, AccessShareLock);
	}
	else if (OidIsValid(t->typelem) && t->typlen == -1)
		why = hp_type_hazard(t->typelem, depth + 1);	/* an array */
	ReleaseSysCache(tup);
	return why;
}

/* The columns of relid whose type is a hazard */
static void
hp_column_type_blockers(Oid relid, List **out)
{
	Relation	rel = relation_open(relid, AccessShareLock);

	for (int i = 0; i < RelationGetDescr(rel)->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);
		const char *why;

		if (att->attisdropped)
			continue;
		why = hp_type_hazard(att->atttypid, 0);
		if (why)
			*out = lappend(*out, psprintf("column %s: %s",
										  quote_identifier(NameStr(att->attname)), why));
	}
	relation_close(rel, AccessShareLock);
}

/*
 * Foreign keys that reference relid from a table that is not protected and
 * either are NOT VALID (their rows were never checked, so they may be
 * guesses) or have an ON DELETE / ON UPDATE action that writes the
 * referencing table (CASCADE, SET NULL, SET DEFAULT).  Through such an
 * action and a trigger on its own table, the referencing table's owner sees
 * which keys other roles delete or change here, with no record; and a key
 * added with ADD COLUMN ... REFERENCES is marked valid though an identity
 * column or a domain's default filled its rows unchecked (a reviewer's
 * sequence: the key made while this table was not protected, then the
 * table attached to a protected one).
 */
static const char *
hp_watching_blocker(Relation cat, HeapTuple tup)
{
	Form_pg_constraint c = (Form_pg_constraint) GETSTRUCT(tup);
	bool		writes = c->confdeltype == FKCONSTR_ACTION_CASCADE ||
		c->confdeltype == FKCONSTR_ACTION_SETNULL ||
		c->confdeltype == FKCONSTR_ACTION_SETDEFAULT ||
		c->confupdtype == FKCONSTR_ACTION_CASCADE ||
		c->confupdtype == FKCONSTR_ACTION_SETNULL ||
		c->confupdtype == FKCONSTR_ACTION_SETDEFAULT;

	/* the table itself, or another one already protected, watches nothing */
	if (c->contype != CONSTRAINT_FOREIGN || c->conrelid == c->confrelid ||
		hp_protected_attnum(c->conrelid) > 0)
		return NULL;
	if (!c->convalidated)
		return psprintf("foreign key %s of table %s (NOT VALID, referencing it)",
						quote_identifier(NameStr(c->conname)),
						quote_identifier(get_rel_name(c->conrelid)));
	if (writes)
		return psprintf("foreign key %s of table %s (its ON DELETE / ON UPDATE action writes that table)",
						quote_identifier(NameStr(c->conname)),
						quote_identifier(get_rel_name(c->conrelid)));
	return NULL;
}

/*
 * Foreign keys that an ALTER TABLE made into a protected table, checked
 * after it ran.  The checks before it (hp_check_alter_table) look the
 * referenced table up by name, and PostgreSQL looks it up again when it
 * adds the key; in between, an earlier subcommand may run the owner's code
 * (an ADD COLUMN's default is evaluated once), which may change
 * search_path: a reviewer named an unprotected decoy when the check ran and
 * got a NOT VALID key into the protected table of the same name.  So the
 * foreign keys of the altered table (and its partitions) are listed before
 * the statement, and every new one that references a protected table is
 * refused unless the statement was nothing but validated ADD FOREIGN KEYs
 * (CREATE TABLE's own, on its empty table, count as validated).
 */
static void
hp_fk_row(Relation cat, HeapTuple tup, void *ctx)
{
	List	  **out = (List **) ctx;

	if (((Form_pg_constraint) GETSTRUCT(tup))->contype == CONSTRAINT_FOREIGN)
		*out = lappend_oid(*out, ((Form_pg_constraint) GETSTRUCT(tup))->oid);
}

static void
hp_fk_collect(Oid relid, List **out)
{
	hp_catalog_rows(ConstraintRelationId, ConstraintRelidTypidNameIndexId,
					Anum_pg_constraint_conrelid, relid, hp_fk_row, out);
}

/* The foreign keys of table relid and of its inheritors */
static List *
hp_fk_of_table(Oid relid)
{
	List	   *out = NIL;
	ListCell   *lc;

	if (has_subclass(relid))
	{
		foreach(lc, find_all_inheritors(relid, NoLock, NULL))
			hp_fk_collect(lfirst_oid(lc), &out);
	}
	else
		hp_fk_collect(relid, &out);
	return out;
}

/* Was the statement nothing but ADD FOREIGN KEYs that validate their rows? */
static bool
hp_only_validated_keys(AlterTableStmt *at)
{
	ListCell   *lc;

	foreach(lc, at->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);
		Constraint *c = (cmd->def && IsA(cmd->def, Constraint)) ? (Constraint *) cmd->def : NULL;

		if ((cmd->subtype != AT_AddConstraint && cmd->subtype != AT_AddConstraintRecurse) ||
			c == NULL || c->contype != CONSTR_FOREIGN ||
			(c->skip_validation && !c->initially_valid))
			return false;
	}
	return true;
}

/*
 * Before an ALTER TABLE of a table by a role that is not a superuser: the
 * table (as named now: afterwards search_path may differ), then its
 * foreign keys
 */
List *
hp_ddl_fk_before(Node *node)
{
	AlterTableStmt *at = (AlterTableStmt *) node;
	Oid			relid;

	if (!IsA(node, AlterTableStmt) || at->objtype != OBJECT_TABLE || superuser() ||
		!hp_any_protected())
		return NIL;
	relid = hp_rangevar_oid(at->relation);
	if (!OidIsValid(relid))
		return NIL;
	return lcons_oid(relid, hp_fk_of_table(relid));
}

/* After it: refuse a new foreign key into a protected table it may not add */
void
hp_ddl_fk_after(Node *node, List *before)
{
	AlterTableStmt *at = (AlterTableStmt *) node;
	bool		validated;
	ListCell   *lc;

	if (before == NIL)
		return;
	validated = hp_only_validated_keys(at);
	foreach(lc, hp_fk_of_table(linitial_oid(before)))
	{
		Oid			con = lfirst_oid(lc);
		HeapTuple	tup;
		Oid			pk;
		const char *watches;

		if (list_member_oid(before, con))
			continue;
		tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(con));
		if (!HeapTupleIsValid(tup))
			continue;
		pk = hp_protected_in(((Form_pg_constraint) GETSTRUCT(tup))->confrelid, true);
		/*
		 * Validated or not, a key whose ON DELETE / ON UPDATE action writes
		 * an unprotected table keeps showing its owner which keys other
		 * roles delete, and the new values of keys they change, also after
		 * its rule is gone (a reviewer's): the key protect() refuses
		 * (hp_watching_blocker), refused here too
		 */
		watches = OidIsValid(pk) ? hp_watching_blocker(NULL, tup) : NULL;
		ReleaseSysCache(tup);
		if (OidIsValid(pk) && !validated)
			hp_ddl_refused(pk, "ALTER TABLE that adds a foreign key referencing it without checking the rows",
						   "Add the foreign key in an ALTER TABLE of its own, without NOT VALID.");
		if (watches != NULL)
			hp_ddl_refused(pk, "a new foreign key whose ON DELETE / ON UPDATE action writes the referencing table",
						   "Use ON DELETE / ON UPDATE NO ACTION or RESTRICT; or protect the referencing table too.");
	}
}

PG_FUNCTION_INFO_V1(hp_protect_blockers);

/*
 * health_pass._protect_blockers(tbl) → SETOF text: the objects on tbl that
 * would run user code over its rows, outside the gate, once protected:
 * triggers and rules (any), expression indexes (their statistics are in
 * pg_stats, which row security does not hide for indexes), statistics
 * objects with expressions, and partial indexes, CHECK constraints,
 * generated columns, policies and partition keys whose expressions pass a
 * column to a non-LEAKPROOF function.
 */
Datum
hp_protect_blockers(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *found = NIL;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	hp_blockers_of(TriggerRelationId, TriggerRelidNameIndexId, Anum_pg_trigger_tgrelid,
				   relid, &found, hp_trigger_blocker);
	hp_blockers_of(RewriteRelationId, RewriteRelRulenameIndexId, Anum_pg_rewrite_ev_class,
				   relid, &found, hp_rule_blocker);
	hp_blockers_of(IndexRelationId, IndexIndrelidIndexId, Anum_pg_index_indrelid,
				   relid, &found, hp_index_blocker);
	hp_blockers_of(ConstraintRelationId, ConstraintRelidTypidNameIndexId,
				   Anum_pg_constraint_conrelid, relid, &found, hp_constraint_blocker);
	hp_blockers_of(AttrDefaultRelationId, AttrDefaultIndexId, Anum_pg_attrdef_adrelid,
				   relid, &found, hp_attrdef_blocker);
	hp_blockers_of(PolicyRelationId, PolicyPolrelidPolnameIndexId, Anum_pg_policy_polrelid,
				   relid, &found, hp_policy_blocker);
	hp_blockers_of(StatisticExtRelationId, StatisticExtRelidIndexId,
				   Anum_pg_statistic_ext_stxrelid, relid, &found, hp_statistics_blocker);
	hp_blockers_of(PartitionedRelationId, PartitionedRelidIndexId,
				   Anum_pg_partitioned_table_partrelid, relid, &found, hp_partkey_blocker);
	hp_column_type_blockers(relid, &found);
	/* pg_constraint has no index on confrelid: a scan of it */
	hp_blockers_of(ConstraintRelationId, InvalidOid, Anum_pg_constraint_confrelid,
				   relid, &found, hp_watching_blocker);
	foreach(lc, found)
	{
		Datum		v = CStringGetTextDatum((const char *) lfirst(lc));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	return (Datum) 0;
}
