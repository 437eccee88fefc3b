"""The REST API v1: one view per operation. Reads go through `journeys.selectors`, the one write
through `journeys.services.step_complete`; objects outside the caller's scope answer 404."""

from base64 import b64decode, b64encode
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from api import fhir, idempotency
from api.base import ApiV1Mixin, ApiV1View, conditional_response
from api.filters import PatientFilter, StepFilter
from api.serializers import (
    ErrorSerializer,
    JourneyDetailSerializer,
    PatientDetailSerializer,
    PatientListItemSerializer,
    PatientSearchInputSerializer,
    PatientStatusSerializer,
    StepCompleteInputSerializer,
    StepConflictSerializer,
    StepListItemSerializer,
    parse_step_etag,
    step_etag,
)
from apiclients.selectors import patients_visible_to
from carclinic.errors import Conflict, DomainError
from journeys import selectors
from journeys import status as journey_status
from journeys.services import step_complete
from staff.roles import Action, authorize

# The `sync_from` watermark lags the clock by this much: a transaction still open while a list was
# read commits with an earlier timestamp, and the next sync must not miss it. Clients may see a
# patient twice; they never miss one.
SYNC_OVERLAP_SECONDS = 120

_ERRORS = {
    400: "Some values need correcting: `field_errors` names them.",
    401: "No key, or a key that is not valid, revoked or expired.",
    403: "The client's role does not allow this (or, on a write, the caller is a browser session, not a key).",
    404: "No such object, or not visible to this client (on a list: a cursor not made by this API).",
    409: "Someone changed the step first; `current` shows it now.",
    422: "This Idempotency-Key was used for a different request.",
    428: "If-Match is required.",
    429: "Too many requests: wait the seconds in Retry-After.",
}


def errors(*codes: int) -> dict:
    return {code: OpenApiResponse(ErrorSerializer, description=_ERRORS[code]) for code in (401, 403, 429, *codes)}


PATIENT_ID = OpenApiParameter("patient_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The patient's id.")
STEP_ID = OpenApiParameter("step_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The step's id.")
NOT_MODIFIED = OpenApiResponse(description="Not modified: the If-None-Match ETag is still current.")


class SyncCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # isdigit() is true for "²", which int() refuses: ASCII digits only.
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
        return parameters

    def paginate_queryset(self, queryset, request, view=None):
        # The watermark of the first page holds for the whole pass: its cursors carry it along, so a
        # change to a patient on a page already read is caught by the next sync.
        self.sync_from = timezone.now() - timedelta(seconds=SYNC_OVERLAP_SECONDS)
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            # A crafted position would reach the query as a value its column cannot hold (500): refuse it here.
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            try:
                field.to_python(cursor.position)
                if "\x00" in cursor.position:
                    raise ValueError
            except (DjangoValidationError, ValueError, TypeError, OverflowError):
                raise NotFound(self.invalid_cursor_message) from None
        if cursor is not None:
            encoded = request.query_params.get(self.cursor_query_param, "")
            try:
                carried = parse_qs(b64decode(encoded.encode("ascii")).decode("ascii")).get("s", [""])[0]
                self.sync_from = datetime.fromisoformat(carried) if carried else self.sync_from
            except ValueError:
                pass  # DRF accepted the cursor, so only our addition is unreadable: keep the fresh watermark
        return cursor

    def encode_cursor(self, cursor):
        tokens = {"s": self.sync_from.isoformat()}
        if cursor.offset:
            tokens["o"] = str(cursor.offset)
        if cursor.reverse:
            tokens["r"] = "1"
        if cursor.position is not None:
            tokens["p"] = cursor.position
        encoded = b64encode(urlencode(tokens, doseq=True).encode("ascii")).decode("ascii")
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def get_paginated_response(self, data):
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "sync_from": self.sync_from, "results": data}
        )

    def get_paginated_response_schema(self, schema):
        base = super().get_paginated_response_schema(schema)
        base["properties"]["sync_from"] = {
            "type": "string",
            "format": "date-time",
            "description": "Pass as `updated_since` on your next sync to get only what changed since.",
        }
        base["required"] = ["results", "sync_from"]
        # DRF's examples end in a stray quote and name another API (Spectral: oas3-valid-schema-example).
        base["properties"]["next"]["example"] = "https://clinic.example.org/api/v1/patients/?cursor=cD00ODY%3D"
        base["properties"]["previous"]["example"] = "https://clinic.example.org/api/v1/patients/?cursor=cj0xJnA9NDg3"
        return base


class PatientCursorPagination(SyncCursorPagination):
    # By public id: unique and indexed, so a page reads only its own rows however many patients there
    # are, and the cursor reveals nothing countable. A patient enrolled during a pass may fall before
    # the cursor; the pass's `sync_from` predates it, so the next sync brings it.
    ordering = ("public_id",)


class StepCursorPagination(SyncCursorPagination):
    ordering = ("due_on", "id")


class ReadView(ApiV1View):
    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def visible_patients(self):
        return patients_visible_to(client=self.api_client)

    def get_patient(self, queryset=None):
        queryset = queryset if queryset is not None else self.visible_patients()
        patient = queryset.filter(public_id=self.kwargs["patient_id"]).first()
        if patient is None:
            raise Http404
        return patient


class PatientListView(ApiV1Mixin, ListAPIView):
    serializer_class = PatientListItemSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = PatientFilter
    pagination_class = PatientCursorPagination

    def get_queryset(self):
        return selectors.patients_for_api(patients=patients_visible_to(client=self.api_client))

    @extend_schema(
        operation_id="patients_list",
        summary="List patients (cursor-paginated, incremental sync)",
        parameters=[
            OpenApiParameter(
                "coordinator",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                pattern=r"^[\w.@+-]+$",
                description="Coordinator's user name.",
            )
        ],
        responses={200: PatientListItemSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PatientSearchView(ReadView):
    @extend_schema(
        operation_id="patients_search",
        summary="Find a patient by MRN",
        description="The MRN travels in the body, never in the URL, so it stays out of access logs.",
        request=PatientSearchInputSerializer,
        responses={200: PatientListItemSerializer(many=True), **errors(400)},
    )
    def post(self, request):
        data = PatientSearchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        patients = selectors.patients_for_api(patients=self.visible_patients()).filter(mrn=data.validated_data["mrn"])
        return Response(PatientListItemSerializer(patients, many=True).data)


class PatientDetailView(ReadView):
    @extend_schema(
        operation_id="patients_retrieve",
        summary="A patient",
        parameters=[PATIENT_ID],
        responses={200: PatientDetailSerializer, 304: NOT_MODIFIED, **errors(404)},
    )
    def get(self, request, patient_id):
        patient = self.get_patient(selectors.patients_for_api(patients=self.visible_patients()))
        return conditional_response(request, PatientDetailSerializer(patient).data)


class PatientStatusView(ReadView):
    @extend_schema(
        operation_id="patients_status",
        summary="Where the patient stands now",
        parameters=[PATIENT_ID],
        description="Current stage and its status, Day relative to Day 0, the next step and its due date, "
        "overdue steps, and the time of the last change. Send If-None-Match to poll cheaply.",
        responses={200: PatientStatusSerializer, 304: NOT_MODIFIED, **errors(404)},
    )
    def get(self, request, patient_id):
        status = journey_status.patient_status_by_id(patients=self.visible_patients(), public_id=patient_id)
        if status is None:
            raise Http404
        return conditional_response(request, PatientStatusSerializer.from_status(status))


class PatientJourneyView(ReadView):
    @extend_schema(
        operation_id="patients_journey",
        summary="The patient's journey: stages and steps",
        description="The open journey, else the latest one.",
        parameters=[PATIENT_ID],
        responses={200: JourneyDetailSerializer, 304: NOT_MODIFIED, **errors(404)},
    )
    def get(self, request, patient_id):
        patient = self.get_patient()
        journey = selectors.journey_with_stages(patient_id=patient.pk)
        if journey is None:
            raise Http404
        return conditional_response(request, JourneyDetailSerializer(journey, context=self.get_serializer_context()).data)


class PatientFhirView(ReadView):
    @extend_schema(
        operation_id="patients_fhir",
        summary="The patient as a FHIR R4 Bundle",
        description="A `collection` Bundle: Patient, CarePlan for the journey, a Task per step, an "
        "Observation per recorded height and weight; from what the steps recorded, an Observation per bedside "
        "vital (LOINC) and per CRS/ICANS grade and ICE score, a MedicationAdministration per chemotherapy and "
        "tocilizumab dose given, a Procedure for the CAR-T infusion.",
        parameters=[PATIENT_ID],
        responses={200: OpenApiTypes.OBJECT, **errors(404)},
    )
    def get(self, request, patient_id):
        patient = self.get_patient()
        return Response(fhir.patient_bundle(patient=patient, now=timezone.now()))


class StepListView(ApiV1Mixin, ListAPIView):
    serializer_class = StepListItemSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = StepFilter
    pagination_class = StepCursorPagination

    def get_queryset(self):
        return selectors.steps_for_api(patients=patients_visible_to(client=self.api_client))

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(
        operation_id="steps_list",
        summary="List steps (e.g. everything overdue)",
        responses={200: StepListItemSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class StepDetailView(ReadView):
    @extend_schema(
        operation_id="steps_retrieve",
        summary="A step, with its ETag for If-Match",
        parameters=[STEP_ID],
        responses={200: StepListItemSerializer, 304: NOT_MODIFIED, **errors(404)},
    )
    def get(self, request, step_id):
        step = selectors.steps_for_api(patients=self.visible_patients()).filter(public_id=step_id).first()
        if step is None:
            raise Http404
        etag = step_etag(step)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if request.headers.get("If-None-Match", "").strip() == etag:
            return Response(status=304, headers=headers)
        return Response(StepListItemSerializer(step, context=self.get_serializer_context()).data, headers=headers)


class CanCompleteSteps(permissions.BasePermission):
    def has_permission(self, request, view):
        authorize(request.user, Action.COMPLETE_STEP)
        return True


class SignatureRequired(DomainError):
    http_status = 403


class KeyHoldersOnly(permissions.BasePermission):
    """Writes through the API are for systems with a key. A person records a step on its page, where the
    password is asked again as the electronic signature; a browser session (an unlocked ward screen, a
    console) must not record one without it."""

    def has_permission(self, request, view):
        if view.api_client is None:
            raise SignatureRequired(
                "Steps are recorded through the API with an API key only. People record a step on its page, "
                "signed with their password."
            )
        return True


class PreconditionRequired(DomainError):
    http_status = 428


class StepCompleteView(ReadView):
    permission_classes = [*ReadView.permission_classes, KeyHoldersOnly, CanCompleteSteps]

    @extend_schema(
        operation_id="steps_complete",
        summary="Record a step as done",
        # Only the key: a signed-in browser session is refused here (403 signature_required).
        auth=[{"apiKey": []}],
        description="**API keys only.** A signed-in browser session is refused (403 `signature_required`): "
        "people record steps on the step's page, signed with their password. Send the step's ETag (from the step, the journey or the status) in `If-Match`: if the step "
        "changed since, the answer is 409 with the step as it is now, and nothing is recorded. Send an "
        "`Idempotency-Key` (e.g. a UUID) to retry safely: the same key and request return the first answer.",
        parameters=[
            STEP_ID,
            OpenApiParameter(
                "If-Match",
                {"type": "string", "pattern": idempotency.KEY_PATTERN},
                OpenApiParameter.HEADER,
                required=True,
                description='The step\'s ETag, e.g. "…uuid….3".',
            ),
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": idempotency.KEY_PATTERN},
                OpenApiParameter.HEADER,
                required=False,
                description="A unique string per intended completion, e.g. a UUID.",
            ),
        ],
        request=StepCompleteInputSerializer,
        responses={
            200: StepListItemSerializer,
            **errors(400, 404, 422, 428),
            409: OpenApiResponse(StepConflictSerializer, description=_ERRORS[409]),
        },
    )
    def post(self, request, step_id):
        steps = selectors.steps_for_api(patients=self.visible_patients())
        step = steps.filter(public_id=step_id).first()
        if step is None:
            raise Http404
        if_match = request.headers.get("If-Match")
        if not if_match:
            raise PreconditionRequired(
                "Send the step's ETag in If-Match, so a stale screen cannot overwrite a newer state.",
                field_errors={"If-Match": ["Required."]},
            )
        data = StepCompleteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = idempotency.idempotency_key(request)
        fingerprint = idempotency.fingerprint(request, data.validated_data) if key else None
        if key:
            replay = idempotency.stored_answer(user=request.user, key=key, fingerprint=fingerprint)
            if replay is not None:
                return replay
        parsed = parse_step_etag(if_match)
        if parsed is None or parsed[0] != step.public_id:
            raise self._conflict(step, "If-Match does not name this step's current ETag. Reload the step and retry.")
        try:
            with transaction.atomic():
                step_complete(actor=request.user, step_id=step.pk, expected_version=parsed[1], **data.validated_data)
                done = steps.get(pk=step.pk)
                response = Response(
                    StepListItemSerializer(done, context=self.get_serializer_context()).data, headers={"ETag": step_etag(done)}
                )
                if key:
                    idempotency.store_answer(user=request.user, key=key, fingerprint=fingerprint, response=response)
            return response
        except (IntegrityError, Conflict) as error:
            # A twin request with the same key may have won the race: its answer is the answer.
            if key:
                replay = idempotency.stored_answer(user=request.user, key=key, fingerprint=fingerprint)
                if replay is not None:
                    return replay
            if isinstance(error, Conflict):
                raise self._conflict(steps.get(pk=step.pk), error.message, error) from error
            raise

    def _conflict(self, step, message: str, original: Conflict | None = None) -> Conflict:
        conflict = original or Conflict(message)
        conflict.api_extra = {"current": StepListItemSerializer(step, context=self.get_serializer_context()).data}
        return conflict


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Unknown /api/v1/ paths answer 404 in the API's JSON shape, not the HTML page."""
    from django.http import JsonResponse

    from api.exception_handler import error_body

    return JsonResponse(error_body(404, "not_found", "No such endpoint. See /api/docs/."), status=404)
