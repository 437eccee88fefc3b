"""Celery tasks: dates as ISO text, never objects; one service call inside; safe to run twice (the range keeps
one snapshot row, replaced). The beat entry (settings.CELERY_BEAT_SCHEDULE) refreshes the page's default range
every METRICS_SNAPSHOT_INTERVAL_MINUTES, so the page reads a stored snapshot instead of aggregating."""

from datetime import date

from celery import shared_task
from django.db import OperationalError

from registry import services


@shared_task(
    name="registry.metrics_snapshot_refresh",
    acks_late=True,
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def metrics_snapshot_refresh(date_from: str | None = None, date_to: str | None = None) -> dict:
    snapshot = services.metrics_snapshot_refresh(
        date_from=date.fromisoformat(date_from) if date_from else None,
        date_to=date.fromisoformat(date_to) if date_to else None,
    )
    return {"range": snapshot.range_key, "computed_at": snapshot.computed_at.isoformat(), "duration_ms": snapshot.duration_ms}
