/*
 * event.c
 *    Records of events that are not reads: a pass issued, a pass revoked.
 *    They go through the same queue, writer and hash chain as reads, and the
 *    caller does not go on before its record is durable: a signed pass or a
 *    revocation leaves no trace-free window (a crash right after would
 *    otherwise lose the record of a pass already handed out).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"

/*
 * Record an event of this session: outcome (HP_ISSUED, HP_REVOKED), on
 * relation relid, about subject (NULL: none), with reason and purpose
 * (NULL or "": none).  Returns once the record is committed and flushed,
 * or raises YHA01 after audit_timeout.
 */
void
hp_audit_event(HpOutcome outcome, Oid relid, const char *subject,
			   const char *purpose, const char *reason)
{
	HpRecord	rec;
	uint64		seq;

	Assert(outcome == HP_ISSUED || outcome == HP_REVOKED);
	hp_require_preload();
	hp_record_session(&rec);
	rec.logged_at = GetCurrentTimestamp();
	rec.statement_id = hp_next_statement_id();
	rec.relid = relid;
	rec.outcome = (uint8) outcome;
	rec.subject_null = (subject == NULL);
	hp_copy_field(rec.subject, HP_SUBJECT_LEN, subject);
	hp_copy_field(rec.purpose, HP_PURPOSE_LEN, purpose);
	hp_copy_field(rec.reason, HP_REASON_LEN, reason);
	seq = hp_enqueue(&rec);
	hp_wait_durable(seq + 1);
}

/*
 * hp_audit_event() without the wait, for a statement that hands out what
 * it records (issue() in a SELECT of many rows): the record is queued, and
 * this backend's audit_sync watermark (hp_sync_enqueued) is raised whatever
 * audit_sync says, so everything the statement sends waits for it as it
 * would for a row read under audit_sync (access/send.c: rows held and
 * released after one wait per batch, messages held, the statement's end
 * and commit wait, else YHA01).  One flush per batch, not per record
 * (docs/design/issuing.md).  Raises YHA01 when the queue cannot take it.
 */
void
hp_audit_event_deferred(HpOutcome outcome, Oid relid, const char *subject,
						const char *purpose, const char *reason)
{
	HpRecord	rec;
	uint64		seq;

	Assert(outcome == HP_ISSUED || outcome == HP_REVOKED);
	hp_require_preload();
	hp_record_session(&rec);
	rec.logged_at = GetCurrentTimestamp();
	rec.statement_id = hp_next_statement_id();
	rec.relid = relid;
	rec.outcome = (uint8) outcome;
	rec.subject_null = (subject == NULL);
	hp_copy_field(rec.subject, HP_SUBJECT_LEN, subject);
	hp_copy_field(rec.purpose, HP_PURPOSE_LEN, purpose);
	hp_copy_field(rec.reason, HP_REASON_LEN, reason);
	seq = hp_enqueue(&rec);
	hp_sync_enqueued = Max(hp_sync_enqueued, seq + 1);
}
