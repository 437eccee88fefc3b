"""Every write of the reminder engine: the overdue scan, planning reminders, claiming and delivering them,
and what a person does to them (snooze, cancel, mark read).

The scan is state-based: it asks the database what is late *now*, so a scan that did not run for an
hour catches everything up on its next run, and a step done meanwhile is never flagged or reminded.
Reminders are durable rows, unique per (step, kind, recipient, channel, due day): a second scan, a
redelivered task or a second worker can never create or send one twice. Sending claims rows with a
conditional UPDATE first; a worker that dies mid-send leaves a claim that times out and is taken again.
"""

import json
import logging
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from carclinic.errors import Conflict, InvalidInput
from journeys.clock import clinic_zone, day_label
from journeys.models import Journey, JourneyStatus, Step, StepStatus
from notifications.models import (
    Channel,
    Notification,
    Reminder,
    ReminderEvent,
    ReminderKind,
    ReminderState,
    ScanRun,
    StepReminderPolicy,
    UserNotificationPreference,
)
from staff.models import User
from staff.roles import Action, NotPermitted, Role, can

log = logging.getLogger("carclinic.reminders")

SCAN_HISTORY_DAYS = 7


# --- Clinic time ----------------------------------------------------------------------------------

def _clock_setting(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def clinic_moment(day: date, at: time, *, hours_before: int = 0) -> datetime:
    """A wall-clock time on a clinic day, as an aware datetime. Arithmetic is on the ward's clock, so
    '48 h before 07:00' is 07:00 two days earlier in winter, in summer and across the change."""
    naive = datetime.combine(day, at) - timedelta(hours=hours_before)
    return naive.replace(tzinfo=clinic_zone())


def morning_of(day: date) -> datetime:
    return clinic_moment(day, _clock_setting(settings.REMINDER_MORNING_TIME))


def upcoming_at(due_on: date, lead_hours: int) -> datetime:
    return clinic_moment(due_on, _clock_setting(settings.REMINDER_MORNING_TIME), hours_before=lead_hours)


# --- The overdue scan -----------------------------------------------------------------------------

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


# --- Planning reminders ---------------------------------------------------------------------------

@dataclass
class _Directory:
    """Who is who, read once per scan: active users, their roles and e-mail addresses, and who opted out
    of e-mail for which kind."""

    emails: dict[int, str] = field(default_factory=dict)
    by_role: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    no_email: set[tuple[int, str]] = field(default_factory=set)

    @classmethod
    def load(cls) -> "_Directory":
        directory = cls()
        for user_id, email, group in User.objects.filter(is_active=True).values_list("id", "email", "groups__name"):
            directory.emails[user_id] = email
            if group in Role.values:
                directory.by_role[group].append(user_id)
        directory.no_email = set(UserNotificationPreference.objects.filter(email=False).values_list("user_id", "kind"))
        return directory

    def responsible(self, role: str, step: dict) -> list[int]:
        """The patient's own nurse, coordinator or physician when the step is theirs (and they still work
        here); else everyone with the role."""
        assigned = step.get(_NAMED_CARER.get(role, ""))
        if assigned is not None and assigned in self.by_role.get(role, ()):
            return [assigned]
        return list(self.by_role.get(role, []))

    def rows(self, *, kind: str, recipients, due_at: datetime, for_day: date, step_id=None) -> list[tuple]:
        """(kind, step, day, recipient, channel, due_at) for each channel each recipient gets this kind on."""
        rows = []
        for user_id in recipients:
            rows.append((kind, step_id, for_day, user_id, Channel.IN_APP, due_at))
            if self.emails.get(user_id) and (user_id, kind) not in self.no_email:
                rows.append((kind, step_id, for_day, user_id, Channel.EMAIL, due_at))
        # The webhook feeds the team's channel: one post per event, not one per person it concerns.
        if settings.REMINDER_WEBHOOK_URL and recipients and kind != ReminderKind.DIGEST:
            rows.append((kind, step_id, for_day, recipients[0], Channel.WEBHOOK, due_at))
        return rows


_NAMED_CARER = {Role.NURSE: "journey__patient__nurse_id", Role.COORDINATOR: "journey__patient__coordinator_id",
                Role.PHYSICIAN: "journey__patient__physician_id"}
_STEP_FIELDS = ("id", "due_on", "overdue_after", "template__responsible_role", *_NAMED_CARER.values(),
                "template__reminder_policy__upcoming_lead_hours", "template__reminder_policy__remind_on_the_day",
                "template__reminder_policy__id")


def _without(kind: str):
    """Steps that have no reminder of this kind for their current due day yet."""
    return ~Exists(Reminder.objects.filter(step_id=OuterRef("pk"), kind=kind, for_day=OuterRef("due_on")))


def reminders_plan(*, now: datetime) -> int:
    """Create the reminder rows now due or coming up within the planning horizon. One query per kind of
    candidate, one for the staff directory, one for preferences, one bulk INSERT … ON CONFLICT DO
    NOTHING; the unique constraint, not this code, is what makes a duplicate impossible."""
    directory = _Directory.load()
    today = timezone.localdate(now)
    lead_default = settings.REMINDER_UPCOMING_LEAD_HOURS
    horizon = today + timedelta(days=settings.REMINDER_PLANNING_DAYS)
    active_pending = Step.objects.filter(status=StepStatus.PENDING, journey__status=JourneyStatus.ACTIVE)
    rows: list[tuple] = []

    def recipients_for(step) -> list[int]:
        recipients = directory.responsible(step["template__responsible_role"], step)
        if not recipients:
            # Nobody holds the role: the scan will try again each minute; say so rather than stay silent.
            log.warning("no recipient for step id=%s role=%s", step["id"], step["template__responsible_role"])
        return recipients

    for step in active_pending.filter(overdue_since__isnull=False).filter(_without(ReminderKind.OVERDUE)).values(*_STEP_FIELDS):
        rows += directory.rows(kind=ReminderKind.OVERDUE, recipients=recipients_for(step), due_at=now,
                               for_day=step["due_on"], step_id=step["id"])

    # Escalation is measured from when the step became late (overdue_after), not from when a scan noticed,
    # so a scan that was down does not postpone it.
    escalate_before = now - timedelta(hours=settings.REMINDER_ESCALATION_AFTER_HOURS)
    for step in (active_pending.filter(overdue_since__isnull=False, overdue_after__lte=escalate_before)
                 .filter(_without(ReminderKind.ESCALATION)).values(*_STEP_FIELDS)):
        physicians = directory.responsible(Role.PHYSICIAN, step)
        if not physicians:
            log.warning("no physician to escalate step id=%s to", step["id"])
        rows += directory.rows(kind=ReminderKind.ESCALATION, recipients=physicians,
                               due_at=now, for_day=step["due_on"], step_id=step["id"])

    # "Coming up": planned ahead so the log shows what is scheduled, and so it can be snoozed or cancelled.
    longest_lead = max(lead_default, StepReminderPolicy.objects.aggregate(m=Max("upcoming_lead_hours"))["m"] or 0)
    longest_lead_days = longest_lead // 24 + 1
    for step in (active_pending.filter(overdue_since__isnull=True, due_on__gt=today,
                                       due_on__lte=horizon + timedelta(days=longest_lead_days))
                 .filter(_without(ReminderKind.UPCOMING)).values(*_STEP_FIELDS)):
        lead = step["template__reminder_policy__upcoming_lead_hours"] if step["template__reminder_policy__id"] else lead_default
        if not lead:
            continue
        due_at = upcoming_at(step["due_on"], lead)
        # Once the morning of the day has come, "coming up" is stale: the day's own reminder says it.
        if now >= morning_of(step["due_on"]) or due_at > clinic_moment(horizon, time.max):
            continue
        rows += directory.rows(kind=ReminderKind.UPCOMING, recipients=recipients_for(step), due_at=due_at,
                               for_day=step["due_on"], step_id=step["id"])

    for step in (active_pending.filter(overdue_since__isnull=True, due_on__gte=today, due_on__lte=horizon)
                 .filter(_without(ReminderKind.DUE_TODAY)).values(*_STEP_FIELDS)):
        if step["template__reminder_policy__id"] and not step["template__reminder_policy__remind_on_the_day"]:
            continue
        rows += directory.rows(kind=ReminderKind.DUE_TODAY, recipients=recipients_for(step),
                               due_at=morning_of(step["due_on"]), for_day=step["due_on"], step_id=step["id"])

    digest_at = clinic_moment(today, _clock_setting(settings.REMINDER_DIGEST_TIME))
    if now >= digest_at:
        has_digest = set(Reminder.objects.filter(kind=ReminderKind.DIGEST, for_day=today).values_list("recipient_id", flat=True))
        waiting = [user_id for user_id in directory.by_role.get(Role.COORDINATOR, []) if user_id not in has_digest]
        rows += directory.rows(kind=ReminderKind.DIGEST, recipients=waiting, due_at=digest_at, for_day=today)

    created = _insert_reminders(rows, now=now)
    if rows:
        log.info("reminders planned at=%s candidates=%d created=%d", now.isoformat(), len(rows), created)
    return created


_INSERT_REMINDERS = """
    INSERT INTO notifications_reminder
           (public_id, kind, step_id, for_day, recipient_id, channel, due_at, send_after,
            state, attempts, last_error, cancel_reason, created_at)
    SELECT gen_random_uuid(), r.kind, r.step_id, r.for_day, r.recipient_id, r.channel, r.due_at, r.due_at,
           'pending', 0, '', '', %s
      FROM unnest(%s::varchar[], %s::bigint[], %s::date[], %s::bigint[], %s::varchar[], %s::timestamptz[])
           AS r(kind, step_id, for_day, recipient_id, channel, due_at)
        ON CONFLICT DO NOTHING
    RETURNING id
"""


def _insert_reminders(rows: list[tuple], *, now: datetime) -> int:
    """One INSERT … SELECT FROM unnest(arrays) … ON CONFLICT DO NOTHING for any number of rows: a
    concurrent scan that inserted the same reminder first wins, silently and correctly, and RETURNING
    counts only the rows this scan really created."""
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        # The embedded SQLite: the ORM's INSERT OR IGNORE, counted by difference (one writer at a time).
        before = Reminder.objects.filter(created_at=now).count()
        Reminder.objects.bulk_create([Reminder(kind=kind, step_id=step_id, for_day=for_day, recipient_id=recipient_id,
                                               channel=channel, due_at=due_at, send_after=due_at, created_at=now)
                                      for kind, step_id, for_day, recipient_id, channel, due_at in rows],
                                     ignore_conflicts=True, batch_size=500)
        return Reminder.objects.filter(created_at=now).count() - before
    columns = [list(column) for column in zip(*rows)]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_REMINDERS, [now, *columns])
        return len(cursor.fetchall())


# --- Claiming and delivering ----------------------------------------------------------------------

@dataclass
class DeliveryResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    messages: int = 0


class DeliveryError(Exception):
    """A channel refused a message; the reminder is retried with backoff."""


def _claimable(now: datetime) -> Q:
    stale = now - timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS)
    # A claim older than the timeout belongs to a worker that died mid-send: take it over, unless it has
    # used up its attempts (those are given up by reminders_give_up_stale).
    return (Q(state=ReminderState.PENDING, send_after__lte=now)
            | Q(state=ReminderState.SENDING, claimed_at__lt=stale, attempts__lt=settings.REMINDER_MAX_ATTEMPTS))


def _claim(queryset, *, now: datetime, token: uuid.UUID) -> int:
    """Conditional UPDATE: a row is ours only if it was still claimable when the UPDATE reached it;
    PostgreSQL re-checks the WHERE clause after waiting on a row another worker is claiming."""
    return queryset.filter(_claimable(now)).update(
        state=ReminderState.SENDING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1)


def reminders_give_up_stale(*, now: datetime) -> int:
    """Claims that timed out with no attempts left: a worker died on each of them. Say so, visibly."""
    stale = now - timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS)
    ids = list(Reminder.objects.filter(state=ReminderState.SENDING, claimed_at__lt=stale,
                                       attempts__gte=settings.REMINDER_MAX_ATTEMPTS).values_list("id", flat=True))
    if not ids:
        return 0
    count = Reminder.objects.filter(id__in=ids, state=ReminderState.SENDING, claimed_at__lt=stale).update(
        state=ReminderState.FAILED, claim_token=None, last_error="The worker stopped during every attempt.")
    ReminderEvent.objects.bulk_create([ReminderEvent(reminder_id=i, action=ReminderEvent.Action.GAVE_UP, at=now,
                                                     reason="The worker stopped during every attempt.") for i in ids])
    log.error("reminders gave up after worker loss count=%d", count)
    return count


def reminders_send_due(*, now: datetime | None = None, limit: int = 500) -> DeliveryResult:
    """Claim every reminder due now (and claims whose worker died) and deliver them, one message per
    person and channel. Safe to run on several workers at once."""
    now = now or timezone.now()
    # No reminders_cancel_obsolete() here: the scan does it each minute, and _deliver_claimed re-checks
    # every claimed row's step anyway, which is what guarantees a done step is never reminded.
    reminders_give_up_stale(now=now)
    token = uuid.uuid4()
    due_ids = Reminder.objects.filter(_claimable(now)).order_by("send_after", "id").values("id")[:limit]
    claimed = _claim(Reminder.objects.filter(id__in=due_ids), now=now, token=token)
    if not claimed:
        return DeliveryResult()
    return _deliver_claimed(token=token, now=now)


def reminder_send(*, reminder_id: int, now: datetime | None = None) -> DeliveryResult | None:
    """Send one reminder now, together with whatever else is due for the same person on the same channel.
    Returns None when the reminder is not claimable (sent, cancelled, or another worker has it)."""
    now = now or timezone.now()
    token = uuid.uuid4()
    if _claim(Reminder.objects.filter(id=reminder_id), now=now, token=token) != 1:
        log.info("reminder not claimed id=%s (already sent, cancelled, not due, or claimed elsewhere)", reminder_id)
        return None
    first = Reminder.objects.values("recipient_id", "channel").get(id=reminder_id)
    _claim(Reminder.objects.filter(recipient_id=first["recipient_id"], channel=first["channel"]), now=now, token=token)
    return _deliver_claimed(token=token, now=now)


def _deliver_claimed(*, token: uuid.UUID, now: datetime) -> DeliveryResult:
    result = DeliveryResult()
    claimed = list(Reminder.objects.filter(claim_token=token, state=ReminderState.SENDING)
                   .select_related("recipient", "step__template", "step__journey__patient")
                   .order_by("recipient_id", "channel", "kind", "due_at", "id"))
    result.claimed = len(claimed)
    for reminder in claimed:
        log.info("reminder claimed id=%s kind=%s channel=%s recipient=%s attempt=%d",
                 reminder.public_id, reminder.kind, reminder.channel, reminder.recipient_id, reminder.attempts)
    # Re-checked after the claim: a nurse may have recorded the step a moment ago.
    stale = [r for r in claimed if r.step_id and (r.step.status != StepStatus.PENDING
                                                   or r.step.journey.status != JourneyStatus.ACTIVE
                                                   or r.step.due_on != r.for_day)]
    if stale:
        result.cancelled = Reminder.objects.filter(id__in=[r.id for r in stale], claim_token=token).update(
            state=ReminderState.CANCELLED, cancelled_at=now, claim_token=None,
            cancel_reason="The step was resolved or rescheduled before the reminder went out.")
    groups: dict[tuple[int, str], list[Reminder]] = defaultdict(list)
    for reminder in claimed:
        if reminder not in stale:
            groups[(reminder.recipient_id, reminder.channel)].append(reminder)
    for (_, channel), reminders in groups.items():
        try:
            delivered = _DELIVERERS[channel](reminders, token=token, now=now)
        except Exception as error:  # noqa: BLE001 - one broken group must not stop the others; recorded below
            log.warning("reminder delivery failed channel=%s ids=%s error=%s", channel,
                        [str(r.public_id) for r in reminders], type(error).__name__)
            retrying, failed = _record_failure(reminders, token=token, now=now, error=error)
            result.retrying += retrying
            result.failed += failed
            continue
        result.sent += delivered
        result.messages += 1 if delivered else 0
    return result


def _record_failure(reminders: list[Reminder], *, token: uuid.UUID, now: datetime, error: Exception) -> tuple[int, int]:
    message = f"{type(error).__name__}: {error}"[:2000]
    attempts = reminders[0].attempts
    ids = [r.id for r in reminders]
    if attempts >= settings.REMINDER_MAX_ATTEMPTS:
        failed = Reminder.objects.filter(id__in=ids, claim_token=token).update(
            state=ReminderState.FAILED, claim_token=None, last_error=message)
        ReminderEvent.objects.bulk_create([ReminderEvent(reminder_id=i, action=ReminderEvent.Action.GAVE_UP, at=now,
                                                         reason=message, detail={"attempts": attempts}) for i in ids])
        for r in reminders:
            log.error("reminder gave up id=%s attempts=%d error=%s", r.public_id, attempts, type(error).__name__)
        return 0, failed
    # Exponential backoff: 1, 2, 4, 8 … times the base, so a mail server that is down is not hammered.
    retry_at = now + timedelta(seconds=settings.REMINDER_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    retrying = Reminder.objects.filter(id__in=ids, claim_token=token).update(
        state=ReminderState.PENDING, claim_token=None, send_after=retry_at, last_error=message)
    for r in reminders:
        log.info("reminder retry scheduled id=%s attempt=%d retry_at=%s", r.public_id, attempts, retry_at.isoformat())
    return retrying, 0


def _mark_sent(ids: list[int], *, token: uuid.UUID, now: datetime) -> int:
    count = Reminder.objects.filter(id__in=ids, claim_token=token, state=ReminderState.SENDING).update(
        state=ReminderState.SENT, sent_at=now, claim_token=None, last_error="")
    return count


# --- What a message says --------------------------------------------------------------------------

def _link(patient_public_id, step_public_id=None) -> str:
    """The patient page, scrolled to the step. Built with reverse() so it follows the page's real URL
    (it once pointed at a /journeys/<id>/ page that never existed)."""
    path = reverse("patient_detail", args=[patient_public_id]) + (f"#step-{step_public_id}" if step_public_id else "")
    return settings.REMINDER_LINK_BASE.rstrip("/") + path


def _step_item(reminder: Reminder) -> dict:
    """One line about one step. Ids only: a short patient reference, never a name or an MRN."""
    step = reminder.step
    journey = step.journey
    ref = str(journey.patient.public_id)[:8]
    text = (f"{step.template.name}: due {step.due_on:%a %d %b %Y} ({day_label(journey.day_number(step.due_on))}), "
            f"patient ref {ref}")
    return {"kind": reminder.kind, "text": text, "journey": str(journey.public_id), "step": str(step.public_id),
            "link": _link(journey.patient.public_id, step.public_id)}


def _digest_items(reminder: Reminder) -> list[dict]:
    """The coordinator's day: what is overdue, what is due today, what comes in the next seven days.
    Their own patients and those with no coordinator."""
    from notifications.selectors import digest_steps

    today = reminder.for_day
    items = []
    for step in digest_steps(coordinator_id=reminder.recipient_id, today=today):
        journey = step.journey
        if step.overdue_since:
            section = "Overdue"
        elif step.due_on == today:
            section = "Today"
        else:
            section = "Next 7 days"
        items.append({"kind": ReminderKind.DIGEST, "section": section, "journey": str(journey.public_id),
                      "step": str(step.public_id), "link": _link(journey.patient.public_id, step.public_id),
                      "text": f"{section}: {step.template.name}, due {step.due_on:%a %d %b} "
                              f"({day_label(journey.day_number(step.due_on))}), patient ref {str(journey.patient.public_id)[:8]}"})
    if not items:
        items.append({"kind": ReminderKind.DIGEST, "section": "", "text": "Nothing overdue, due today or in the next 7 days.",
                      "journey": "", "step": "", "link": ""})
    return items


# Most urgent first, in the subject and in the body.
_SUBJECT_WORDS = {ReminderKind.ESCALATION: "escalated", ReminderKind.OVERDUE: "overdue", ReminderKind.DUE_TODAY: "due today",
                  ReminderKind.UPCOMING: "coming up", ReminderKind.DIGEST: "your daily digest"}
_URGENCY = {kind: rank for rank, kind in enumerate(_SUBJECT_WORDS)}


def compose(reminders: list[Reminder]) -> tuple[str, str, list[dict], str]:
    """One message for everything going to one person at one time: title, body, items, most urgent kind."""
    reminders = sorted(reminders, key=lambda r: (_URGENCY[r.kind], r.due_at, r.id))
    counts = defaultdict(int)
    items: list[dict] = []
    for reminder in reminders:
        counts[reminder.kind] += 1
        if reminder.kind == ReminderKind.DIGEST:
            items += _digest_items(reminder)
        else:
            items.append(_step_item(reminder))
    kinds = [k for k in _SUBJECT_WORDS if counts[k]]
    parts = [_SUBJECT_WORDS[k] if k == ReminderKind.DIGEST else f"{counts[k]} {_SUBJECT_WORDS[k]}" for k in kinds]
    title = "carclinic: " + ", ".join(parts)
    body = "\n".join(f"- [{ReminderKind(item['kind']).label}] {item['text']}" + (f"\n  {item['link']}" if item["link"] else "")
                     for item in items)
    return title[:200], body, items, kinds[0]


# --- Channels -------------------------------------------------------------------------------------

def _deliver_in_app(reminders: list[Reminder], *, token: uuid.UUID, now: datetime) -> int:
    # The notification and the "sent" mark commit together: in the app a reminder appears exactly once.
    with transaction.atomic():
        ours = set(Reminder.objects.select_for_update().filter(
            id__in=[r.id for r in reminders], claim_token=token, state=ReminderState.SENDING).values_list("id", flat=True))
        reminders = [r for r in reminders if r.id in ours]
        if not reminders:
            return 0
        title, body, items, kind = compose(reminders)
        Notification.objects.create(recipient_id=reminders[0].recipient_id, kind=kind, title=title, body=body,
                                    items=items, link=items[0]["link"] if len(items) == 1 else "", created_at=now)
        sent = _mark_sent([r.id for r in reminders], token=token, now=now)
    for r in reminders:
        log.info("reminder sent id=%s kind=%s channel=in_app recipient=%s", r.public_id, r.kind, r.recipient_id)
    return sent


def delivery_key(reminders: list[Reminder]) -> uuid.UUID:
    """The same for the same reminders however often they are tried (a new claim gets a new token)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "carclinic-reminders:" + ",".join(sorted(str(r.public_id) for r in reminders)))


def _deliver_email(reminders: list[Reminder], *, token: uuid.UUID, now: datetime) -> int:
    # At least once: if the worker dies between the SMTP hand-off and the mark below, the claim times out
    # and this one message goes again. Marking first would risk losing it, which is worse for a step.
    # The retry carries the same Message-ID, by which mail servers and clients drop a repeat.
    title, body, _, _ = compose(reminders)
    recipient = reminders[0].recipient
    if not recipient.email:
        raise DeliveryError("The recipient has no e-mail address.")
    message_id = f"<{delivery_key(reminders)}@{settings.REMINDER_MESSAGE_ID_DOMAIN}>"
    EmailMessage(subject=title, body=body, to=[recipient.email], headers={"Message-ID": message_id}).send(fail_silently=False)
    sent = _mark_sent([r.id for r in reminders], token=token, now=now)
    for r in reminders:
        log.info("reminder sent id=%s kind=%s channel=email recipient=%s", r.public_id, r.kind, r.recipient_id)
    return sent


def _deliver_webhook(reminders: list[Reminder], *, token: uuid.UUID, now: datetime) -> int:
    if not settings.REMINDER_WEBHOOK_URL:
        raise DeliveryError("REMINDER_WEBHOOK_URL is not set.")
    title, _, items, kind = compose(reminders)
    payload = json.dumps({"title": title, "kind": kind, "recipient": reminders[0].recipient_id, "items": items,
                          "reminders": [str(r.public_id) for r in reminders]}).encode()
    request = urllib.request.Request(settings.REMINDER_WEBHOOK_URL, data=payload, method="POST",
                                     headers={"Content-Type": "application/json", "Idempotency-Key": str(delivery_key(reminders))})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the URL is the operator's setting
        if response.status >= 300:
            raise DeliveryError(f"Webhook answered {response.status}.")
    return _mark_sent([r.id for r in reminders], token=token, now=now)


_DELIVERERS = {Channel.IN_APP: _deliver_in_app, Channel.EMAIL: _deliver_email, Channel.WEBHOOK: _deliver_webhook}


# --- What people do to reminders ------------------------------------------------------------------

def _authorize_manage(actor) -> None:
    if not can(actor, Action.MANAGE_REMINDERS):
        raise NotPermitted(Action.MANAGE_REMINDERS, "Only coordinators and physicians may snooze or cancel reminders.")


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("A reason is required.", field_errors={"reason": ["Give a reason; it goes into the audit trail."]})
    return reason


NO_LONGER_SCHEDULED = "This reminder is no longer scheduled (it was sent, cancelled, or is being sent)."


def _scheduled_targets(reminder_id: int, *, every_channel: bool) -> list[int]:
    """The reminder, and with every_channel its scheduled twins on the other channels (same person, step,
    kind and day): a person snoozes "the reminder to Cora", not its e-mail copy. Locked, so the UPDATE
    that follows changes exactly these rows and the audit names each of them."""
    first = (Reminder.objects.select_for_update().filter(id=reminder_id, state=ReminderState.PENDING)
             .values("step_id", "kind", "recipient_id", "for_day").first())
    if first is None:
        raise Conflict(NO_LONGER_SCHEDULED)
    if not every_channel:
        return [reminder_id]
    return list(Reminder.objects.select_for_update().filter(state=ReminderState.PENDING, **first)
                .order_by("id").values_list("id", flat=True))


@transaction.atomic
def reminder_snooze(*, actor, reminder_id: int, until: datetime, reason: str, every_channel: bool = False) -> Reminder:
    """Put off a scheduled reminder (with every_channel: on all its channels) until a later time, with a
    reason (audited, one event per reminder)."""
    _authorize_manage(actor)
    reason = _require_reason(reason)
    now = timezone.now()
    if until <= now:
        raise InvalidInput("Snooze until a time in the future.", field_errors={"until": ["Must be in the future."]})
    if until > now + timedelta(days=30):
        raise InvalidInput("Snooze for at most 30 days; cancel it instead.", field_errors={"until": ["At most 30 days."]})
    ids = _scheduled_targets(reminder_id, every_channel=every_channel)
    Reminder.objects.filter(id__in=ids).update(send_after=until, snoozed_until=until)
    ReminderEvent.objects.bulk_create([
        ReminderEvent(reminder_id=i, action=ReminderEvent.Action.SNOOZED, reason=reason,
                      detail={"until": until.isoformat()}, actor=actor, at=now) for i in ids])
    for i in ids:
        log.info("reminder snoozed id=%s by=%s until=%s", i, actor.pk, until.isoformat())
    return Reminder.objects.get(id=reminder_id)


@transaction.atomic
def reminder_cancel(*, actor, reminder_id: int, reason: str, every_channel: bool = False) -> Reminder:
    """Cancel a scheduled reminder (with every_channel: on all its channels), with a reason (audited, one
    event per reminder). A sent one stays in the log as sent."""
    _authorize_manage(actor)
    reason = _require_reason(reason)
    now = timezone.now()
    ids = _scheduled_targets(reminder_id, every_channel=every_channel)
    Reminder.objects.filter(id__in=ids).update(
        state=ReminderState.CANCELLED, cancelled_at=now, cancelled_by=actor, cancel_reason=reason)
    ReminderEvent.objects.bulk_create([
        ReminderEvent(reminder_id=i, action=ReminderEvent.Action.CANCELLED, reason=reason, actor=actor, at=now)
        for i in ids])
    for i in ids:
        log.info("reminder cancelled id=%s by=%s", i, actor.pk)
    return Reminder.objects.get(id=reminder_id)


def notification_mark_read(*, actor, notification_public_id) -> int:
    """Mark one of the actor's own notifications read; another person's is simply not found."""
    return Notification.objects.filter(public_id=notification_public_id, recipient=actor, read_at__isnull=True).update(
        read_at=timezone.now())


def notifications_mark_all_read(*, actor) -> int:
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(read_at=timezone.now())


def preference_set(*, actor, kind: str, email: bool) -> UserNotificationPreference:
    """Choose whether a kind of reminder reaches the actor by e-mail; the app always shows it."""
    if kind not in ReminderKind.values:
        raise InvalidInput("Unknown kind of reminder.", field_errors={"kind": ["Unknown kind."]})
    preference, _ = UserNotificationPreference.objects.update_or_create(user=actor, kind=kind, defaults={"email": email})
    return preference

