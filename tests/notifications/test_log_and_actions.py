"""The notification log, what people do to reminders (snooze, cancel, read), preferences, and health."""

from datetime import date, timedelta

import pytest
from django.urls import reverse

from carclinic.errors import Conflict, InvalidInput, NotPermitted
from notifications.models import Channel, Notification, Reminder, ReminderEvent, ReminderKind, ReminderState
from notifications.selectors import (
    clinic_reminder_log,
    reminder_health,
    reminders_for_patient,
    unread_notification_count,
)
from notifications.services import (
    notification_mark_read,
    notifications_mark_all_read,
    overdue_scan,
    preference_set,
    reminder_cancel,
    reminder_snooze,
    reminders_send_due,
)
from tests.notifications.conftest import local

PLANNED_AT = local(date(2026, 2, 24), 9)  # leukapheresis on 2 March: its reminders are scheduled, not yet due


@pytest.fixture
def scheduled(start_journey, staff_team, time_machine):
    time_machine.move_to(PLANNED_AT, tick=False)
    journey = start_journey()
    overdue_scan()
    return journey, Reminder.objects.filter(
        step__journey=journey, step__template__code="leukapheresis", kind=ReminderKind.UPCOMING, channel=Channel.EMAIL
    ).get()


def test_coordinator_snoozes_a_scheduled_reminder_with_a_reason(scheduled, coordinator, mailoutbox, time_machine):
    _, reminder = scheduled
    until = reminder.due_at + timedelta(hours=4)
    snoozed = reminder_snooze(actor=coordinator, reminder_id=reminder.id, until=until, reason="Patient phoned; ward busy")
    assert snoozed.send_after == snoozed.snoozed_until == until and snoozed.state == ReminderState.PENDING
    event = ReminderEvent.objects.get(reminder=reminder)
    assert (event.action, event.actor, event.reason) == ("snoozed", coordinator, "Patient phoned; ward busy")
    reminders_send_due(now=reminder.due_at + timedelta(minutes=1))
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.PENDING
    reminders_send_due(now=until)
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.SENT


def test_cancel_needs_a_reason_and_a_role_and_only_works_on_scheduled_ones(scheduled, coordinator, nurse):
    _, reminder = scheduled
    with pytest.raises(NotPermitted):
        reminder_cancel(actor=nurse, reminder_id=reminder.id, reason="no")
    with pytest.raises(InvalidInput):
        reminder_cancel(actor=coordinator, reminder_id=reminder.id, reason="  ")
    cancelled = reminder_cancel(actor=coordinator, reminder_id=reminder.id, reason="Collection moved to the other site")
    assert (cancelled.state, cancelled.cancelled_by, cancelled.cancel_reason) == (
        ReminderState.CANCELLED,
        coordinator,
        "Collection moved to the other site",
    )
    # The second of two coordinators is told, not silently ignored.
    with pytest.raises(Conflict):
        reminder_cancel(actor=coordinator, reminder_id=reminder.id, reason="again")
    # A cancelled reminder is never re-created by later scans.
    overdue_scan(now=PLANNED_AT + timedelta(hours=1))
    assert Reminder.objects.filter(step=reminder.step, kind=reminder.kind, channel=reminder.channel).count() == 1


def test_snooze_limits(scheduled, coordinator):
    _, reminder = scheduled
    with pytest.raises(InvalidInput):
        reminder_snooze(actor=coordinator, reminder_id=reminder.id, until=PLANNED_AT - timedelta(hours=1), reason="x")
    with pytest.raises(InvalidInput):
        reminder_snooze(actor=coordinator, reminder_id=reminder.id, until=PLANNED_AT + timedelta(days=31), reason="x")


def test_patient_log_shows_sent_and_scheduled_with_constant_queries(scheduled, start_journey, django_assert_num_queries):
    journey, _ = scheduled
    reminders_send_due(now=local(date(2026, 2, 28), 7))
    rows = list(reminders_for_patient(patient_id=journey.patient_id, now=local(date(2026, 2, 28), 7, 1)))
    states = {r.state for r in rows}
    assert ReminderState.SENT in states and ReminderState.PENDING in states
    for _ in range(3):
        start_journey()
    overdue_scan(now=PLANNED_AT)
    with django_assert_num_queries(1):
        log = [
            (r.step.template.name, r.step.journey.patient.public_id, r.recipient.display_name)
            if r.step
            else (r.kind, r.recipient.display_name)
            for r in clinic_reminder_log(now=PLANNED_AT)
        ]
    assert len(log) > 20


def test_in_app_unread_count_and_mark_read(start_journey, nurse, coordinator):
    start_journey()
    overdue_scan(now=local(date(2026, 3, 4), 8))
    reminders_send_due(now=local(date(2026, 3, 4), 8))
    assert unread_notification_count(user=nurse) == 1
    note = Notification.objects.get(recipient=nurse)
    assert notification_mark_read(actor=coordinator, notification_public_id=note.public_id) == 0  # not theirs
    assert notification_mark_read(actor=nurse, notification_public_id=note.public_id) == 1
    assert unread_notification_count(user=nurse) == 0
    assert notifications_mark_all_read(actor=coordinator) >= 1
    assert unread_notification_count(user=coordinator) == 0


def test_email_preference_off_keeps_the_app_notification(start_journey, nurse, mailoutbox):
    preference_set(actor=nurse, kind=ReminderKind.OVERDUE, email=False)
    start_journey()
    overdue_scan(now=local(date(2026, 3, 4), 8))
    reminders_send_due(now=local(date(2026, 3, 4), 8))
    assert not [m for m in mailoutbox if m.to == [nurse.email]]
    assert Notification.objects.filter(recipient=nurse).exists()
    with pytest.raises(InvalidInput):
        preference_set(actor=nurse, kind="sms", email=True)


def test_health_figures_and_staff_only_view(start_journey, client, make_user):
    start_journey()
    now = local(date(2026, 3, 4), 8)
    overdue_scan(now=now)
    health = reminder_health(now=now + timedelta(minutes=10))
    assert health["last_scan_at"] == now and health["last_scan_age_seconds"] == 600
    assert health["pending_due"] > 0 and health["oldest_pending_age_seconds"] >= 600
    url = reverse("notifications:health")
    client.force_login(make_user("nurse"))
    assert client.get(url).status_code == 302  # not staff: sent to sign in
    client.force_login(make_user("admin", is_staff=True))
    body = client.get(url).json()
    assert body["pending_due"] == Reminder.objects.filter(state="pending").exclude(send_after__gt=body["now"]).count()


def test_every_channel_acts_on_the_persons_copies_only_and_the_second_caller_loses(scheduled, coordinator, physician):
    _, reminder = scheduled
    copies = Reminder.objects.filter(
        step=reminder.step, kind=reminder.kind, recipient=reminder.recipient, for_day=reminder.for_day
    )
    assert copies.count() == 2  # in the app and by e-mail
    untouched = set(Reminder.objects.filter(state=ReminderState.PENDING).exclude(id__in=copies).values_list("id", flat=True))
    until = reminder.due_at + timedelta(hours=2)
    reminder_snooze(actor=coordinator, reminder_id=reminder.id, until=until, reason="ward round", every_channel=True)
    assert {(c.snoozed_until, c.send_after) for c in copies.all()} == {(until, until)}
    assert ReminderEvent.objects.filter(action="snoozed").count() == 2
    reminder_cancel(actor=physician, reminder_id=reminder.id, reason="plan changed", every_channel=True)
    assert {c.state for c in copies.all()} == {ReminderState.CANCELLED}
    with pytest.raises(Conflict):  # a second coordinator, a moment later, changes nothing and is told so
        reminder_cancel(actor=coordinator, reminder_id=reminder.id, reason="also", every_channel=True)
    assert ReminderEvent.objects.filter(action="cancelled").count() == 2
    assert set(Reminder.objects.filter(state=ReminderState.PENDING).values_list("id", flat=True)) == untouched
