"""Writes of the registry app: the audit row of an export, written before the export is streamed; the stored
snapshot of the metrics tables."""

import time
from datetime import date

from django.db import transaction
from django.utils import timezone

from registry import selectors
from registry.models import SCHEDULED, ExportChannel, ExportFormat, ExportKind, MetricsSnapshot, RegistryExport
from staff.roles import Action, authorize


def export_record(
    *, actor, kind: str, channel: str, filters: dict, row_count: int, fmt: str = ExportFormat.CSV, server_account: str = ""
) -> RegistryExport:
    """Record who exports what. A metrics table needs VIEW_METRICS, the registry file through the API
    EXPORT_REGISTRY; the command (no actor) is the server's operator, named by `server_account`."""
    if channel == ExportChannel.COMMAND:
        label = f"server:{server_account or 'unknown'}"
        actor = None
    else:
        authorize(actor, Action.EXPORT_REGISTRY if kind == ExportKind.REGISTRY else Action.VIEW_METRICS)
        client = getattr(actor, "api_client", None) if channel == ExportChannel.API else None
        label = f"api:{client.name}" if client is not None else actor.get_username()
    return RegistryExport.objects.create(
        kind=kind,
        format=fmt,
        channel=channel,
        exported_by=actor,
        exported_by_label=label[:150],
        exported_at=timezone.now(),
        filters={k: v for k, v in filters.items() if v not in (None, "")},
        row_count=row_count,
    )


def metrics_snapshot_refresh(*, date_from: date | None, date_to: date | None, actor=None) -> MetricsSnapshot:
    """Compute the metrics tables of a range through the selectors and store them as that range's one
    snapshot (insert or replace). Safe to run twice: the second run replaces the row, it adds none.
    `actor` None is the scheduled refresh; a user must be allowed to see the metrics."""
    if actor is not None:
        authorize(actor, Action.VIEW_METRICS)
    started = time.perf_counter()
    now = timezone.now()
    # The selectors read outside the write's transaction: minutes of aggregation at a large clinic should
    # not hold a transaction open; the upsert below is the one write.
    metrics = selectors.clinic_metrics(now=now, since=date_from, until=date_to)
    snapshot = MetricsSnapshot(
        range_key=selectors.metrics_range_key(date_from=date_from, date_to=date_to),
        date_from=date_from,
        date_to=date_to,
        computed_at=now,
        computed_by=actor,
        computed_by_label=(actor.get_username() if actor is not None else SCHEDULED)[:150],
        duration_ms=round((time.perf_counter() - started) * 1000),
        tables=selectors.metrics_as_json(metrics),
    )
    with transaction.atomic():
        # INSERT … ON CONFLICT (range_key) DO UPDATE: two requests computing the same new range at once both
        # succeed, and the range keeps one row (a get-then-create would let the second fail on the key).
        MetricsSnapshot.objects.bulk_create(
            [snapshot],
            update_conflicts=True,
            unique_fields=["range_key"],
            update_fields=["date_from", "date_to", "computed_at", "computed_by", "computed_by_label", "duration_ms", "tables"],
        )
    return snapshot
