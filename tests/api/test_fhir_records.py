"""Issue 13, "Everywhere": the patient's FHIR Bundle carries what the bedside recorded, from the done steps of the
shipped protocol walked through the real services: Observations for the vitals (LOINC) and the ASTCT grades (the
product's codes), a MedicationAdministration per chemotherapy and tocilizumab dose given, a Procedure for the
infusion. Validated with fhir.resources (R4B), required bindings checked from the R4 specification."""

from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from journeys import services
from journeys.models import StepStatus
from tests.api.test_fhir import REQUIRED_CODES, _check_required_codes
from tests.factories import CALM_MONITORING_DAY, PatientFactory, minimal_record, second_signer
from tests.journeys.test_monitoring_alerts import HYPOTENSION_LOW_FLOW

FHIR_REQUIRED = {
    **REQUIRED_CODES,
    ("MedicationAdministration", "status"): {
        "in-progress",
        "not-done",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "unknown",
    },
    ("Procedure", "status"): {
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    },
}
MONITORING_DAYS = ("monitoring-day-1", "monitoring-day-2", "monitoring-day-3")
# 70 kg (minimal_record weighs the patient 170 cm / 70 kg): 8 mg/kg → 560 mg, under the 800 mg cap.
TOCILIZUMAB_MG = 560
# The patient (in the key's scope), the journey, its stages, its steps, the measurements, and one more of the
# request's own: api.fhir reads nothing per step or per record.
BUNDLE_QUERIES = 6
OVERRIDE_REASON = "Hypotension was a vasovagal episode during the cannula change, not CRS"


def walk(journey, *, physician, nurse, monitoring_days: int) -> dict:
    """Record every step up to and including `monitoring_days` monitoring days, each on its due day: Day +1 is CRS 2
    with tocilizumab, Day +2 a physician's CRS 1 over the computed 2 with a reason, later days calm."""
    done = {}
    while (
        step := journey.steps.select_related("template", "stage")
        .filter(status=StepStatus.PENDING, stage__status="in_progress")
        .order_by("due_on", "template__position", "id")
        .first()
    ):
        code = step.template.code
        if code.startswith("monitoring-day-") and code not in MONITORING_DAYS[:monitoring_days]:
            break
        performed = min(timezone.make_aware(datetime.combine(step.due_on, time(10))), timezone.now())
        record = minimal_record(step, on=performed.date())
        actor = nurse if step.template.responsible_role == "nurse" else physician
        if code == "monitoring-day-1":
            record = {**HYPOTENSION_LOW_FLOW, "tocilizumab_mg": TOCILIZUMAB_MG}
        elif code == "monitoring-day-2":
            record = {**HYPOTENSION_LOW_FLOW, "crs_grade_physician": "1", "crs_grade_reason": OVERRIDE_REASON}
            actor = physician  # only a physician overrules a computed grade
        elif code.startswith("monitoring-day-"):
            record = dict(CALM_MONITORING_DAY)
        done[code] = services.step_complete(
            actor=actor, step_id=step.id, record=record, performed_at=performed, **second_signer(step)
        )
    return done


@pytest.fixture
def treated(make_user, coordinator, protocol):
    """A patient whose Day 0 was three days ago, on the shipped protocol; born 40 years ago, so her clearance keeps
    the full fludarabine dose."""
    nurse = make_user("nurse", first_name="Nadia", last_name="Quellwasser")
    physician = make_user("physician", first_name="Paul", last_name="Eberhardinger")
    today = timezone.localdate()

    def make(monitoring_days: int):
        patient = PatientFactory(physician=physician, date_of_birth=date(today.year - 40, 1, 1))
        journey = services.journey_start(
            actor=coordinator,
            patient_id=patient.id,
            protocol_id=protocol.id,
            leukapheresis_date=today - timedelta(days=40),
            day0_planned=today - timedelta(days=3),
        )
        steps = walk(journey, physician=physician, nurse=nurse, monitoring_days=monitoring_days)
        return {"patient": patient, "journey": journey, "steps": steps, "nurse": nurse, "physician": physician}

    return make


def _resources(data, kind):
    return [entry["resource"] for entry in data["entry"] if entry["resource"]["resourceType"] == kind]


def _coded(resources, code):
    return [r for r in resources if r["code"]["coding"][0]["code"] == code]


def test_the_bundle_holds_the_bedside_vitals_grades_doses_and_the_infusion(viewer_api, treated):
    case = treated(monitoring_days=3)
    steps = case["steps"]
    response = viewer_api.get(f"/api/v1/patients/{case['patient'].public_id}/fhir/")
    assert response.status_code == 200
    data = response.json()
    Bundle.model_validate(data)
    for (kind, field), codes in FHIR_REQUIRED.items():
        for resource in _resources(data, kind):
            assert resource[field] in codes, (kind, field, resource[field])
    _check_required_codes(data)

    observations = _resources(data, "Observation")
    temperatures = _coded(observations, "8310-5")
    assert [t["valueQuantity"]["value"] for t in temperatures] == [38.4, 38.4, 36.8]
    assert temperatures[0]["valueQuantity"] == {
        "value": 38.4,
        "unit": "Cel",
        "system": "http://unitsofmeasure.org",
        "code": "Cel",
    }
    assert temperatures[0]["code"]["coding"][0]["system"] == "http://loinc.org"
    assert temperatures[0]["category"][0]["coding"][0]["code"] == "vital-signs"
    day1 = steps["monitoring-day-1"]
    assert temperatures[0]["effectiveDateTime"] == timezone.localtime(day1.performed_at).isoformat()
    oxygen = _coded(observations, "3151-8")
    assert [o["valueQuantity"]["value"] for o in oxygen] == [3.0, 3.0]  # the calm day had none

    crs = _coded(observations, "crs-grade-astct-2019")
    assert crs[0]["code"]["coding"][0]["system"] == "urn:carclinic:assessment"
    assert [c["valueInteger"] for c in crs] == [2, 1, 0]
    assert "component" not in crs[0] and "ASTCT 2019" in crs[0]["method"]["text"]
    # Day +2: the physician's CRS 1 is the grade in force; the computed 2 and the reason travel with it.
    assert crs[1]["method"]["text"].startswith("Graded by the physician")
    assert crs[1]["component"][0]["valueInteger"] == 2
    assert crs[1]["component"][0]["code"]["coding"][0]["code"] == "crs-grade-astct-2019-computed"
    assert crs[1]["note"] == [{"text": OVERRIDE_REASON}]
    assert [i["valueInteger"] for i in _coded(observations, "icans-grade-astct-2019")] == [0, 0, 0]
    assert [i["valueInteger"] for i in _coded(observations, "ice-score")] == [10, 10, 10]

    given = {
        (a["medicationCodeableConcept"]["text"], a["dosage"]["dose"]["value"])
        for a in _resources(data, "MedicationAdministration")
    }
    ld3 = steps["ld-day-3"].record
    assert given == {
        ("fludarabine", steps["ld-day-5"].record["fludarabine_mg"]),
        ("fludarabine", steps["ld-day-4"].record["fludarabine_mg"]),
        ("fludarabine", ld3["fludarabine_mg"]),
        ("cyclophosphamide", ld3["cyclophosphamide_mg"]),
        ("tocilizumab", TOCILIZUMAB_MG),
    }
    assert len(_resources(data, "MedicationAdministration")) == 5  # three fludarabine days, one cyclophosphamide, one tocilizumab
    cyclophosphamide = next(
        a for a in _resources(data, "MedicationAdministration") if a["medicationCodeableConcept"]["text"] == "cyclophosphamide"
    )
    assert cyclophosphamide["medicationCodeableConcept"]["coding"][0] == {
        "system": "http://www.whocc.no/atc",
        "code": "L01AA01",
        "display": "cyclophosphamide",
    }
    assert cyclophosphamide["dosage"]["dose"]["unit"] == "mg" and cyclophosphamide["dosage"]["dose"]["code"] == "mg"
    assert cyclophosphamide["effectiveDateTime"] == timezone.localtime(steps["ld-day-3"].performed_at).isoformat()
    # Two different people signed the chemotherapy: performer and verifier, named by neither name nor database id.
    functions = [p["function"]["coding"][0]["code"] for p in cyclophosphamide["performer"]]
    actors = [p["actor"]["identifier"]["value"] for p in cyclophosphamide["performer"]]
    assert functions == ["performer", "verifier"] and len(set(actors)) == 2
    assert cyclophosphamide["supportingInformation"] == [{"reference": f"urn:uuid:{steps['ld-day-3'].public_id}"}]
    tocilizumab = next(
        a for a in _resources(data, "MedicationAdministration") if a["medicationCodeableConcept"]["text"] == "tocilizumab"
    )
    assert [p["function"]["coding"][0]["code"] for p in tocilizumab["performer"]] == ["performer"]  # one signature
    # The nurse who recorded Day +1 is the same logical Practitioner on the Observation and the administration.
    assert temperatures[0]["performer"] == [tocilizumab["performer"][0]["actor"]]

    (infusion,) = _resources(data, "Procedure")
    assert infusion["status"] == "completed"
    assert infusion["code"]["coding"][0] == {"system": "urn:carclinic:step", "code": "infusion"}
    assert infusion["performedDateTime"] == timezone.localtime(steps["infusion"].performed_at).isoformat()
    assert len(infusion["performer"]) == 2

    text = response.content.decode()
    for person in (case["nurse"], case["physician"]):
        assert person.last_name not in text and person.username not in text
    full_urls = {entry["fullUrl"] for entry in data["entry"]}
    for resource in (*observations, *_resources(data, "MedicationAdministration"), infusion):
        assert resource["subject"]["reference"] in full_urls
        assert all(r["reference"] in full_urls for r in resource.get("basedOn", []) + resource.get("supportingInformation", []))
    # Stable ids: a receiver updates what it has instead of adding copies.
    again = viewer_api.get(f"/api/v1/patients/{case['patient'].public_id}/fhir/").json()
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in data["entry"]]


def test_the_bundle_reads_the_same_number_of_queries_for_one_and_three_monitoring_days(
    viewer_api, treated, django_assert_max_num_queries
):
    counts = {}
    for days in (1, 3):
        case = treated(monitoring_days=days)
        url = f"/api/v1/patients/{case['patient'].public_id}/fhir/"
        viewer_api.get(url)  # the key's cache warmed, as on every call but the first
        with django_assert_max_num_queries(BUNDLE_QUERIES) as captured:
            data = viewer_api.get(url).json()
        counts[days] = len(captured)
        assert len(_coded(_resources(data, "Observation"), "crs-grade-astct-2019")) == days
        assert len(_resources(data, "MedicationAdministration")) == 4 + 1  # four chemotherapy doses, one tocilizumab
    assert counts[1] == counts[3], counts


def test_a_key_scoped_to_other_patients_gets_no_bedside_resources(make_api_client, treated):
    case = treated(monitoring_days=1)
    _, http = make_api_client("viewer", sees_all_patients=False)
    assert http.get(f"/api/v1/patients/{case['patient'].public_id}/fhir/").status_code == 404
