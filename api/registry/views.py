"""The registry export for a registry's API client (role "registry"; every other role is refused 403): the
pseudonymous file as CSV at the registry time points, or FHIR R4 resources as NDJSON (one per line, the
FHIR Bulk Data convention), streamed chunk by chunk. The export is recorded before the first byte."""

from datetime import datetime, time

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.renderers import JSONRenderer

from api.base import ApiV1View
from api.views import errors
from apiclients.selectors import patients_visible_to
from carclinic.errors import InvalidInput
from registry import exports, services
from registry.models import ExportChannel, ExportFormat, ExportKind
from staff.roles import Action, authorize

MEDIA_TYPES = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.NDJSON: "application/fhir+ndjson"}


class CanExportRegistry(permissions.BasePermission):
    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        authorize(request.user, Action.EXPORT_REGISTRY)
        return True


def _since(value: str):
    """An ISO instant (FHIR's `_since`) or a date (from its midnight in the clinic's zone)."""
    if not value:
        return None
    try:
        moment = parse_datetime(value)
        day = None if moment else parse_date(value)
    except ValueError:
        moment = day = None
    if moment is None and day is None:
        raise InvalidInput("Bad `since`.", field_errors={"since": ["Give an ISO date or date and time, e.g. 2026-01-31."]})
    if moment is None:
        moment = timezone.make_aware(datetime.combine(day, time.min))
    elif timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class RegistryExportView(ApiV1View):
    permission_classes = [CanExportRegistry]

    def perform_content_negotiation(self, request, force=False):
        # `format` names the file's format here, not DRF's renderer; errors still answer in JSON.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        operation_id="registry_export",
        summary="The registry export (CSV or FHIR R4 NDJSON), streamed",
        description="Pseudonymous: patients by id only. `format=csv` (default): one row per patient, journey and "
        "registry time point (Day 100, month 6, year 1, then yearly), values from the nearest visit in the "
        "time point's window. `format=ndjson`: FHIR R4 Patient (id only) and an Observation per recorded value, "
        "one resource per line. `since`: only patients whose follow-up changed since then. Role: registry.",
        parameters=[
            OpenApiParameter("format", str, OpenApiParameter.QUERY, enum=ExportFormat.values, required=False),
            OpenApiParameter(
                "since", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False, description="ISO date or date-time."
            ),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            (200, "application/fhir+ndjson"): OpenApiResponse(OpenApiTypes.STR, description="NDJSON"),
            **errors(400),
        },
    )
    def get(self, request):
        fmt = request.query_params.get("format") or ExportFormat.CSV
        if fmt not in ExportFormat.values:
            raise InvalidInput("Bad `format`.", field_errors={"format": [f"Choose one of: {', '.join(ExportFormat.values)}."]})
        since = _since(request.query_params.get("since", ""))
        client = self.api_client
        scope = None if client is None or client.sees_all_patients else patients_visible_to(client=client).values("id")
        patients = exports.registry_patients(since=since, patient_scope=scope)
        services.export_record(
            actor=request.user,
            kind=ExportKind.REGISTRY,
            channel=ExportChannel.API,
            fmt=fmt,
            filters={"since": since.isoformat() if since else None},
            row_count=patients.count(),
        )
        today = timezone.localdate()
        response = StreamingHttpResponse(
            exports.registry_lines(fmt=fmt, patients=patients, today=today), content_type=MEDIA_TYPES[fmt]
        )
        response["Content-Disposition"] = f'attachment; filename="carclinic-registry-{today:%Y-%m-%d}.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response
