"""The overdue scan: which pending steps are late now, and what that does to the reminders already planned.

State-based: it asks the database what is late *now* (the one rule, `journeys.models.late_condition`), so
a scan that did not run for an hour catches everything up on its next run, and a step done meanwhile is
never flagged. A step that cannot be done yet because its stage has not started is *blocked*, not late:
it is not flagged, reminded as overdue or escalated. Each run records a `ScanRun`.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from journeys.models import Journey, JourneyStatus, Step, StepStatus
from notifications.models import Reminder, ReminderKind, ReminderState, ScanRun
from notifications.planning import reminders_plan

log = logging.getLogger("carclinic.reminders")

SCAN_HISTORY_DAYS = 7


@dataclass
class ScanResult:
    flagged: int = 0
    unflagged: int = 0
    cancelled: int = 0
    created: int = 0
    run_id: int | None = None


# Every UPDATE below keeps its conditions on the updated table itself (subqueries on others, no join):
# PostgreSQL re-checks the WHERE clause of a row another transaction changed while we waited for it, but
# only the clauses on that row. With a join Django would emit `WHERE id IN (SELECT … JOIN …)`, evaluated
# on the old snapshot, and two concurrent scans would both flag the same step (a test caught exactly that).

def _active_journey_ids():
    return Journey.objects.filter(status=JourneyStatus.ACTIVE).values("id")


def steps_flag_overdue(*, now: datetime) -> int:
    """Flag pending steps of active journeys whose window and grace have passed. One indexed UPDATE."""
    return Step.objects.filter(
        status=StepStatus.PENDING, overdue_after__lte=now, overdue_since__isnull=True,
        journey_id__in=_active_journey_ids(),
    ).update(overdue_since=now)


def steps_unflag(*, now: datetime) -> int:
    """Clear the flag of steps done meanwhile, moved into the future (Day 0 moved) or whose journey
    stopped being active. One UPDATE over the (small, indexed) set of flagged steps."""
    return Step.objects.filter(overdue_since__isnull=False).filter(
        ~Q(status=StepStatus.PENDING) | Q(overdue_after__gt=now) | ~Q(journey_id__in=_active_journey_ids())
    ).update(overdue_since=None)


RESOLVED = "The step was resolved before the reminder went out."
NOT_ACTIVE = "The journey is on hold or closed."
RESCHEDULED = "The step was rescheduled; reminders for the new date replace this one."
NO_LONGER_OVERDUE = "The step is no longer overdue."

# One pass over the scheduled reminders joined to their steps, each case with its own reason. UPDATE … FROM
# keeps `r.state = 'pending'` on the updated row, so a reminder a worker claimed meanwhile is left alone.
_CANCEL_OBSOLETE = """
    UPDATE notifications_reminder r
       SET state = 'cancelled', cancelled_at = %(now)s,
           cancel_reason = CASE WHEN s.status <> 'pending' THEN %(resolved)s
                                WHEN j.status <> 'active' THEN %(not_active)s
                                WHEN s.due_on <> r.for_day THEN %(rescheduled)s
                                ELSE %(no_longer_overdue)s END
      FROM journeys_step s JOIN journeys_journey j ON j.id = s.journey_id
     WHERE r.step_id = s.id AND r.state = 'pending'
       AND (s.status <> 'pending' OR j.status <> 'active' OR s.due_on <> r.for_day
            OR (r.kind IN ('overdue', 'escalation') AND s.overdue_since IS NULL))
"""


def reminders_cancel_obsolete(*, now: datetime) -> int:
    """Cancel scheduled reminders that no longer make sense (step resolved, journey paused or closed, step
    rescheduled, step no longer overdue). One statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        return _cancel_obsolete_portable(now=now)
    with connection.cursor() as cursor:
        cursor.execute(_CANCEL_OBSOLETE, {"now": now, "resolved": RESOLVED, "not_active": NOT_ACTIVE,
                                          "rescheduled": RESCHEDULED, "no_longer_overdue": NO_LONGER_OVERDUE})
        return cursor.rowcount


def _its_step(**conditions):
    return Exists(Step.objects.filter(pk=OuterRef("step_id"), **conditions))


def _cancel_obsolete_portable(*, now: datetime) -> int:
    """The same as _CANCEL_OBSOLETE in four ORM statements, for the embedded SQLite of `make run` (which
    has one writer at a time, so the re-check subtleties of PostgreSQL do not arise)."""
    pending = Reminder.objects.filter(state=ReminderState.PENDING, step_id__isnull=False)
    cancel = {"state": ReminderState.CANCELLED, "cancelled_at": now}
    count = pending.filter(~_its_step(status=StepStatus.PENDING)).update(**cancel, cancel_reason=RESOLVED)
    count += pending.filter(~_its_step(journey__status=JourneyStatus.ACTIVE)).update(**cancel, cancel_reason=NOT_ACTIVE)
    count += pending.filter(~_its_step(due_on=OuterRef("for_day"))).update(**cancel, cancel_reason=RESCHEDULED)
    count += pending.filter(kind__in=[ReminderKind.OVERDUE, ReminderKind.ESCALATION]).filter(
        _its_step(overdue_since__isnull=True)).update(**cancel, cancel_reason=NO_LONGER_OVERDUE)
    return count


def reminders_revive_after_resume(*, now: datetime) -> int:
    """Put back the overdue and escalation reminders that a hold cancelled, once the journey is active
    and the step is late again. Without this the unique row, already cancelled, would keep the step from
    ever being reminded again after a resume. Reminders a person cancelled stay cancelled."""
    # Start from the flagged steps (few, and indexed), not from the ever-growing pile of cancelled rows.
    late_steps = Step.objects.filter(overdue_since__isnull=False, status=StepStatus.PENDING,
                                     journey_id__in=_active_journey_ids()).values("id")
    return Reminder.objects.filter(
        step_id__in=late_steps, state=ReminderState.CANCELLED, cancelled_by__isnull=True,
        cancel_reason__in=[NOT_ACTIVE, NO_LONGER_OVERDUE], kind__in=[ReminderKind.OVERDUE, ReminderKind.ESCALATION],
    ).filter(_its_step(due_on=OuterRef("for_day"))).update(
        state=ReminderState.PENDING, cancelled_at=None, cancel_reason="", due_at=now, send_after=now)


def overdue_scan(*, now: datetime | None = None) -> ScanResult:
    """Flag and un-flag overdue steps and plan every reminder that is now due or coming up, in a
    constant number of statements whatever the size of the clinic. Safe to run twice, or twice at once."""
    now = now or timezone.now()
    result = ScanResult()
    with transaction.atomic():
        result.flagged = steps_flag_overdue(now=now)
        result.unflagged = steps_unflag(now=now)
        result.cancelled = reminders_cancel_obsolete(now=now)
        result.created = reminders_plan(now=now) + reminders_revive_after_resume(now=now)
        run = ScanRun.objects.create(started_at=now, finished_at=timezone.now(), flagged=result.flagged,
                                     unflagged=result.unflagged, reminders_created=result.created,
                                     reminders_cancelled=result.cancelled)
        ScanRun.objects.filter(started_at__lt=now - timedelta(days=SCAN_HISTORY_DAYS)).delete()
        result.run_id = run.id
    log.info("overdue scan at=%s flagged=%d unflagged=%d reminders_created=%d reminders_cancelled=%d",
             now.isoformat(), result.flagged, result.unflagged, result.created, result.cancelled)
    return result

