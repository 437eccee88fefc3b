"""The clinic metrics page and its CSV exports. Reads come from registry.selectors, the audit row from
registry.services; the views parse the range and choose the template."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
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


@role_required(Action.VIEW_METRICS)
def metrics_page(request):
    form = _range_form(request.GET)
    date_range = form.range()
    metrics = selectors.clinic_metrics(now=timezone.now(), **date_range)
    return render(
        request,
        "registry/metrics.html",
        {
            "form": form,
            "m": metrics,
            "range": {key: value.isoformat() for key, value in date_range.items() if value},
        },
    )


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
