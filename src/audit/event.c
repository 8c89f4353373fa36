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
