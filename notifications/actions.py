"""What people do to reminders and notifications: snooze or cancel a scheduled reminder (with a reason,
audited; `Action.MANAGE_REMINDERS`), mark notifications read, choose what comes by e-mail.
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from carclinic.errors import Conflict, InvalidInput, NotPermitted
from notifications.models import Notification, Reminder, ReminderEvent, ReminderKind, ReminderState, UserNotificationPreference
from staff.roles import Action, can

log = logging.getLogger("carclinic.reminders")


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
    first = (
        Reminder.objects.select_for_update()
        .filter(id=reminder_id, state=ReminderState.PENDING)
        .values("step_id", "kind", "recipient_id", "for_day")
        .first()
    )
    if first is None:
        raise Conflict(NO_LONGER_SCHEDULED)
    if not every_channel:
        return [reminder_id]
    return list(
        Reminder.objects.select_for_update()
        .filter(state=ReminderState.PENDING, **first)
        .order_by("id")
        .values_list("id", flat=True)
    )


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
    # "Snoozed" until before it was even due would send it early: a snooze only ever puts a reminder off.
    due_at = Reminder.objects.filter(id=reminder_id).values_list("due_at", flat=True).get()
    if until <= due_at:
        shown = timezone.localtime(due_at)
        raise InvalidInput(
            f"Snooze until a time after the reminder is due ({shown:%a %d %b %Y %H:%M}).",
            field_errors={"until": [f"Must be later than when it is due: {shown:%a %d %b %Y %H:%M}."]},
        )
    Reminder.objects.filter(id__in=ids).update(send_after=until, snoozed_until=until)
    ReminderEvent.objects.bulk_create(
        [
            ReminderEvent(
                reminder_id=i,
                action=ReminderEvent.Action.SNOOZED,
                reason=reason,
                detail={"until": until.isoformat()},
                actor=actor,
                at=now,
            )
            for i in ids
        ]
    )
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
        state=ReminderState.CANCELLED, cancelled_at=now, cancelled_by=actor, cancel_reason=reason
    )
    ReminderEvent.objects.bulk_create(
        [ReminderEvent(reminder_id=i, action=ReminderEvent.Action.CANCELLED, reason=reason, actor=actor, at=now) for i in ids]
    )
    for i in ids:
        log.info("reminder cancelled id=%s by=%s", i, actor.pk)
    return Reminder.objects.get(id=reminder_id)


def notification_mark_read(*, actor, notification_public_id) -> int:
    """Mark one of the actor's own notifications read; another person's is simply not found."""
    return Notification.objects.filter(public_id=notification_public_id, recipient=actor, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def notifications_mark_all_read(*, actor) -> int:
    return Notification.objects.filter(recipient=actor, read_at__isnull=True).update(read_at=timezone.now())


def preference_set(*, actor, kind: str, email: bool) -> UserNotificationPreference:
    """Choose whether a kind of reminder reaches the actor by e-mail; the app always shows it."""
    if kind not in ReminderKind.values:
        raise InvalidInput("Unknown kind of reminder.", field_errors={"kind": ["Unknown kind."]})
    preference, _ = UserNotificationPreference.objects.update_or_create(user=actor, kind=kind, defaults={"email": email})
    return preference
