"""Real headless Chromium: a nurse records a monitoring day on a phone (a wrong value refused by its field,
then signed), and corrects it afterwards with a reason the patient page's history shows."""

import os

import pytest
from django.utils import timezone

from journeys import services
from journeys.models import ProtocolTemplate, Step, StepStatus
from tests.browser.test_journeys_browser import PHONE, browser, shot, sign_in, ward_member  # noqa: F401 - browser is a fixture
from tests.factories import PatientFactory, lymphodepletion_earlier, minimal_record, second_signer

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def ward():
    physician = ward_member("physician")
    nurse = ward_member("nurse")
    patient = PatientFactory(mrn="MRN0077001", given_name="Ida", family_name="Sørensen", nurse=nurse)
    protocol = ProtocolTemplate.objects.get(version=1, name__startswith="CD19")
    journey = services.journey_start(
        actor=physician, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
    )
    # Everything before the first monitoring day is done, so that day is the nurse's next step.
    while (
        step := journey.steps.select_related("template")
        .filter(status=StepStatus.PENDING, stage__status="in_progress")
        .order_by("id")
        .first()
    ):
        if step.template.code == "monitoring-day-1":
            break
        services.step_complete(
            actor=physician, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )
    return {"patient": patient, "step": step}


def test_nurse_records_a_monitoring_day_on_a_phone_and_corrects_it(browser, live_server, ward):
    base, step, patient = live_server.url, ward["step"], ward["patient"]
    context = browser.new_context(viewport=PHONE, has_touch=True, locale="en-GB", timezone_id="Europe/Berlin")
    page = context.new_page()
    sign_in(page, base, "nina")
    page.goto(f"{base}/steps/{step.public_id}/complete/")
    page.get_by_label("Highest temperature").fill("48.2")
    # The grades are computed from the bedside components (ASTCT 2019), never picked.
    for question in ("Antipyretic or tocilizumab given (fever may be masked)", "Hypotension", "Vasopressin"):
        page.get_by_role("group", name=question).get_by_label("No").check()
    for finding in (
        "Vasopressors (not counting vasopressin)",
        "Oxygen",
        "Level of consciousness",
        "Seizure",
        "Motor findings",
        "Raised intracranial pressure / cerebral oedema",
    ):
        page.get_by_label(finding, exact=True).select_option(index=1)
    page.get_by_label("Your password (electronic signature)").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign and record").click()
    temperature = page.locator(".field", has=page.get_by_label("Highest temperature"))
    assert "Must be from 34 to 43" in temperature.inner_text()
    assert page.get_by_label("Highest temperature").input_value() == "48.2"  # kept, to be corrected
    assert page.get_by_role("group", name="Hypotension").get_by_label("No").is_checked()  # kept, too
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING
    shot(page, "record-refused-phone")

    page.get_by_label("Highest temperature").fill("38.4")
    page.get_by_label("Your password (electronic signature)").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign and record").click()
    page.wait_for_url(lambda url: "/complete/" not in url)
    assert Step.objects.get(pk=step.pk).record["temperature_max"] == 38.4

    page.goto(f"{base}/patients/{patient.public_id}/")
    page.get_by_role("link", name=f"Correct the record of {step.template.name}").click()
    assert page.get_by_label("Highest temperature").input_value() == "38.4"
    page.get_by_label("Highest temperature").fill("37.4")
    page.get_by_label("Reason for the correction (goes into the audit trail)").fill("Read from the wrong chart")
    page.get_by_label("Your password (electronic signature)").fill("correct-horse-battery")
    page.get_by_role("button", name="Sign and correct").click()
    page.wait_for_url(f"{base}/patients/{patient.public_id}/")
    history = page.locator(".audit").inner_text()
    assert "Record corrected" in history and "Read from the wrong chart" in history and "38.4 °C → 37.4 °C" in history
    shot(page, "record-corrected-phone")
    context.close()
