"""Real headless Chromium on the patient page of a patient years after Day 0: the Follow-up panel (status,
CD19+/IgG/score charts with their tables, a malignancy) loads, axe-core finds nothing critical or serious,
and nothing is wider than a 375 px phone. Screenshots go to artifacts/screenshots/followup-patient-*.png."""

import os
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from journeys import services
from journeys.models import ProtocolTemplate, Stage, StageStatus, Step, StepStatus
from tests.browser.test_journeys_browser import (  # noqa: F401 - browser is a fixture
    DESKTOP,
    PHONE,
    SHOTS,
    browser,
    sign_in,
    ward_member,
)
from tests.browser.test_ward_browser import axe_violations
from tests.factories import PatientFactory

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

VISITS = [
    ("visit-day-14", 14, {"cd19_b_cells": "0", "igg": "6.8", "disease_activity": "4"}),
    ("visit-day-28", 28, {"cd19_b_cells": "0", "igg": "5.9", "disease_activity": "2"}),
    ("visit-month-2", 60, {"cd19_b_cells": "0.4", "igg": "4.6", "disease_activity": "0"}),
    ("remission-month-3", 90, {"remission": "doris", "disease_activity": "0"}),
    ("visit-month-3", 90, {"cd19_b_cells": "2", "igg": "3.8", "disease_activity": "0"}),
    ("visit-month-6", 182, {"cd19_b_cells": "85", "igg": "4.9", "disease_activity": "0"}),
    ("visit-month-12", 365, {"cd19_b_cells": "160", "igg": "6.2", "disease_activity": "0"}),
    ("remission-month-12", 365, {"remission": "doris", "disease_activity": "0"}),
    ("ltfu-year-2", 730, {"cd19_b_cells": "210", "igg": "7.1", "new_malignancy": True, "malignancy_type": "T-cell lymphoma"}),
]


@pytest.fixture
def followed_patient():
    coordinator = ward_member("coordinator")
    patient = PatientFactory(mrn="MRN0042077", given_name="Ida", family_name="Sandberg", coordinator=coordinator)
    protocol = ProtocolTemplate.objects.get(version=1, name__startswith="CD19")
    journey = services.journey_start(
        actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
    )
    day0 = timezone.localdate() - timedelta(days=800)
    journey.day0_actual, journey.current_stage = day0, 5
    journey.save(update_fields=["day0_actual", "current_stage"])
    Stage.objects.filter(journey=journey, number__lt=5).update(status=StageStatus.COMPLETED, completed_at=timezone.now())
    Stage.objects.filter(journey=journey, number=5).update(status=StageStatus.IN_PROGRESS, started_at=timezone.now())
    Step.objects.filter(journey=journey, stage__number__lt=5).update(status=StepStatus.DONE, completed_at=timezone.now())
    for code, day, record in VISITS:
        at = timezone.make_aware(datetime.combine(day0 + timedelta(days=day), time(10)))
        Step.objects.filter(journey=journey, template__code=code).update(
            status=StepStatus.DONE, performed_at=at, completed_at=at, completed_by=coordinator, record=record
        )
    return patient


def _grave(violations):
    return [v for v in violations if v["impact"] in ("critical", "serious")]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_patient_page_with_charts_passes_axe(browser, live_server, followed_patient, viewport):
    base = live_server.url
    context = browser.new_context(
        viewport=DESKTOP if viewport == "desktop" else PHONE, locale="en-GB", timezone_id="Europe/Berlin", bypass_csp=True
    )  # axe is injected as an inline script
    page = context.new_page()
    sign_in(page, base, "cora")
    page.wait_for_url(f"{base}/dashboard/")
    page.locator("#malignancy-heading").wait_for()
    assert "Sandberg" in page.locator("#malignancy-card").inner_text()

    page.goto(f"{base}/patients/{followed_patient.public_id}/")
    page.locator("#followup-panel svg.chart-svg").first.wait_for()
    assert page.locator("#followup-panel svg.chart-svg").count() == 3
    panel = page.locator("#followup-panel").inner_text()
    assert "Reconstituted" in panel and "DORIS remission" in panel and "T-cell lymphoma" in panel
    assert _grave(axe_violations(page)) == []
    if viewport == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#followup-heading").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"followup-patient-{viewport}.png"), full_page=True)
    page.locator("section[aria-labelledby=followup-heading]").screenshot(path=str(SHOTS / f"followup-panel-{viewport}.png"))
    context.close()
