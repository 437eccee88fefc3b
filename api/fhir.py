"""The patient's journey as a FHIR R4 `collection` Bundle, for hospital systems and registries that speak
FHIR: Patient, a CarePlan for the journey, a Task per step (with what was recorded as `Task.output`), an
Observation per height and weight.

Plain dicts, built from the selectors; `tests/api/test_fhir.py` validates them with `fhir.resources`.
"""

import uuid
from datetime import date, datetime, time

from django.utils import timezone

from journeys import records, selectors
from journeys.models import JourneyStatus, StepStatus

MRN_SYSTEM = "urn:carclinic:mrn"
STEP_CODE_SYSTEM = "urn:carclinic:step"
RECORD_FIELD_SYSTEM = "urn:carclinic:record-field"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_NAMESPACE = uuid.UUID("6b1f3c1e-8f0e-4c43-9c4e-2f8b0f6c2a11")

_GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}
_CAREPLAN_STATUS = {
    JourneyStatus.ACTIVE: "active",
    JourneyStatus.ON_HOLD: "on-hold",
    JourneyStatus.COMPLETED: "completed",
    JourneyStatus.WITHDRAWN: "revoked",
}
_TASK_STATUS = {
    StepStatus.PENDING: "requested",
    StepStatus.DONE: "completed",
    StepStatus.SKIPPED: "cancelled",
    StepStatus.NOT_APPLICABLE: "cancelled",
}


def _ref(resource_id) -> dict:
    return {"reference": f"urn:uuid:{resource_id}"}


def _instant(value: datetime) -> str:
    return value.astimezone(timezone.get_default_timezone()).isoformat()


def _day_start(day: date) -> str:
    return _instant(datetime.combine(day, time.min, tzinfo=timezone.get_default_timezone()))


def _entry(resource: dict) -> dict:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _patient(patient) -> dict:
    return {
        "resourceType": "Patient",
        "id": str(patient.public_id),
        "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": patient.mrn}],
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
        "gender": _GENDER.get(patient.sex, "unknown"),
        "birthDate": patient.date_of_birth.isoformat(),
    }


def _care_plan(journey, patient_id) -> dict:
    plan = {
        "resourceType": "CarePlan",
        "id": str(journey.public_id),
        "status": _CAREPLAN_STATUS[journey.status],
        "intent": "plan",
        "title": str(journey.protocol),
        "description": f"CD19 CAR-T journey, stage {journey.current_stage} of 5 "
        f"({journey.get_current_stage_display()}); Day 0 {journey.day0.isoformat()}"
        f"{'' if journey.day0_actual else ' (planned)'}.",
        "subject": _ref(patient_id),
        "period": {"start": _instant(journey.started_at)},
        "created": _instant(journey.started_at),
    }
    if journey.ended_at:
        plan["period"]["end"] = _instant(journey.ended_at)
    return plan


def _task(step, journey, patient_id, now: datetime) -> dict:
    task = {
        "resourceType": "Task",
        "id": str(step.public_id),
        "status": _TASK_STATUS[step.status],
        "intent": "plan",
        "basedOn": [_ref(journey.public_id)],
        "code": {"coding": [{"system": STEP_CODE_SYSTEM, "code": step.template.code}], "text": step.template.name},
        "description": f"Stage {step.stage.number}: {step.template.name}",
        "for": _ref(patient_id),
        "authoredOn": _instant(journey.started_at),
        "lastModified": _instant(step.updated_at),
        "restriction": {"period": {"start": _day_start(step.window_opens_on), "end": _instant(step.overdue_after)}},
        "performerType": [{"text": step.template.responsible_role}],
    }
    if step.is_overdue(now):
        task["businessStatus"] = {"text": "overdue"}
    elif step.is_blocked:
        task["businessStatus"] = {"text": "blocked"}
    if step.performed_at:
        task["executionPeriod"] = {"start": _instant(step.performed_at), "end": _instant(step.performed_at)}
    if step.status in (StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE) and step.skip_reason:
        task["statusReason"] = {"text": step.skip_reason}
    outputs = [
        _output(spec, step.record[spec["name"]]) for spec in step.template.record_fields if spec["name"] in (step.record or {})
    ]
    if outputs:
        task["output"] = outputs
    return task


def _output(spec: dict, value) -> dict:
    """One recorded value as a Task output. Units are the clinic's words ("×10⁶ CAR-T cells/kg"), not UCUM
    codes, so a quantity carries `unit` only and claims no code system."""
    output = {"type": {"coding": [{"system": RECORD_FIELD_SYSTEM, "code": spec["name"]}], "text": spec["label"]}}
    kind = spec["type"]
    if kind in records.NUMBER_TYPES:
        output["valueQuantity"] = {"value": value, **({"unit": spec["unit"]} if spec.get("unit") else {})}
    elif kind == "choice":
        output["valueCoding"] = {
            "system": f"{RECORD_FIELD_SYSTEM}:{spec['name']}",
            "code": value,
            "display": next((c[1] for c in spec["choices"] if c[0] == value), value),
        }
    elif kind == "boolean":
        output["valueBoolean"] = value
    elif kind == "date":
        output["valueDate"] = value
    else:
        output["valueString"] = value
    return output


def _observation(measurement, kind: str, patient_id) -> dict:
    code, display, value, unit = (
        ("8302-2", "Body height", measurement.height_cm, "cm")
        if kind == "height"
        else ("29463-7", "Body weight", measurement.weight_kg, "kg")
    )
    return {
        "resourceType": "Observation",
        # Stable across calls, so a receiver updates the same Observation instead of adding a copy.
        "id": str(uuid.uuid5(OBSERVATION_NAMESPACE, f"{patient_id}:{measurement.pk}:{kind}")),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": _ref(patient_id),
        "effectiveDateTime": measurement.measured_on.isoformat(),
        "valueQuantity": {"value": float(value), "unit": unit, "system": UCUM, "code": unit},
    }


def patient_bundle(*, patient, now: datetime) -> dict:
    """The Bundle for one patient: their open (else latest) journey and every measurement."""
    entries = [_entry(_patient(patient))]
    journey = selectors.journey_with_stages(patient_id=patient.pk)
    if journey is not None:
        entries.append(_entry(_care_plan(journey, patient.public_id)))
        entries.extend(_entry(_task(step, journey, patient.public_id, now)) for step in journey.steps.all())
    for measurement in selectors.measurements_for_patient(patient_id=patient.pk):
        entries.append(_entry(_observation(measurement, "height", patient.public_id)))
        entries.append(_entry(_observation(measurement, "weight", patient.public_id)))
    return {"resourceType": "Bundle", "type": "collection", "timestamp": _instant(now), "entry": entries}
