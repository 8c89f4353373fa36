/*
 * statistics.c
 *    Keep subject values of protected tables out of pg_statistic.  ANALYZE
 *    stores a sample of each column's values (most common values, histogram
 *    bounds), and pg_stats shows them to every role with SELECT on the
 *    column, past the access rules and the audit log.  protect() sets the
 *    subject column's statistics target to 0 and deletes what ANALYZE had
 *    stored; unprotect() gives the column the default target back.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/heap.h"
#include "catalog/indexing.h"
#include "catalog/pg_attribute.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"


PG_FUNCTION_INFO_V1(hp_subject_statistics);

/*
 * health_pass._subject_statistics(tbl, attnum, hide): hide (target 0, stored
 * statistics deleted) or restore (default target) the statistics of one
 * column.  Callable only by the extension owner: protect() and unprotect()
 * check the caller; the table's owner need not be the caller.
 */
Datum
hp_subject_statistics(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	AttrNumber	attnum = PG_GETARG_INT16(1);
	bool		hide = PG_GETARG_BOOL(2);
	Relation	attrel;
	HeapTuple	tup;
	Form_pg_attribute att;

	/* the lock ALTER TABLE ... SET STATISTICS takes: ANALYZE waits for us */
	LockRelationOid(relid, ShareUpdateExclusiveLock);
	attrel = table_open(AttributeRelationId, RowExclusiveLock);
	tup = SearchSysCacheCopy2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
	/* unprotect() of a table whose subject column a superuser dropped */
	if (!hide && (!HeapTupleIsValid(tup) || ((Form_pg_attribute) GETSTRUCT(tup))->attisdropped))
	{
		if (HeapTupleIsValid(tup))
			heap_freetuple(tup);
		table_close(attrel, RowExclusiveLock);
		PG_RETURN_VOID();
	}
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column %d of relation %u does not exist", attnum, relid)));
	att = (Form_pg_attribute) GETSTRUCT(tup);
	if (att->attnum <= 0 || att->attisdropped)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column %d of table \"%s\" does not exist", attnum, get_rel_name(relid))));
	att->attstattarget = hide ? 0 : -1;
	CatalogTupleUpdate(attrel, &tup->t_self, tup);
	heap_freetuple(tup);
	table_close(attrel, RowExclusiveLock);
	if (hide)
		RemoveStatistics(relid, attnum);
	PG_RETURN_VOID();
}
