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

from journeys.models import JourneyStatus, Step, StepStatus, late_condition
from notifications.models import Reminder, ReminderKind, ReminderState, ScanRun
from notifications.planning import reminders_plan
from notifications.scope import EVERYTHING, Scope, scan_scope

log = logging.getLogger("carclinic.reminders")

SCAN_HISTORY_DAYS = 7


@dataclass
class ScanResult:
    flagged: int = 0
    unflagged: int = 0
    cancelled: int = 0
    created: int = 0
    run_id: int | None = None


# Conditions that must hold on the updated row itself stay on it (overdue_since IS NULL below): PostgreSQL
# re-checks the WHERE clause of a row another transaction changed while we waited for it, but only the
# clauses on that row. The rule itself (`Step.objects.overdue`) joins the journey and the stage, which
# Django turns into `id IN (SELECT … JOIN …)` on the old snapshot; the outer `overdue_since IS NULL` is
# what keeps two concurrent scans from both flagging the same step (a test caught exactly that).


def steps_flag_overdue(*, now: datetime, scope: Scope = EVERYTHING) -> int:
    """Flag the steps that are late now and not flagged yet. A scan that knows the previous one (`scope`)
    looks only at steps that became late since (by the clock) and at the journeys that changed."""
    if not scope.clock:
        return 0  # nothing became late by the clock, and no journey changed
    late = Step.objects.overdue(now).filter(overdue_since__isnull=True)
    if not scope.everything:
        late = late.filter(Q(overdue_after__gt=scope.since) | Q(journey_id__in=scope.journeys))
    return Step.objects.filter(overdue_since__isnull=True, pk__in=late.values("pk")).update(overdue_since=now)


def steps_unflag(*, now: datetime, scope: Scope = EVERYTHING) -> int:
    """Clear the flag of steps no longer late: done meanwhile, moved into the future (Day 0 moved), or
    whose journey stopped being active. Each of those is a journey event, so a scan that knows the
    previous one looks only at the journeys that changed."""
    flagged = Step.objects.filter(overdue_since__isnull=False)
    if not scope.everything and not scope.journeys:
        return 0
    if not scope.everything:
        flagged = flagged.filter(journey_id__in=scope.journeys)
    return flagged.exclude(late_condition(now)).update(overdue_since=None)


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


def reminders_cancel_obsolete(*, now: datetime, scope: Scope = EVERYTHING) -> int:
    """Cancel scheduled reminders that no longer make sense (step resolved, journey paused or closed, step
    rescheduled, step no longer overdue). One statement on PostgreSQL. Each of those is a journey event,
    so a scan that knows the previous one looks only at the journeys that changed."""
    if not scope.everything and not scope.journeys:
        return 0
    if connection.vendor != "postgresql":
        return _cancel_obsolete_portable(now=now, scope=scope)
    sql, params = (
        _CANCEL_OBSOLETE,
        {
            "now": now,
            "resolved": RESOLVED,
            "not_active": NOT_ACTIVE,
            "rescheduled": RESCHEDULED,
            "no_longer_overdue": NO_LONGER_OVERDUE,
        },
    )
    if not scope.everything:
        sql, params = sql + " AND s.journey_id = ANY(%(journeys)s)", {**params, "journeys": list(scope.journeys)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _its_step(**conditions):
    return Exists(Step.objects.filter(pk=OuterRef("step_id"), **conditions))


def _cancel_obsolete_portable(*, now: datetime, scope: Scope) -> int:
    """The same as _CANCEL_OBSOLETE in four ORM statements, for the embedded SQLite of `make run` (which
    has one writer at a time, so the re-check subtleties of PostgreSQL do not arise)."""
    pending = Reminder.objects.filter(state=ReminderState.PENDING, step_id__isnull=False)
    if not scope.everything:
        pending = pending.filter(step__journey_id__in=scope.journeys)
    cancel = {"state": ReminderState.CANCELLED, "cancelled_at": now}
    count = pending.filter(~_its_step(status=StepStatus.PENDING)).update(**cancel, cancel_reason=RESOLVED)
    count += pending.filter(~_its_step(journey__status=JourneyStatus.ACTIVE)).update(**cancel, cancel_reason=NOT_ACTIVE)
    count += pending.filter(~_its_step(due_on=OuterRef("for_day"))).update(**cancel, cancel_reason=RESCHEDULED)
    count += (
        pending.filter(kind__in=[ReminderKind.OVERDUE, ReminderKind.ESCALATION])
        .filter(_its_step(overdue_since__isnull=True))
        .update(**cancel, cancel_reason=NO_LONGER_OVERDUE)
    )
    return count


def reminders_revive_after_resume(*, now: datetime, scope: Scope = EVERYTHING, flagged_now: bool = True) -> int:
    """Put back the overdue and escalation reminders that a hold cancelled, once the journey is active
    and the step is late again. Without this the unique row, already cancelled, would keep the step from
    ever being reminded again after a resume. Reminders a person cancelled stay cancelled."""
    # Start from the flagged steps (few, and indexed), not from the ever-growing pile of cancelled rows;
    # knowing the previous scan, only from those flagged just now or in a journey that changed (a resume).
    late_steps = Step.objects.overdue(now).filter(overdue_since__isnull=False)
    if not scope.everything and not flagged_now and not scope.journeys:
        return 0  # nothing flagged now and no journey resumed: nothing to put back
    if not scope.everything:
        late_steps = late_steps.filter(Q(overdue_since=now) | Q(journey_id__in=scope.journeys))
    return (
        Reminder.objects.filter(
            step_id__in=late_steps.values("id"),
            state=ReminderState.CANCELLED,
            cancelled_by__isnull=True,
            cancel_reason__in=[NOT_ACTIVE, NO_LONGER_OVERDUE],
            kind__in=[ReminderKind.OVERDUE, ReminderKind.ESCALATION],
        )
        .filter(_its_step(due_on=OuterRef("for_day")))
        .update(state=ReminderState.PENDING, cancelled_at=None, cancel_reason="", due_at=now, send_after=now)
    )


def overdue_scan(*, now: datetime | None = None, everything: bool = False) -> ScanResult:
    """Flag and un-flag overdue steps and plan every reminder that is now due or coming up, in a
    constant number of statements whatever the size of the clinic. Safe to run twice, or twice at once.

    It costs what changed, not what exists (`scan_scope`): after a recent scan it reads the steps the
    clock made late or due since, and the journeys with an event since; a sweep over everything runs
    when there was none in the last hour, on a new clinic day, and after an outage (or with
    `everything`, after rows were loaded behind the services' back)."""
    now = now or timezone.now()
    result = ScanResult()
    with transaction.atomic():
        scope = EVERYTHING if everything else scan_scope(now)
        result.flagged = steps_flag_overdue(now=now, scope=scope)
        result.unflagged = steps_unflag(now=now, scope=scope)
        result.cancelled = reminders_cancel_obsolete(now=now, scope=scope)
        flagged_now = result.flagged > 0
        result.created = reminders_plan(now=now, scope=scope, flagged_now=flagged_now) + reminders_revive_after_resume(
            now=now, scope=scope, flagged_now=flagged_now
        )
        run = ScanRun.objects.create(
            started_at=now,
            finished_at=timezone.now(),
            flagged=result.flagged,
            unflagged=result.unflagged,
            reminders_created=result.created,
            reminders_cancelled=result.cancelled,
            full=scope.everything,
        )
        if scope.everything:  # the old runs are pruned by the sweeps; an idle minute writes only its own row
            ScanRun.objects.filter(started_at__lt=now - timedelta(days=SCAN_HISTORY_DAYS)).delete()
        result.run_id = run.id
    log.info(
        "overdue scan at=%s everything=%s flagged=%d unflagged=%d reminders_created=%d reminders_cancelled=%d",
        now.isoformat(),
        scope.everything,
        result.flagged,
        result.unflagged,
        result.created,
        result.cancelled,
    )
    return result
