"""Celery tasks: ids in, one service call inside, safe to run twice.

acks_late: a task whose worker dies is delivered again; the services make a second run harmless (the
scan is state-based, sending claims rows before it sends).
"""

import logging

from celery import shared_task
from django.db import OperationalError, transaction

from notifications import services

log = logging.getLogger("carclinic.reminders")

TRANSIENT = (OperationalError, ConnectionError)
_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


def enqueue_send_due() -> None:
    """After the current transaction commits, ask a worker to send what is due. If the broker is down the
    reminders stay in the outbox; the next periodic run sends them, so this is logged, not raised."""
    transaction.on_commit(send_due_reminders.delay, robust=True)


@shared_task(name="notifications.scan_overdue", **_TASK_OPTIONS)
def scan_overdue() -> dict:
    result = services.overdue_scan()
    if result.created:
        enqueue_send_due()
    return {"flagged": result.flagged, "unflagged": result.unflagged, "created": result.created}


@shared_task(name="notifications.send_due_reminders", **_TASK_OPTIONS)
def send_due_reminders() -> dict:
    result = services.reminders_send_due()
    return {"claimed": result.claimed, "sent": result.sent, "retrying": result.retrying, "failed": result.failed}


@shared_task(name="notifications.send_reminder", **_TASK_OPTIONS)
def send_reminder(reminder_id: int) -> dict | None:
    result = services.reminder_send(reminder_id=reminder_id)
    return None if result is None else {"sent": result.sent}
