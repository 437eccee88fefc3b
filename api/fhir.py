"""The patient's journey as a FHIR R4 `collection` Bundle, for hospital systems and registries that speak
FHIR: Patient, a CarePlan for the journey, a Task per step (with what was recorded as `Task.output`), an
Observation per height and weight, and from the done steps' records: an Observation per bedside vital and
per CRS/ICANS grade and ICE score, a MedicationAdministration per chemotherapy and tocilizumab dose given,
a Procedure for the CAR-T infusion.

Plain dicts, built from the selectors; `tests/api/test_fhir.py` validates them with `fhir.resources`.
"""

import uuid
from datetime import date, datetime, time

from django.utils import timezone
from django.utils.crypto import salted_hmac

from journeys import records, selectors
from journeys.models import JourneyStatus, Milestone, StepStatus

MRN_SYSTEM = "urn:carclinic:mrn"
STEP_CODE_SYSTEM = "urn:carclinic:step"
RECORD_FIELD_SYSTEM = "urn:carclinic:record-field"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_NAMESPACE = uuid.UUID("6b1f3c1e-8f0e-4c43-9c4e-2f8b0f6c2a11")
# The grades and the ICE score have no LOINC code we are sure of (LOINC has CRS/ICANS panels, but we could not
# confirm codes for the ASTCT 2019 grades themselves), so they are coded in the product's own CodeSystem.
ASSESSMENT_SYSTEM = "urn:carclinic:assessment"
ATC = "http://www.whocc.no/atc"
STAFF_SYSTEM = "urn:carclinic:staff"
PERFORMER_FUNCTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"

# The bedside sheet's measured numbers that LOINC names (field name → code, display, UCUM unit). The highest
# temperature of the day is reported as a body temperature; the protocol's field is in °C, its oxygen in L/min.
BEDSIDE_VITALS = {
    "temperature_max": ("8310-5", "Body temperature", "Cel"),
    "oxygen_l_min": ("3151-8", "Inhaled oxygen flow rate", "L/min"),
}
# What the ASTCT calculators compute (calculator → code in ASSESSMENT_SYSTEM, display): keyed by the calculator,
# not the field's name, because what makes a field a CRS grade is that the ASTCT rule computes it.
ASSESSMENTS = {
    "crs_grade": ("crs-grade-astct-2019", "CRS grade (ASTCT 2019)"),
    "icans_grade": ("icans-grade-astct-2019", "ICANS grade (ASTCT 2019)"),
    "ice_score": ("ice-score", "ICE score (0–10)"),
}
# Doses given, by record field (ATC code, display); every one is recorded in mg by the protocol.
ADMINISTRATIONS = {
    "fludarabine_mg": ("L01BB05", "fludarabine"),
    "cyclophosphamide_mg": ("L01AA01", "cyclophosphamide"),
    "tocilizumab_mg": ("L04AC07", "tocilizumab"),
}

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


def _staff(user_id) -> dict:
    """A member of staff as a logical reference: no name (the bundle names no staff) and no database id (countable),
    but the same value for the same person, so a receiver sees that two different people signed."""
    digest = salted_hmac("carclinic.api.fhir.staff", str(user_id)).hexdigest()
    return {"type": "Practitioner", "identifier": {"system": STAFF_SYSTEM, "value": str(uuid.UUID(hex=digest[:32]))}}


def _performers(step) -> list[dict]:
    """Who signed the step: the one who performed it and, on a two-person step, the one who verified it."""
    signed = [("performer", "Performer", step.completed_by_id), ("verifier", "Verifier", step.second_signed_by_id)]
    return [
        {"function": {"coding": [{"system": PERFORMER_FUNCTION_SYSTEM, "code": code, "display": display}]}, "actor": _staff(who)}
        for code, display, who in signed
        if who is not None
    ]


def _category(code: str, display: str) -> list[dict]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY_SYSTEM, "code": code, "display": display}]}]


def _bedside_observation(step, spec, value, patient_id, journey_id, *, override=None) -> dict | None:
    """A vital (LOINC) or an ASTCT grade/ICE score (the product's codes) from a done step's record."""
    observation = {
        "resourceType": "Observation",
        "id": str(uuid.uuid5(OBSERVATION_NAMESPACE, f"{patient_id}:{step.public_id}:{spec.name}")),
        "basedOn": [_ref(journey_id)],
        "status": "final",
        "subject": _ref(patient_id),
        "effectiveDateTime": _instant(step.performed_at or step.completed_at),
    }
    if step.completed_by_id is not None:
        observation["performer"] = [_staff(step.completed_by_id)]
    if spec.name in BEDSIDE_VITALS:
        code, display, unit = BEDSIDE_VITALS[spec.name]
        observation["category"] = _category("vital-signs", "Vital Signs")
        observation["code"] = {"coding": [{"system": LOINC, "code": code, "display": display}], "text": spec.label}
        observation["valueQuantity"] = {"value": float(value), "unit": unit, "system": UCUM, "code": unit}
        return observation
    code, display = ASSESSMENTS[spec.computed.by]
    observation["category"] = _category("survey", "Survey")
    observation["code"] = {"coding": [{"system": ASSESSMENT_SYSTEM, "code": code, "display": display}], "text": display}
    observation["valueInteger"] = int(value)
    if override is None:
        observation["method"] = {"text": "Computed from the bedside components by the ASTCT 2019 consensus rules"}
    else:
        # The physician's grade is the one in force (it is what counts for later steps); the computed one stays
        # beside it, with the reason the physician gave, as the record's audit keeps them.
        observation["method"] = {"text": "Graded by the physician, differing from the computed ASTCT 2019 grade"}
        observation["component"] = [
            {
                "code": {
                    "coding": [{"system": ASSESSMENT_SYSTEM, "code": f"{code}-computed", "display": f"{display}, computed"}]
                },
                "valueInteger": int(override["computed"]),
            }
        ]
        if override["reason"]:
            observation["note"] = [{"text": override["reason"]}]
    return observation


def _administration(step, spec, value, patient_id, *, reason: str = "") -> dict:
    """A dose given as recorded (in mg), when it was performed and who signed it."""
    code, display = ADMINISTRATIONS[spec.name]
    administration = {
        "resourceType": "MedicationAdministration",
        "id": str(uuid.uuid5(OBSERVATION_NAMESPACE, f"{patient_id}:{step.public_id}:{spec.name}")),
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code, "display": display}], "text": display},
        "subject": _ref(patient_id),
        "supportingInformation": [_ref(step.public_id)],
        "effectiveDateTime": _instant(step.performed_at or step.completed_at),
        "dosage": {"dose": {"value": float(value), "unit": "mg", "system": UCUM, "code": "mg"}},
    }
    if performers := _performers(step):
        administration["performer"] = performers
    if reason:
        administration["note"] = [{"text": reason}]
    return administration


def _infusion(step, patient_id, journey_id) -> dict:
    procedure = {
        "resourceType": "Procedure",
        "id": str(uuid.uuid5(OBSERVATION_NAMESPACE, f"{patient_id}:{step.public_id}:procedure")),
        "basedOn": [_ref(journey_id)],
        "status": "completed",
        # Coded as the protocol's step, like its Task: no SNOMED CT code for a CD19 CAR-T infusion is claimed.
        "code": {"coding": [{"system": STEP_CODE_SYSTEM, "code": step.template.code}], "text": step.template.name},
        "subject": _ref(patient_id),
        "performedDateTime": _instant(step.performed_at or step.completed_at),
    }
    if performers := _performers(step):
        procedure["performer"] = performers
    return procedure


def _from_records(step, patient_id, journey_id) -> list[dict]:
    """The clinical resources a done step's record holds, in the specs' order."""
    if step.status != StepStatus.DONE:
        return []
    resources = []
    if step.template.milestone == Milestone.INFUSION:
        resources.append(_infusion(step, patient_id, journey_id))
    if not step.record:
        return resources
    specs = records.parse_specs(step.template.record_fields)
    record = records.in_force(step.template.record_fields, step.record)
    changes = {change["field"]: change for change in records.overrides(specs, step.record)}
    by_field = {change["by_field"]: change for change in changes.values()}
    for spec in specs:
        value = record.get(spec.name)
        if value in (None, ""):
            continue
        if spec.name in BEDSIDE_VITALS or (spec.computed is not None and spec.computed.by in ASSESSMENTS):
            override = changes.get(spec.name) if changes.get(spec.name, {}).get("tolerance_percent") is None else None
            resources.append(_bedside_observation(step, spec, value, patient_id, journey_id, override=override))
        elif spec.name in ADMINISTRATIONS and value:
            reason = by_field.get(spec.name, {}).get("reason", "")
            resources.append(_administration(step, spec, value, patient_id, reason=reason))
    return resources


def patient_bundle(*, patient, now: datetime) -> dict:
    """The Bundle for one patient: their open (else latest) journey, what its done steps recorded, every
    measurement. Its queries do not grow with the steps or records (the journey's read prefetches them)."""
    entries = [_entry(_patient(patient))]
    journey = selectors.journey_with_stages(patient_id=patient.pk)
    if journey is not None:
        entries.append(_entry(_care_plan(journey, patient.public_id)))
        steps = list(journey.steps.all())
        entries.extend(_entry(_task(step, journey, patient.public_id, now)) for step in steps)
        for step in steps:
            entries.extend(_entry(resource) for resource in _from_records(step, patient.public_id, journey.public_id))
    for measurement in selectors.measurements_for_patient(patient_id=patient.pk):
        entries.append(_entry(_observation(measurement, "height", patient.public_id)))
        entries.append(_entry(_observation(measurement, "weight", patient.public_id)))
    return {"resourceType": "Bundle", "type": "collection", "timestamp": _instant(now), "entry": entries}
