"""The clinic metrics page and its CSV exports. Reads come from registry.selectors, the audit row and the
snapshot from registry.services; the views parse the range and choose the template.

The page shows the range's stored snapshot (one query), computing it first when the range has none yet or
its snapshot is older than METRICS_SNAPSHOT_MAX_AGE_MINUTES. The CSV exports compute their table from the
live data at the moment of export: an export is a record that leaves the clinic, so it is exact, not as of
the last snapshot."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from carclinic.errors import NotPermitted
from registry import exports, selectors, services
from registry.forms import DateRangeForm
from registry.models import ExportChannel, ExportKind
from staff.access import role_required
from staff.roles import Action

METRICS_TABLES = [kind for kind in ExportKind.values if kind != ExportKind.REGISTRY]


def _range_form(data) -> DateRangeForm:
    return DateRangeForm({name: data[name] for name in ("since", "until") if data.get(name)} or None)


def _refresh(request, date_range: dict):
    try:
        return services.metrics_snapshot_refresh(date_from=date_range["since"], date_to=date_range["until"], actor=request.user)
    except NotPermitted as refused:
        raise PermissionDenied(refused.message) from refused


@role_required(Action.VIEW_METRICS)
def metrics_page(request):
    form = _range_form(request.GET)
    date_range = form.range()
    snapshot = selectors.metrics_snapshot_get(date_from=date_range["since"], date_to=date_range["until"])
    if snapshot is None or selectors.metrics_snapshot_is_stale(snapshot):
        snapshot = _refresh(request, date_range)
    return render(
        request,
        "registry/metrics.html",
        {
            "form": form,
            "m": selectors.metrics_from_json(snapshot.tables),
            "snapshot": snapshot,
            "interval_minutes": settings.METRICS_SNAPSHOT_INTERVAL_MINUTES,
            "max_age_minutes": settings.METRICS_SNAPSHOT_MAX_AGE_MINUTES,
            "range": {key: value.isoformat() for key, value in date_range.items() if value},
        },
    )


@role_required(Action.VIEW_METRICS)
@require_POST
def metrics_recompute(request):
    """Recompute the range's snapshot now ("Recompute now"), then show the page again under the same range."""
    form = _range_form(request.POST)
    date_range = form.range()
    snapshot = _refresh(request, date_range)
    messages.success(request, f"Metrics recomputed as of {timezone.localtime(snapshot.computed_at):%H:%M}.")
    query = urlencode({key: value.isoformat() for key, value in date_range.items() if value})
    return redirect(reverse("registry:metrics") + (f"?{query}" if query else ""))


@role_required(Action.VIEW_METRICS)
@require_POST
def metrics_csv(request, kind: str):
    """One table of the page as CSV, under the page's range; recorded before it is streamed."""
    if kind not in METRICS_TABLES:
        raise Http404
    date_range = _range_form(request.POST).range()
    metrics = selectors.clinic_metrics(now=timezone.now(), **date_range)
    header, rows = exports.metrics_table(kind, metrics)
    try:
        services.export_record(
            actor=request.user,
            kind=kind,
            channel=ExportChannel.PAGE,
            filters={key: value.isoformat() for key, value in date_range.items() if value},
            row_count=len(rows),
        )
    except NotPermitted as refused:
        raise PermissionDenied(refused.message) from refused
    response = StreamingHttpResponse(exports.csv_lines(header, iter(rows)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="carclinic-metrics-{kind}-{timezone.localdate():%Y-%m-%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response
