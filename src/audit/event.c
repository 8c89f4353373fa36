/*
 * event.c
 *    Records of events that are not reads: a pass issued, a pass revoked, a
 *    revocation batch imported.  They go through the same queue, writer and
 *    hash chain as reads.  A caller that hands out what it records (a signed
 *    pass) waits until the record is durable before the value exists for
 *    anyone: no user code, no other session, no log line can see a pass
 *    whose record a crash could still lose (docs/design/issuing.md).  A
 *    batch queues all its records and waits once.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "audit/hp_audit.h"

/*
 * The fields every event record of this session shares, done with the
 * privileges of role actor: its name is the record's current user (the role
 * whose grant or EXECUTE right was used, which under a SECURITY DEFINER
 * function is the definer; the session user is the session's).  A batch
 * builds it once (issue_batch).
 */
void
hp_audit_event_template(HpRecord *tmpl, Oid actor)
{
	char	   *name;

	hp_require_preload();
	hp_record_session(tmpl);
	name = GetUserNameFromId(actor, true);
	namestrcpy(&tmpl->current_user_name, name ? name : "");
}

/*
 * Queue a record of an event from template tmpl: outcome (HP_ISSUED,
 * HP_REVOKED), on relation relid, about subject (NULL: none), with purpose
 * and reason (NULL or "": none).  Returns the sequence number to wait for
 * (hp_wait_durable).  Raises YHA01 when the queue cannot take it within
 * audit_timeout.
 */
uint64
hp_audit_event_queue(const HpRecord *tmpl, HpOutcome outcome, Oid relid,
					 const char *subject, const char *purpose, const char *reason)
{
	HpRecord	rec = *tmpl;

	Assert(outcome == HP_ISSUED || outcome == HP_REVOKED ||
		   outcome == HP_ARCHIVED || outcome == HP_VERIFIED);
	rec.logged_at = GetCurrentTimestamp();
	rec.statement_id = hp_next_statement_id();
	rec.relid = relid;
	rec.outcome = (uint8) outcome;
	rec.subject_null = (subject == NULL);
	hp_copy_field(rec.subject, HP_SUBJECT_LEN, subject);
	hp_copy_field(rec.purpose, HP_PURPOSE_LEN, purpose);
	hp_copy_field(rec.reason, HP_REASON_LEN, reason);
	return hp_enqueue(&rec) + 1;
}

/*
 * Record an event and return once the record is committed and flushed, or
 * raise YHA01 after audit_timeout
 */
void
hp_audit_event(HpOutcome outcome, Oid relid, const char *subject,
			   const char *purpose, const char *reason, Oid actor)
{
	HpRecord	tmpl;

	hp_audit_event_template(&tmpl, actor);
	hp_wait_durable(hp_audit_event_queue(&tmpl, outcome, relid, subject,
										 purpose, reason));
}
