"""Celery tasks: a few lines each, calling the webhook services."""

from celery import shared_task

from apiclients import services, webhooks


@shared_task(acks_late=True)
def webhooks_scan_task() -> int:
    """Every minute (beat): owed deliveries are created and the due ones enqueued."""
    due = webhooks.webhooks_scan()
    for delivery_id in due:
        webhook_deliver_task.delay(delivery_id)
    return len(due)


@shared_task(acks_late=True)
def webhook_deliver_task(delivery_id: int) -> str:
    return webhooks.webhook_deliver(delivery_id=delivery_id)


@shared_task(acks_late=True)
def idempotent_requests_purge_task() -> int:
    """Hourly (beat): stored Idempotency-Key answers older than a day are dropped."""
    return services.idempotent_requests_purge()
