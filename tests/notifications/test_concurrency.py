"""Two scans at once, and the same send task delivered to two workers at once, on real PostgreSQL: no
duplicate flag, reminder, e-mail or in-app notification. Threads, each with its own connection."""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection

from journeys.models import Step
from notifications.models import Notification, Reminder, ReminderState
from notifications.services import overdue_scan, reminders_send_due
from tests.notifications.conftest import local

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

AT = local(date(2026, 3, 4), 8)


def _run_together(*calls):
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - surfaced to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_two_scans_at_once_flag_each_step_once_and_create_each_reminder_once(start_journey):
    for _ in range(6):
        start_journey()
    results = _run_together(
        lambda: overdue_scan(now=AT),
        lambda: overdue_scan(now=AT + timedelta(seconds=1)),
        lambda: overdue_scan(now=AT + timedelta(seconds=2)),
    )
    flagged = Step.objects.filter(overdue_since__isnull=False).count()
    assert flagged == 6 * 3
    # Each step was flagged by exactly one of the scans: the counts add up, and none was flagged twice.
    assert sum(r.flagged for r in results) == flagged
    planned = Reminder.objects.count()
    # What a single scan on a fresh copy would create: the constraint let no duplicate in.
    keys = set(Reminder.objects.values_list("step_id", "kind", "recipient_id", "channel", "for_day"))
    assert len(keys) == planned
    assert sum(r.created for r in results) == planned
    assert overdue_scan(now=AT + timedelta(seconds=3)).created == 0


def test_the_same_send_on_two_workers_at_once_sends_everything_once(start_journey, mailoutbox):
    for _ in range(4):
        start_journey()
    overdue_scan(now=AT)
    due = Reminder.objects.filter(send_after__lte=AT).count()
    results = _run_together(
        lambda: reminders_send_due(now=AT), lambda: reminders_send_due(now=AT), lambda: reminders_send_due(now=AT)
    )
    assert sum(r.claimed for r in results) == due
    assert Reminder.objects.filter(send_after__lte=AT, state=ReminderState.SENT).count() == due
    recipients = [tuple(m.to) for m in mailoutbox]
    assert len(recipients) == len(set(recipients)) == 3  # nurse, physician, coordinator: once each
    assert Notification.objects.count() <= 3 * len(results)
    per_person = list(Notification.objects.values_list("recipient_id", flat=True))
    items = sum(1 for n in Notification.objects.all() for item in n.items if item["kind"] != "digest")
    assert items == Reminder.objects.filter(send_after__lte=AT, channel="in_app").exclude(kind="digest").count()
    assert len(per_person) >= 3
