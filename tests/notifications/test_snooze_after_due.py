"""A snooze only ever puts a reminder off: a time before the reminder is due would send it early (issue 14)."""

from datetime import date, timedelta

import pytest
from django.urls import reverse

from carclinic.errors import InvalidInput
from notifications.models import Channel, Reminder, ReminderEvent, ReminderKind
from notifications.services import overdue_scan, reminder_snooze
from tests.notifications.conftest import local

PLANNED_AT = local(date(2026, 2, 24), 9)  # leukapheresis on 2 March: its reminders are scheduled, not yet due


@pytest.fixture
def scheduled(start_journey, time_machine):
    time_machine.move_to(PLANNED_AT, tick=False)
    journey = start_journey()
    overdue_scan()
    return Reminder.objects.filter(
        step__journey=journey, step__template__code="leukapheresis", kind=ReminderKind.UPCOMING, channel=Channel.EMAIL
    ).get()


def test_a_snooze_to_before_the_due_time_is_refused_and_changes_nothing(scheduled, coordinator):
    assert scheduled.due_at > PLANNED_AT + timedelta(hours=1)  # in the future, but before it is due
    with pytest.raises(InvalidInput) as refused:
        reminder_snooze(
            actor=coordinator,
            reminder_id=scheduled.id,
            until=scheduled.due_at - timedelta(hours=1),
            reason="x",
            every_channel=True,
        )
    assert "later than when it is due" in refused.value.field_errors["until"][0]
    with pytest.raises(InvalidInput):
        reminder_snooze(actor=coordinator, reminder_id=scheduled.id, until=scheduled.due_at, reason="x")
    scheduled.refresh_from_db()
    assert scheduled.snoozed_until is None and not ReminderEvent.objects.exists()
    later = reminder_snooze(
        actor=coordinator, reminder_id=scheduled.id, until=scheduled.due_at + timedelta(minutes=1), reason="ward busy"
    )
    assert later.snoozed_until == scheduled.due_at + timedelta(minutes=1)


@pytest.mark.django_db
def test_the_snooze_page_says_so_next_to_the_time(client, scheduled, coordinator):
    client.force_login(coordinator)
    early = scheduled.due_at - timedelta(hours=2)
    response = client.post(
        reverse("notifications:snooze", args=[scheduled.public_id]), {"until": early.strftime("%Y-%m-%dT%H:%M"), "reason": "x"}
    )
    assert response.status_code == 400
    assert "Must be later than when it is due" in response.content.decode()
