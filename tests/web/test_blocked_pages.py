"""Pages show a step that cannot be done yet as waiting for its gate, not as late, and a journey whose
product is late as "Day 0 at risk" (dates as in tests/journeys/test_overdue_rule.py)."""

from datetime import date

import pytest
from django.urls import reverse

from journeys.models import Step, StepStatus
from journeys.services import day0_reschedule, journey_start, step_complete
from tests.factories import PatientFactory, lymphodepletion_earlier, minimal_record, second_signer


@pytest.fixture
def waiting_for_release(at_clinic, coordinator, physician, protocol):
    at_clinic(2026, 3, 3, 9, 0)
    journey = journey_start(
        actor=coordinator,
        patient_id=PatientFactory(coordinator=coordinator).id,
        protocol_id=protocol.id,
        leukapheresis_date=date(2026, 3, 3),
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


def test_patient_page_shows_the_ld_days_waiting_for_the_release_and_day0_at_risk(
    client, coordinator, at_clinic, waiting_for_release
):
    at_clinic(2026, 3, 20, 13, 0)
    client.force_login(coordinator)
    response = client.get(reverse("patient_detail", args=[waiting_for_release.patient.public_id]))
    assert response.status_code == 200
    states = {
        step.template.code: (step.state_class, step.state_word)
        for steps in response.context["steps_by_stage"].values()
        for step in steps
    }
    assert states["qc-release"] == ("overdue", "Overdue")
    assert states["ld-day-5"] == ("blocked", "Waiting for QC release")
    assert states["infusion"][0] == "upcoming"  # its window has not opened: nothing to wait for yet
    assert response.context["overdue_count"] == 1 and response.context["day0_at_risk"] is True
    page = response.content.decode()
    assert "Day 0 at risk" in page and "Waiting for QC release" in page
    assert "needed by Tue 17 Mar 2026" in page


def test_dashboard_lists_day0_at_risk_and_the_late_release_only(client, coordinator, at_clinic, waiting_for_release):
    at_clinic(2026, 3, 20, 13, 0)
    client.force_login(coordinator)
    response = client.get(reverse("dashboard"))
    assert [journey.pk for journey in response.context["day0_at_risk"]["rows"]] == [waiting_for_release.pk]
    assert [step.template.code for step in response.context["overdue"]["rows"]] == ["qc-release"]
    # The ld day due today is listed as due, marked as waiting for its gate.
    [today] = response.context["due_today"]["rows"]
    assert today.template.code == "ld-day-4" and today.waits_for == "QC release"
    page = response.content.decode()
    assert "Day 0 at risk" in page and waiting_for_release.patient.mrn in page


def test_the_audit_says_which_steps_were_late_when_day0_moved(client, coordinator, at_clinic, waiting_for_release):
    at_clinic(2026, 3, 20, 13, 0)
    day0_reschedule(actor=coordinator, journey_id=waiting_for_release.id, new_day0=date(2026, 3, 31), reason="Late release")
    client.force_login(coordinator)
    page = client.get(reverse("patient_detail", args=[waiting_for_release.patient.public_id])).content.decode()
    assert "1 of them late before the move: qc-release" in page
    assert "Day 0 at risk" not in page
