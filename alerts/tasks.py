"""Celery tasks: ids in, one service call inside, safe to run twice (deliveries are claimed, escalation is
a claim too)."""

from celery import shared_task
from django.db import OperationalError

from alerts import delivery, services

_TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (OperationalError, ConnectionError),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="alerts.deliver_alert", **_TASK_OPTIONS)
def deliver_alert(alert_id: int) -> dict:
    result = delivery.alert_deliveries_send(alert_id=alert_id)
    return {"sent": result.sent, "retrying": result.retrying, "failed": result.failed}


@shared_task(name="alerts.scan", **_TASK_OPTIONS)
def scan() -> dict:
    """Escalate what nobody acknowledged in time, and send what is due (retries, messages whose enqueue was lost)."""
    escalated = services.alerts_escalate_due()
    result = delivery.alert_deliveries_send()
    return {"escalated": escalated, "sent": result.sent, "retrying": result.retrying, "failed": result.failed}
