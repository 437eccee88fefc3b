"""The API says "blocked" where a step cannot be done yet and "Day 0 at risk" where the product is late,
through the status (both of its implementations), the step list, the journey and the FHIR Bundle.

Leukapheresis on 3 March 2026, Day 0 on 24 March; the QC release is late from 20 March 12:00 Berlin, the
lymphodepletion days fall on 18–21 March, the product is needed by 17 March (see tests/journeys/test_overdue_rule.py).
"""

from datetime import date

import pytest
from django.utils import timezone

from api.serializers import PatientStatusSerializer
from journeys import status as journey_status
from journeys.models import Step, StepStatus
from journeys.services import journey_start, step_complete
from patients.models import Patient
from tests.factories import PatientFactory, lymphodepletion_earlier, minimal_record, second_signer


@pytest.fixture
def waiting_for_release(at_clinic, coordinator, physician, protocol):
    at_clinic(2026, 3, 3, 9, 0)
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=date(2026, 3, 3)
    )
    while step := (
        Step.objects.filter(journey=journey, stage__number__lte=2, status=StepStatus.PENDING)
        .exclude(template__code="qc-release")
        .order_by("stage__number", "id")
        .first()
    ):
        step_complete(
            actor=physician, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )
    return journey


def status_both_ways(patient, now):
    today = timezone.localdate(now)
    return [
        PatientStatusSerializer.from_status(
            read(patients=Patient.objects.all(), public_id=patient.public_id, now=now, today=today)
        )
        for read in (journey_status._patient_status_sql, journey_status._patient_status_orm)
    ]


def test_status_says_day0_at_risk_from_the_day_after_the_product_was_needed(at_clinic, waiting_for_release):
    patient = waiting_for_release.patient
    sql, orm = status_both_ways(patient, at_clinic(2026, 3, 17, 23, 59))
    assert sql == orm and sql["day0_at_risk"] is False
    sql, orm = status_both_ways(patient, at_clinic(2026, 3, 18, 0, 0))
    assert sql == orm and sql["day0_at_risk"] is True


def test_status_lists_the_late_release_not_the_blocked_lymphodepletion_days(at_clinic, waiting_for_release, viewer_api):
    at_clinic(2026, 3, 20, 13, 0)
    sql, orm = status_both_ways(waiting_for_release.patient, timezone.now())
    assert sql == orm
    assert [step["code"] for step in sql["overdue_steps"]] == ["qc-release"]
    body = viewer_api.get(f"/api/v1/patients/{waiting_for_release.patient.public_id}/status/").json()
    assert body["day0_at_risk"] is True and [step["code"] for step in body["overdue_steps"]] == ["qc-release"]
    # The declared serializers give the same body with the new field.
    status = journey_status.patient_status_by_id(patients=Patient.objects.all(), public_id=waiting_for_release.patient.public_id)
    assert PatientStatusSerializer.from_status(status) == PatientStatusSerializer.from_status_declared(status)


def test_step_list_and_journey_mark_blocked_steps_and_never_call_them_overdue(at_clinic, waiting_for_release, viewer_api):
    at_clinic(2026, 3, 20, 13, 0)
    rows = {
        row["code"]: row
        for row in viewer_api.get(f"/api/v1/steps/?page_size=500&patient={waiting_for_release.patient.public_id}").json()[
            "results"
        ]
    }
    assert (rows["qc-release"]["overdue"], rows["qc-release"]["blocked"]) == (True, False)
    assert (rows["ld-day-5"]["overdue"], rows["ld-day-5"]["blocked"]) == (False, True)
    assert rows["leukapheresis"]["blocked"] is False  # done
    overdue = viewer_api.get(f"/api/v1/steps/?page_size=500&overdue=true&patient={waiting_for_release.patient.public_id}")
    assert [row["code"] for row in overdue.json()["results"]] == ["qc-release"]

    body = viewer_api.get(f"/api/v1/patients/{waiting_for_release.patient.public_id}/journey/").json()
    steps = {step["code"]: step for stage in body["stages"] for step in stage["steps"]}
    assert steps["ld-day-5"]["blocked"] is True and steps["ld-day-5"]["overdue"] is False
    assert steps["qc-release"]["overdue"] is True


def test_fhir_marks_a_blocked_task_blocked_and_the_late_release_overdue(at_clinic, waiting_for_release, viewer_api):
    at_clinic(2026, 3, 20, 13, 0)
    bundle = viewer_api.get(f"/api/v1/patients/{waiting_for_release.patient.public_id}/fhir/").json()
    tasks = {
        entry["resource"]["code"]["coding"][0]["code"]: entry["resource"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Task"
    }
    assert tasks["qc-release"]["businessStatus"] == {"text": "overdue"}
    assert tasks["ld-day-5"]["businessStatus"] == {"text": "blocked"}
    assert "businessStatus" not in tasks["leukapheresis"]
