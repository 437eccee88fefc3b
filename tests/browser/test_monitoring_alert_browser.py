"""Real headless Chromium, issue 13's browser case: a nurse on a 375 px phone records Day +1 with hypotension (no
vasopressor) and low-flow oxygen and sees "CRS grade 2 (computed)"; the treating physician, at a desk, finds the
alert at the top of the dashboard, acknowledges it with their password, and the banner is gone. On the way the
physician opens a lymphodepletion day's sheet (computed BSA and doses) for its screenshot.

Screenshots (artifacts/screenshots/): monitoring-form-phone, monitoring-recorded-phone, alert-dashboard,
alert-acknowledged, ld-sheet."""

import os
from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from alerts.models import ClinicalAlert
from journeys import services
from journeys.models import ProtocolTemplate, StepStatus
from tests.browser.test_journeys_browser import DESKTOP, PASSWORD, PHONE, browser, sign_in, ward_member  # noqa: F401 - browser is a fixture
from tests.browser.test_ward_browser import shot
from tests.factories import PatientFactory, minimal_record, second_signer

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _walk_until(journey, code, *, nurse, physician):
    """Record every step before `code` on the day it was due (the collection before Day 0, the LD days before the
    infusion), as the ward would have; returns the step `code`, pending."""
    while (
        step := journey.steps.select_related("template", "stage")
        .filter(status=StepStatus.PENDING, stage__status="in_progress")
        .order_by("due_on", "template__position", "id")
        .first()
    ):
        if step.template.code == code:
            return step
        actor = nurse if step.template.responsible_role == "nurse" else physician
        performed = min(timezone.make_aware(datetime.combine(step.due_on, time(10))), timezone.now())
        services.step_complete(
            actor=actor,
            step_id=step.id,
            record=minimal_record(step, on=performed.date()),
            performed_at=performed,
            **second_signer(step),
        )
    raise AssertionError(f"{code} never came up")


@pytest.fixture
def ward():
    coordinator, nurse, physician = ward_member("coordinator"), ward_member("nurse"), ward_member("physician")
    protocol = ProtocolTemplate.objects.get(version=1, name__startswith="CD19")
    today = timezone.localdate()
    # Born 40 years ago with creatinine 1.0 mg/dL: the full fludarabine dose (no renal reduction on these sheets).
    born = date(today.year - 40, 1, 1)
    on_ward = PatientFactory(
        mrn="MRN0131001", given_name="Ida", family_name="Sørensen", date_of_birth=born,
        nurse=nurse, physician=physician, coordinator=coordinator,
    )  # fmt: skip
    journey = services.journey_start(
        actor=coordinator,
        patient_id=on_ward.id,
        protocol_id=protocol.id,
        leukapheresis_date=today - timedelta(days=40),
        day0_planned=today - timedelta(days=1),
    )
    day1 = _walk_until(journey, "monitoring-day-1", nurse=nurse, physician=physician)
    # A second patient whose first lymphodepletion day is today: the LD sheet.
    before_ld = PatientFactory(
        mrn="MRN0131002", given_name="Lena", family_name="Berg", date_of_birth=born, sex="female",
        nurse=nurse, physician=physician, coordinator=coordinator,
    )  # fmt: skip
    ld_journey = services.journey_start(
        actor=coordinator,
        patient_id=before_ld.id,
        protocol_id=protocol.id,
        leukapheresis_date=today - timedelta(days=16),
        day0_planned=today + timedelta(days=5),
    )
    ld_day = _walk_until(ld_journey, "ld-day-5", nurse=nurse, physician=physician)
    return {"patient": on_ward, "day1": day1, "ld_day": ld_day}


def test_nurse_records_crs_2_on_a_phone_and_the_physician_acknowledges_its_alert(browser, live_server, ward):
    base, patient, day1 = live_server.url, ward["patient"], ward["day1"]

    # --- The nurse, at the bedside, on a phone -----------------------------------------------------------
    phone = browser.new_context(viewport=PHONE, has_touch=True, locale="en-GB", timezone_id="Europe/Berlin")
    page = phone.new_page()
    sign_in(page, base, "nina")
    page.goto(f"{base}/steps/{day1.public_id}/complete/?next=/patients/{patient.public_id}/")
    crs_field = page.get_by_label("CRS grade (ASTCT) (computed)")
    assert crs_field.is_disabled() or crs_field.get_attribute("readonly") is not None  # computed, never typed
    page.get_by_label("Highest temperature").fill("38.4")
    page.get_by_role("group", name="Antipyretic or tocilizumab given (fever may be masked)").get_by_label("No").check()
    page.get_by_role("group", name="Hypotension").get_by_label("Yes").check()
    page.get_by_label("Vasopressors (not counting vasopressin)", exact=True).select_option("none")
    page.get_by_role("group", name="Vasopressin").get_by_label("No").check()
    page.get_by_label("Oxygen", exact=True).select_option("low_flow")
    page.get_by_label("Oxygen flow").fill("3")
    for part, score in (
        ("ICE: orientation (year, month, city, hospital)", "4"),
        ("ICE: naming three objects", "3"),
        ("ICE: follows simple commands", "1"),
        ("ICE: writes a standard sentence", "1"),
        ("ICE: counts back from 100 by 10", "1"),
    ):
        page.get_by_label(part).fill(score)
    for finding, value in (
        ("Level of consciousness", "alert"),
        ("Seizure", "none"),
        ("Motor findings", "none"),
        ("Raised intracranial pressure / cerebral oedema", "none"),
    ):
        page.get_by_label(finding, exact=True).select_option(value)
    page.get_by_label("Your password (electronic signature)").fill(PASSWORD)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "monitoring-form-phone", full_page=True)
    page.get_by_role("button", name="Sign and record").click()
    page.wait_for_url(f"{base}/patients/{patient.public_id}/")
    day_row = page.locator(f"#step-{day1.public_id}")
    assert "CRS grade 2 (computed)" in day_row.inner_text()
    assert "ICANS grade 0 (computed)" in day_row.inner_text()
    day_row.scroll_into_view_if_needed()
    shot(page, "monitoring-recorded-phone")
    phone.close()
    alert = ClinicalAlert.objects.get()
    assert (alert.kind, alert.key, alert.acknowledged_at) == ("crs", f"crs:{day1.public_id}:2", None)

    # --- The treating physician, at a desk -----------------------------------------------------------------
    desk = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/Berlin")
    page = desk.new_page()
    sign_in(page, base, "phil")
    page.goto(f"{base}/dashboard/")
    banner = page.locator(".alert-banner")
    assert "Clinical alerts waiting for acknowledgement" in banner.inner_text()
    assert "CRS grade (ASTCT): 2" in banner.inner_text() and "Sørensen, Ida" in banner.inner_text()
    shot(page, "alert-dashboard")

    # The LD sheet of the other patient, while the physician is here: BSA and doses computed, with their formulas.
    page.goto(f"{base}/steps/{ward['ld_day'].public_id}/complete/")
    bsa = page.get_by_label("Body surface area (computed)", exact=False)
    assert bsa.first.input_value() == "1.82 m²", bsa.first.input_value()  # 170 cm, 70 kg (Mosteller)
    sheet = page.locator("main").inner_text()
    assert "45.5 mg" in sheet  # 25 mg/m² × 1.82 m², the full dose at a normal clearance
    shot(page, "ld-sheet", full_page=True)

    page.goto(f"{base}/dashboard/")
    page.locator(".alert-banner a", has_text="CRS grade (ASTCT): 2").click()
    page.wait_for_url(f"{base}/alerts/{alert.public_id}/")
    page.get_by_label("What you are doing about it").fill("Seen: tocilizumab 8 mg/kg prescribed, fluids running.")
    page.get_by_label("Your password (electronic signature)").fill("not my password")
    page.get_by_role("button", name="Sign and acknowledge").click()
    assert "That is not your password" in page.locator("main").inner_text()
    assert ClinicalAlert.objects.get().acknowledged_at is None
    page.get_by_label("Your password (electronic signature)").fill(PASSWORD)
    page.get_by_role("button", name="Sign and acknowledge").click()
    page.wait_for_url(f"{base}/alerts/{alert.public_id}/")
    assert "Alert acknowledged; its escalation has stopped." in page.locator(".messages").inner_text()
    assert "Acknowledged by" in page.locator("main").inner_text()
    shot(page, "alert-acknowledged")
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "phil" and alert.acknowledged_at is not None

    page.goto(f"{base}/dashboard/")
    assert page.locator(".alert-banner").count() == 0
    desk.close()
