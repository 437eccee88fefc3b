"""The FHIR Bundle validates against the fhir.resources models (R4B, the R4-compatible package of
fhir.resources 8: its default package is R5, and it ships no plain R4)."""

from datetime import date
from decimal import Decimal

from fhir.resources.R4B.bundle import Bundle

from journeys.services import step_complete, step_skip
from patients.services import measurement_record

# fhir.resources checks structure and types but not required bindings (codes are plain strings to it),
# so the required value sets of the fields we fill are checked here, from the R4 specification.
REQUIRED_CODES = {
    ("Task", "status"): {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    },
    ("Task", "intent"): {
        "unknown",
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    },
    ("CarePlan", "status"): {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"},
    ("CarePlan", "intent"): {"proposal", "plan", "order", "option"},
    ("Observation", "status"): {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
}


def _check_required_codes(data):
    for entry in data["entry"]:
        resource = entry["resource"]
        for (kind, field), codes in REQUIRED_CODES.items():
            if resource["resourceType"] == kind:
                assert resource[field] in codes, (kind, field, resource[field])


def test_bundle_validates_and_holds_patient_careplan_tasks_observations(viewer_api, journey, nurse, coordinator):
    measurement_record(
        actor=nurse,
        patient_id=journey.patient_id,
        measured_on=date.today(),
        height_cm=Decimal("168.0"),
        weight_kg=Decimal("61.5"),
    )
    step_complete(
        actor=nurse,
        step_id=journey.steps.get(template__code="eligibility-labs").pk,
        record={"cd3_count": 850, "pregnancy_test": "negative"},
    )
    step_skip(
        actor=coordinator,
        step_id=journey.steps.get(template__code="shipment").pk,
        reason="Point-of-care manufacturing on site: no courier",
    )

    response = viewer_api.get(f"/api/v1/patients/{journey.patient.public_id}/fhir/")
    assert response.status_code == 200
    data = response.json()
    bundle = Bundle.model_validate(data)  # raises on any structural error
    assert bundle.type == "collection"
    _check_required_codes(data)

    kinds = [entry.resource.__resource_type__ for entry in bundle.entry]
    assert kinds.count("Patient") == 1 and kinds.count("CarePlan") == 1
    assert kinds.count("Task") == journey.steps.count()
    assert kinds.count("Observation") == 2

    resources = {entry["resource"]["id"]: entry["resource"] for entry in data["entry"]}
    patient = resources[str(journey.patient.public_id)]
    assert patient["identifier"][0]["value"] == journey.patient.mrn
    assert resources[str(journey.public_id)]["status"] == "active"
    tasks = {r["code"]["coding"][0]["code"]: r for r in resources.values() if r["resourceType"] == "Task"}
    assert tasks["eligibility-labs"]["status"] == "completed"
    outputs = {o["type"]["coding"][0]["code"]: o for o in tasks["eligibility-labs"]["output"]}
    assert outputs["cd3_count"]["valueQuantity"] == {"value": 850, "unit": "/µL"}
    assert outputs["pregnancy_test"]["valueCoding"]["code"] == "negative"
    assert "output" not in tasks["leukapheresis"]
    assert tasks["shipment"]["status"] == "cancelled"
    assert tasks["shipment"]["statusReason"]["text"] == "Point-of-care manufacturing on site: no courier"
    assert tasks["leukapheresis"]["status"] == "requested"
    assert all(task["for"]["reference"] == f"urn:uuid:{journey.patient.public_id}" for task in tasks.values())
    weights = [
        r for r in resources.values() if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "29463-7"
    ]
    assert weights[0]["valueQuantity"] == {"value": 61.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    # every reference points inside the bundle
    full_urls = {entry["fullUrl"] for entry in data["entry"]}
    references = {r["subject"]["reference"] for r in resources.values() if "subject" in r}
    assert references <= full_urls


def test_bundle_of_a_patient_without_journey_has_only_the_patient(viewer_api, patient):
    data = viewer_api.get(f"/api/v1/patients/{patient.public_id}/fhir/").json()
    Bundle.model_validate(data)
    assert [entry["resource"]["resourceType"] for entry in data["entry"]] == ["Patient"]
