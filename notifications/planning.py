"""Planning reminders: turn what is late, due today and coming up into reminder rows, once.

Reminders are durable rows, unique per (step, kind, recipient, channel, due day): a second scan, a
redelivered task or a second worker can never create one twice (INSERT … ON CONFLICT DO NOTHING). Who
gets what: the patient's own nurse, coordinator or physician for a step of their role (everyone with the
role when none is named), the escalation after REMINDER_ESCALATION_AFTER_HOURS, and a digest per
coordinator each morning. Times are on the ward's clock (`journeys.clock`).
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from journeys.clock import clinic_moment, morning_of, upcoming_at, wall_time
from journeys.models import JourneyStatus, Step, StepStatus
from notifications.models import Channel, Reminder, ReminderKind, StepReminderPolicy, UserNotificationPreference
from notifications.scope import EVERYTHING, Scope
from staff.models import User
from staff.roles import Role

log = logging.getLogger("carclinic.reminders")


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


_NAMED_CARER = {
    Role.NURSE: "journey__patient__nurse_id",
    Role.COORDINATOR: "journey__patient__coordinator_id",
    Role.PHYSICIAN: "journey__patient__physician_id",
}
_STEP_FIELDS = (
    "id",
    "due_on",
    "overdue_after",
    "template__responsible_role",
    *_NAMED_CARER.values(),
    "template__reminder_policy__upcoming_lead_hours",
    "template__reminder_policy__remind_on_the_day",
    "template__reminder_policy__id",
)


def _without(kind: str):
    """Steps that have no reminder of this kind for their current due day yet."""
    return ~Exists(Reminder.objects.filter(step_id=OuterRef("pk"), kind=kind, for_day=OuterRef("due_on")))


def escalation_recipients(directory: "_Directory", step: dict) -> list[int]:
    """Whom a step still late REMINDER_ESCALATION_AFTER_HOURS after it became late is escalated to.

    A physician's step goes to the patient's treating physician only: a physician's notifications carry
    their own patients' physician steps, never another's, nor a nurse's or a coordinator's task. When the
    patient has no treating physician here (none named, or they left), and for a nurse's or coordinator's
    step, it goes to the patient's coordinator (else every coordinator): the person who runs the schedule
    finds who can do it. Blocked steps never get here: they are not late (`late_condition`)."""
    if step["template__responsible_role"] == Role.PHYSICIAN:
        treating = step[_NAMED_CARER[Role.PHYSICIAN]]
        if treating is not None and treating in directory.by_role.get(Role.PHYSICIAN, ()):
            return [treating]
    return directory.responsible(Role.COORDINATOR, step)


def reminders_plan(*, now: datetime, scope: Scope = EVERYTHING, flagged_now: bool = True) -> int:
    """Create the reminder rows now due or coming up within the planning horizon. One query per kind of
    candidate, one for the staff directory, one for preferences, one bulk INSERT … ON CONFLICT DO
    NOTHING; the unique constraint, not this code, is what makes a duplicate impossible.

    With a `scope` (the previous scan's time and the journeys changed since), candidates are only the
    steps flagged just now, those the clock made ripe for escalation since, and the changed journeys':
    the rest was planned by an earlier scan of the same clinic day. `flagged_now` False (the scan flagged
    nothing) spares the look-up of steps flagged just now.

    An idle minute reads only what may have changed: the staff directory is read once a candidate needs a
    recipient, and the morning digest is looked for by the first scan past its time and by the sweeps."""
    directory = cache(_Directory.load)
    today = timezone.localdate(now)
    lead_default = settings.REMINDER_UPCOMING_LEAD_HOURS
    horizon = today + timedelta(days=settings.REMINDER_PLANNING_DAYS)
    escalate_after = timedelta(hours=settings.REMINDER_ESCALATION_AFTER_HOURS)
    active_pending = Step.objects.filter(status=StepStatus.PENDING, journey__status=JourneyStatus.ACTIVE)
    late = Step.objects.overdue(now).filter(overdue_since__isnull=False)
    if not scope.everything:
        changed = Q(journey_id__in=scope.journeys)
        active_pending = active_pending.filter(changed)
        late_overdue = late.filter(changed | Q(overdue_since=now)) if flagged_now else late.filter(changed)
        late_escalation = late.filter(changed | Q(overdue_since=now) | Q(overdue_after__gt=scope.since - escalate_after))
    else:
        late_overdue = late_escalation = late
    # Without a write since the previous scan (no changed journey), only the clock can have made something
    # owed: a step flagged just now, or one whose time to escalation ran out. Nothing else is read.
    writes = scope.everything or bool(scope.journeys)
    rows: list[tuple] = []

    def recipients_for(step) -> list[int]:
        recipients = directory().responsible(step["template__responsible_role"], step)
        if not recipients:
            # Nobody holds the role: the next sweep tries again; say so rather than stay silent.
            log.warning("no recipient for step id=%s role=%s", step["id"], step["template__responsible_role"])
        return recipients

    overdue = late_overdue.filter(_without(ReminderKind.OVERDUE)).values(*_STEP_FIELDS) if writes or flagged_now else ()
    for step in overdue:
        rows += directory().rows(
            kind=ReminderKind.OVERDUE, recipients=recipients_for(step), due_at=now, for_day=step["due_on"], step_id=step["id"]
        )

    # Escalation is measured from when the step became late (overdue_after), not from when a scan noticed,
    # so a scan that was down does not postpone it.
    escalations = (
        late_escalation.filter(overdue_after__lte=now - escalate_after)
        .filter(_without(ReminderKind.ESCALATION))
        .values(*_STEP_FIELDS)
        if scope.clock
        else ()
    )
    for step in escalations:
        recipients = escalation_recipients(directory(), step)
        if not recipients:
            log.warning("nobody to escalate step id=%s to", step["id"])
        rows += directory().rows(
            kind=ReminderKind.ESCALATION, recipients=recipients, due_at=now, for_day=step["due_on"], step_id=step["id"]
        )

    # "Coming up": planned ahead so the log shows what is scheduled, and so it can be snoozed or cancelled.
    # (No statement when a scan knows the previous one and no journey changed: nothing new is coming up.)
    upcoming = due_today = ()
    if writes:
        longest_lead = max(lead_default, StepReminderPolicy.objects.aggregate(m=Max("upcoming_lead_hours"))["m"] or 0)
        upcoming = (
            active_pending.filter(
                overdue_since__isnull=True, due_on__gt=today, due_on__lte=horizon + timedelta(days=longest_lead // 24 + 1)
            )
            .filter(_without(ReminderKind.UPCOMING))
            .values(*_STEP_FIELDS)
        )
        due_today = (
            active_pending.filter(overdue_since__isnull=True, due_on__gte=today, due_on__lte=horizon)
            .filter(_without(ReminderKind.DUE_TODAY))
            .values(*_STEP_FIELDS)
        )
    for step in upcoming:
        lead = step["template__reminder_policy__upcoming_lead_hours"] if step["template__reminder_policy__id"] else lead_default
        if not lead:
            continue
        due_at = upcoming_at(step["due_on"], lead)
        # Once the morning of the day has come, "coming up" is stale: the day's own reminder says it.
        if now >= morning_of(step["due_on"]) or due_at > clinic_moment(horizon, time.max):
            continue
        rows += directory().rows(
            kind=ReminderKind.UPCOMING, recipients=recipients_for(step), due_at=due_at, for_day=step["due_on"], step_id=step["id"]
        )

    for step in due_today:
        if step["template__reminder_policy__id"] and not step["template__reminder_policy__remind_on_the_day"]:
            continue
        rows += directory().rows(
            kind=ReminderKind.DUE_TODAY,
            recipients=recipients_for(step),
            due_at=morning_of(step["due_on"]),
            for_day=step["due_on"],
            step_id=step["id"],
        )

    digest_at = clinic_moment(today, wall_time(settings.REMINDER_DIGEST_TIME))
    # A coordinator who joins later in the day gets the digest from the next hourly sweep.
    if now >= digest_at and (scope.everything or scope.since < digest_at):
        has_digest = set(Reminder.objects.filter(kind=ReminderKind.DIGEST, for_day=today).values_list("recipient_id", flat=True))
        waiting = [user_id for user_id in directory().by_role.get(Role.COORDINATOR, []) if user_id not in has_digest]
        rows += directory().rows(kind=ReminderKind.DIGEST, recipients=waiting, due_at=digest_at, for_day=today)

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
        Reminder.objects.bulk_create(
            [
                Reminder(
                    kind=kind,
                    step_id=step_id,
                    for_day=for_day,
                    recipient_id=recipient_id,
                    channel=channel,
                    due_at=due_at,
                    send_after=due_at,
                    created_at=now,
                )
                for kind, step_id, for_day, recipient_id, channel, due_at in rows
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        return Reminder.objects.filter(created_at=now).count() - before
    columns = [list(column) for column in zip(*rows, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_REMINDERS, [now, *columns])
        return len(cursor.fetchall())
