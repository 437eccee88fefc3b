"""Writes of the registry app: the audit row of an export, written before the export is streamed."""

from django.utils import timezone

from registry.models import ExportChannel, ExportFormat, ExportKind, RegistryExport
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
