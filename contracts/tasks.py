"""Celery tasks: no argument but the clock, one service call inside, safe to run twice (a status that did not
change writes nothing). The hourly full refresh catches what time alone changes (a milestone reached, a visit
gone overdue); the minute one follows the journeys' events, so a recorded flare shows within a minute."""

from celery import shared_task
from django.db import OperationalError

from contracts import services

_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="contracts.refresh_all", **_TASK_OPTIONS)
def refresh_all() -> dict:
    result = services.enrolments_refresh()
    return {"looked_at": result.looked_at, "changed": result.changed, "told": result.told}


@shared_task(name="contracts.refresh_changed", **_TASK_OPTIONS)
def refresh_changed() -> dict:
    result = services.enrolments_refresh_changed()
    return {"looked_at": result.looked_at, "changed": result.changed, "told": result.told}
