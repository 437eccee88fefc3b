"""The correction page: the values as they stand, changed with a reason and signed; the patient page
offers it only to those who may, and its history says what changed."""

import pytest
from django.urls import reverse

from journeys.models import EventKind, JourneyEvent, Step
from journeys.services import step_complete
from tests.factories import lymphodepletion_earlier, minimal_record, second_signer

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


@pytest.fixture
def monitored(journey, physician, nurse):
    """The journey walked to its first monitoring day, which the nurse records as CRS grade 1."""
    from journeys.models import StepStatus

    while (
        step := journey.steps.select_related("template")
        .filter(status=StepStatus.PENDING, stage__status="in_progress")
        .order_by("id")
        .first()
    ):
        if step.template.code == "monitoring-day-1":
            return step_complete(
                actor=nurse, step_id=step.id, record={**minimal_record(step), "temperature_max": "38.4"}
            )  # computed: CRS 1
        step_complete(
            actor=physician, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )
    raise AssertionError("the journey has no monitoring day 1")


@pytest.mark.django_db
def test_the_nurse_corrects_her_own_record_and_the_history_says_what_changed(client, nurse, monitored):
    client.force_login(nurse)
    patient_page = reverse("patient_detail", args=[monitored.journey.patient.public_id])
    assert reverse("step_correct", args=[monitored.public_id]) in client.get(patient_page).content.decode()
    form = client.get(reverse("step_correct", args=[monitored.public_id])).content.decode()
    assert 'value="38.4"' in form and '<option value="alert" selected>' in form

    values = {
        **{f"record.{name}": value for name, value in minimal_record(monitored).items()},
        "record.fever_masked": "no",
        "record.hypotension": "no",
        "record.vasopressin": "no",
        "record.temperature_max": "37.4",
        "notes": "",
        "reason": "Read the wrong chart",
        "version": monitored.version,
    }
    wrong = client.post(reverse("step_correct", args=[monitored.public_id]), {**values, "password": "not-mine"})
    assert wrong.status_code == 400 and "Nothing was corrected" in wrong.content.decode()
    assert 'value="37.4"' in wrong.content.decode()  # what was typed is kept
    done = client.post(reverse("step_correct", args=[monitored.public_id]), {**values, "password": PASSWORD})
    assert done.status_code == 302 and done.url == patient_page
    assert Step.objects.get(pk=monitored.pk).record["crs_grade"] == "0"  # computed again: no fever, no CRS
    history = client.get(patient_page).content.decode()
    assert "Record corrected" in history and "Read the wrong chart" in history
    assert "Tmax 38.4 °C → 37.4 °C" in history


@pytest.mark.django_db
def test_a_colleague_and_a_viewer_are_not_offered_the_correction_nor_let_in(client, make_user, viewer, monitored):
    colleague = make_user("nurse")
    url = reverse("step_correct", args=[monitored.public_id])
    for person in (colleague, viewer):
        client.force_login(person)
        page = client.get(reverse("patient_detail", args=[monitored.journey.patient.public_id])).content.decode()
        assert url not in page
        assert client.get(url).status_code == 403
    assert not JourneyEvent.objects.filter(kind=EventKind.STEP_CORRECTED).exists()
