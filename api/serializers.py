"""Input and output shapes of the REST API, one pair per operation. Output serializers only read;
writes go through `journeys.services`."""

import re
import uuid

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from journeys import clock, records
from journeys.models import JourneyStatus, SignatureMeaning, StageNumber, StageStatus, StepStatus
from patients.models import Indication, Sex

_STEP_ETAG = re.compile(r'^(?:W/)?"([0-9a-f-]{36})\.([0-9]+)"$')


def step_etag(step) -> str:
    """A step's ETag names the step and its version, so If-Match proves which state the caller saw."""
    return f'"{step.public_id}.{step.version}"'


def parse_step_etag(value: str) -> tuple[uuid.UUID, int] | None:
    match = _STEP_ETAG.match((value or "").strip())
    if not match:
        return None
    try:
        return uuid.UUID(match.group(1)), int(match.group(2))
    except ValueError:
        return None


class StrictCharField(serializers.CharField):
    """DRF's CharField takes 0 or true as "0"/"True"; an MRN or a note sent as a number is a client bug."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(StrictCharField, serializers.RegexField):
    """The OpenAPI document carries the pattern, so clients learn the rule from it, not from a 400."""


# PostgreSQL text cannot hold NUL; an MRN holds no control characters at all.
MRN_PATTERN = r"^[^\x00-\x1f\x7f]{1,32}$"
NOTES_PATTERN = r"^[^\x00]*$"


# --- shared pieces ------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error answer has this shape."""

    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField()
    field_errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class StageRefSerializer(serializers.Serializer):
    number = serializers.ChoiceField(choices=StageNumber.choices)
    name = serializers.CharField()


class JourneySummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    status = serializers.ChoiceField(choices=JourneyStatus.choices)
    protocol = serializers.CharField(source="protocol.__str__")
    current_stage = serializers.ChoiceField(choices=StageNumber.choices)
    current_stage_name = serializers.CharField(source="get_current_stage_display")
    leukapheresis_date = serializers.DateField()
    day0 = serializers.DateField(help_text="Actual Day 0 once infused, else the planned one.")
    day0_confirmed = serializers.SerializerMethodField(help_text="True once the infusion is recorded.")
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)

    def get_day0_confirmed(self, journey) -> bool:
        return journey.day0_actual is not None


RECORD_VALUE_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]}
RECORD_SCHEMA = {
    "type": "object",
    "additionalProperties": RECORD_VALUE_SCHEMA,
    "description": "Values recorded at completion, by field name (see record_fields). Numbers as JSON numbers, "
    "choices as their value, dates as YYYY-MM-DD.",
}


class StepSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    code = serializers.CharField(source="template.code")
    name = serializers.CharField(source="template.name")
    stage = serializers.IntegerField(source="stage.number")
    status = serializers.ChoiceField(choices=StepStatus.choices)
    responsible_role = serializers.CharField(source="template.responsible_role")
    required = serializers.BooleanField(source="template.required")
    due_on = serializers.DateField()
    window_opens_on = serializers.DateField()
    window_closes_on = serializers.DateField()
    overdue_after = serializers.DateTimeField(help_text="When a pending step becomes overdue.")
    overdue = serializers.SerializerMethodField()
    blocked = serializers.SerializerMethodField(
        help_text="Pending in a stage that has not started (e.g. lymphodepletion before QC release): it cannot be "
        "done yet and is never overdue; the step in front of it is."
    )
    performed_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    completed_by = serializers.SerializerMethodField()
    record = serializers.SerializerMethodField()
    record_fields = serializers.SerializerMethodField(help_text="What completing this step records (send in `record`).")
    version = serializers.IntegerField()
    etag = serializers.SerializerMethodField(help_text="Send this in If-Match to complete the step.")

    # Both are JSON already: handed over as stored rather than copied field by field for every step of a list.
    @extend_schema_field(RECORD_SCHEMA)
    def get_record(self, step):
        return step.record or {}

    # The schema of a spec is the pydantic model that validates it (journeys.records.FieldSpec).
    @extend_schema_field(records.field_specs_openapi())
    def get_record_fields(self, step):
        return step.template.record_fields or []

    def get_overdue(self, step) -> bool:
        return step.is_overdue(self.context["now"])

    def get_blocked(self, step) -> bool:
        return step.is_blocked

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_completed_by(self, step):
        return step.completed_by.display_name if step.completed_by_id else None

    def get_etag(self, step) -> str:
        return step_etag(step)


class StepListItemSerializer(StepSerializer):
    patient = serializers.UUIDField(source="journey.patient.public_id")
    journey = serializers.UUIDField(source="journey.public_id")


# --- patients -----------------------------------------------------------------------------------


class PatientListItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    mrn = serializers.CharField()
    given_name = serializers.CharField()
    family_name = serializers.CharField()
    date_of_birth = serializers.DateField()
    sex = serializers.ChoiceField(choices=Sex.choices)
    indication = serializers.ChoiceField(choices=Indication.choices)
    indication_label = serializers.CharField()
    coordinator = serializers.SerializerMethodField()
    journey = serializers.SerializerMethodField()
    overdue_steps = serializers.IntegerField(source="overdue_count")
    last_changed_at = serializers.DateTimeField(help_text="The latest change to the patient or their journey.")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_coordinator(self, patient):
        return patient.coordinator.username if patient.coordinator_id else None

    @extend_schema_field(JourneySummarySerializer(allow_null=True))
    def get_journey(self, patient):
        journeys = patient.open_journeys
        if not journeys:
            return None
        # One nested serializer for the whole page: building one per row costs more than the query.
        if getattr(self, "_journey_serializer", None) is None:
            self._journey_serializer = JourneySummarySerializer()
        return self._journey_serializer.to_representation(journeys[0])


class PatientDetailSerializer(PatientListItemSerializer):
    created_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class PatientSearchInputSerializer(serializers.Serializer):
    # In the body, not the query string: an MRN in a URL would end up in every access log.
    mrn = StrictRegexField(MRN_PATTERN, max_length=32, min_length=1, trim_whitespace=False)


# --- status -------------------------------------------------------------------------------------


class NextStepSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    code = serializers.CharField(source="template.code")
    name = serializers.CharField(source="template.name")
    stage = serializers.IntegerField(source="stage.number")
    due_on = serializers.DateField()
    window_closes_on = serializers.DateField()
    responsible_role = serializers.CharField(source="template.responsible_role")
    etag = serializers.SerializerMethodField()

    def get_etag(self, step) -> str:
        return step_etag(step)


class OverdueStepSerializer(NextStepSerializer):
    overdue_after = serializers.DateTimeField()
    overdue_since = serializers.DateTimeField(allow_null=True, help_text="When the overdue scan flagged it.")


class CurrentStageSerializer(serializers.Serializer):
    number = serializers.ChoiceField(choices=StageNumber.choices)
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=StageStatus.choices)


class DaySerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="Days since Day 0 (negative before), in the clinic's time zone.")
    label = serializers.CharField(help_text='"Day −5", "Day 0", "Day +28".')
    day0 = serializers.DateField()
    day0_confirmed = serializers.BooleanField()


class PatientStatusSerializer(serializers.Serializer):
    patient = serializers.UUIDField()
    journey = serializers.UUIDField(allow_null=True)
    journey_status = serializers.ChoiceField(choices=JourneyStatus.choices, allow_null=True)
    current_stage = CurrentStageSerializer(allow_null=True)
    day = DaySerializer(allow_null=True)
    day0_at_risk = serializers.BooleanField(
        help_text="QC has not released the product by the protocol's lead time before lymphodepletion."
    )
    next_step = NextStepSerializer(allow_null=True)
    overdue_steps = OverdueStepSerializer(many=True)
    last_changed_at = serializers.DateTimeField()

    @classmethod
    def from_status(cls, status: dict) -> dict:
        """The body for a status from `selectors.patient_status_by_id`: exactly what `cls(...).data` gives
        (a test holds the two together), built directly. The most polled answer of the API should not pay
        for DRF copying every declared field of five serializers on each call."""
        journey = status["journey"]
        overdue = [_overdue_step(step) for step in status["overdue_steps"]]
        current_stage = day = None
        if journey is not None:
            current_stage = {
                "number": _STAGE_NUMBER.to_representation(journey.current_stage),
                "name": str(journey.get_current_stage_display()),
                "status": _value(_STAGE_STATUS, journey.current_stage_status),
            }
            day = {
                "number": int(status["day_number"]),
                "label": str(clock.day_label(status["day_number"])),
                "day0": _date(journey.day0),
                "day0_confirmed": journey.day0_actual is not None,
            }
        return {
            "patient": _UUID.to_representation(status["patient"].public_id),
            "journey": _UUID.to_representation(journey.public_id) if journey is not None else None,
            "journey_status": _JOURNEY_STATUS.to_representation(journey.status) if journey is not None else None,
            "current_stage": current_stage,
            "day": day,
            "day0_at_risk": bool(status["day0_at_risk"]),
            "next_step": _next_step(status["next_step"]) if status["next_step"] is not None else None,
            "overdue_steps": overdue,
            "last_changed_at": _datetime(status["last_changed_at"]),
        }

    @classmethod
    def from_status_declared(cls, status: dict) -> dict:
        """The same body through the declared serializers: the reference `from_status` is tested against."""
        journey = status["journey"]
        data = {
            "patient": status["patient"].public_id,
            "journey": journey.public_id if journey else None,
            "journey_status": journey.status if journey else None,
            "current_stage": None,
            "day": None,
            "day0_at_risk": status["day0_at_risk"],
            "next_step": status["next_step"],
            "overdue_steps": status["overdue_steps"],
            "last_changed_at": status["last_changed_at"],
        }
        if journey is not None:
            data["current_stage"] = {
                "number": journey.current_stage,
                "name": journey.get_current_stage_display(),
                "status": journey.current_stage_status,
            }
            data["day"] = {
                "number": status["day_number"],
                "label": clock.day_label(status["day_number"]),
                "day0": journey.day0,
                "day0_confirmed": journey.day0_actual is not None,
            }
        return cls(data).data


# One instance of each field for `from_status`: DRF's own conversions (time zone, formats), without
# building serializers per call.
_UUID = serializers.UUIDField()
_DATE = serializers.DateField()
_DATETIME = serializers.DateTimeField()
_JOURNEY_STATUS = serializers.ChoiceField(choices=JourneyStatus.choices)
_STAGE_NUMBER = serializers.ChoiceField(choices=StageNumber.choices)
_STAGE_STATUS = serializers.ChoiceField(choices=StageStatus.choices)


def _date(value):
    """`_DATE.to_representation`, written out for the ISO 8601 format (DRF's default)."""
    if value is None:
        return None
    return value.isoformat() if _ISO_DATES else _DATE.to_representation(value)


def _datetime(value):
    """`_DATETIME.to_representation`, written out for the ISO 8601 format: the time in the current zone,
    UTC written as Z. Naive values (none come from the database) go through DRF."""
    if value is None:
        return None
    if not _ISO_DATES or value.utcoffset() is None:
        return _DATETIME.to_representation(value)
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_ISO_DATES = api_settings.DATE_FORMAT.lower() == ISO_8601 == api_settings.DATETIME_FORMAT.lower() and settings.USE_TZ


def _value(field, value):
    return None if value is None else field.to_representation(value)


def _next_step(step) -> dict:
    template = step.template
    return {
        "id": _UUID.to_representation(step.public_id),
        "code": str(template.code),
        "name": str(template.name),
        "stage": int(step.stage.number),
        "due_on": _date(step.due_on),
        "window_closes_on": _date(step.window_closes_on),
        "responsible_role": str(template.responsible_role),
        "etag": step_etag(step),
    }


def _overdue_step(step) -> dict:
    return {**_next_step(step), "overdue_after": _datetime(step.overdue_after), "overdue_since": _datetime(step.overdue_since)}


# --- journey ------------------------------------------------------------------------------------


class StageWithStepsSerializer(serializers.Serializer):
    number = serializers.ChoiceField(choices=StageNumber.choices)
    name = serializers.CharField(source="get_number_display")
    status = serializers.ChoiceField(choices=StageStatus.choices)
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    steps = serializers.SerializerMethodField()

    @extend_schema_field(StepSerializer(many=True))
    def get_steps(self, stage):
        steps = [step for step in self.context["steps"] if step.stage_id == stage.pk]
        return StepSerializer(steps, many=True, context=self.context).data


class JourneyDetailSerializer(JourneySummarySerializer):
    patient = serializers.UUIDField(source="patient.public_id")
    status_reason = serializers.CharField()
    version = serializers.IntegerField()
    stages = serializers.SerializerMethodField()

    @extend_schema_field(StageWithStepsSerializer(many=True))
    def get_stages(self, journey):
        context = {**self.context, "steps": list(journey.steps.all())}
        return StageWithStepsSerializer(journey.stages.all(), many=True, context=context).data


# --- completing a step --------------------------------------------------------------------------


# OpenAPI 3.0.3 has no {"type": "null"}: null is said with `nullable` (Spectral: oas3-schema).
@extend_schema_field({**RECORD_SCHEMA, "additionalProperties": {"anyOf": RECORD_VALUE_SCHEMA["anyOf"], "nullable": True}})
class RecordInputField(serializers.DictField):
    """An object of field name to value; journeys.records judges names and values against the step."""

    child = serializers.JSONField(allow_null=True)  # null: left empty, as if not sent


class StepCompleteInputSerializer(serializers.Serializer):
    performed_at = serializers.DateTimeField(required=False, help_text="When it was done; default: now.")
    notes = StrictRegexField(NOTES_PATTERN, required=False, allow_blank=True, max_length=2000, default="")
    signature_meaning = serializers.ChoiceField(choices=SignatureMeaning.choices, default=SignatureMeaning.PERFORMED)
    record = RecordInputField(
        required=False,
        help_text="The step's own values, by field name (see the step's "
        'record_fields). A wrong value answers 400 with field_errors keyed "record.<name>".',
    )


class StepConflictSerializer(ErrorSerializer):
    current = StepSerializer(help_text="The step as it is now: reload from here.")
