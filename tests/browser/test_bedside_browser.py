"""Real headless Chromium on a 375 px phone: a nurse types a matching bag id (recorded), then a bag of another
patient (a mismatch: recorded, raised as a clinical alert, the infusion blocked)."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import AlertKind, ClinicalAlert
from journeys.models import ProtocolTemplate
from journeys.services import journey_start
from manufacturing import services
from manufacturing.models import BagKind, BedsideCheck
from tests.browser.test_journeys_browser import PHONE, browser, shot, sign_in, ward_member  # noqa: F401 - browser is a fixture
from tests.factories import PatientFactory
from tests.manufacturing.builders import PASSING, finish_collection_stage, make_plant, make_product, walk_to_qc

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def bedside():
    coordinator, nurse, physician = ward_member("coordinator"), ward_member("nurse"), ward_member("physician")
    protocol = ProtocolTemplate.objects.get(version=1, name__startswith="CD19")
    patient = PatientFactory(given_name="Ida", family_name="Sørensen", coordinator=coordinator, physician=physician)
    journey = journey_start(
        actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
    )
    finish_collection_stage(journey, nurse=nurse, physician=physician, coordinator=coordinator)
    product = make_product()
    order = services.order_request(
        actor=coordinator, journey_id=journey.id, product_id=product.id, plant_id=make_plant(product).id
    )
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    services.order_qc_record(actor=coordinator, order_id=order.id, results=PASSING)
    bag = services.bag_register(actor=coordinator, order_id=order.id, kind=BagKind.PRODUCT)
    now = timezone.now()
    for minutes, kind in ((50, "filled"), (40, "shipped"), (30, "received_at_clinic"), (20, "stored")):
        services.custody_record(
            actor=coordinator,
            bag_id=bag.id,
            kind=kind,
            at=now - timedelta(minutes=minutes),
            handled_by="Cryo courier",
            location="Clinic",
            temperature_celsius=Decimal("-180"),
        )
    stranger = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
    )
    other = services.chain_of_identity_assign(actor=coordinator, journey_id=stranger.id)
    return {
        "journey": journey,
        "bag": bag,
        "other_bag": f"{other.identifier}-P1",
        "coordinator": coordinator,
        "physician": physician,
    }


def test_nurse_checks_a_matching_and_a_mismatching_bag_on_a_phone(browser, live_server, bedside):
    context = browser.new_context(viewport=PHONE, has_touch=True, locale="en-GB", timezone_id="Europe/Berlin")
    page = context.new_page()
    sign_in(page, live_server.url, "nina")
    page.goto(f"{live_server.url}/manufacturing/journeys/{bedside['journey'].public_id}/bedside/")
    chain = bedside["bag"].chain
    assert page.locator("#expected-coi").inner_text() == chain.display
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.get_by_label("Bag label (scan or type)").fill(bedside["bag"].code.lower())
    page.get_by_role("button", name="Compare").click()
    assert "Match" in page.locator("#check-result").inner_text()
    shot(page, "bedside-match-phone")

    page.get_by_label("Bag label (scan or type)").fill(bedside["other_bag"])
    page.get_by_role("button", name="Compare").click()
    result = page.locator("#check-result").inner_text()
    assert "MISMATCH" in result and "do not infuse" in result
    shot(page, "bedside-mismatch-phone")
    assert list(BedsideCheck.objects.order_by("id").values_list("outcome", flat=True)) == ["match", "mismatch"]
    alert = ClinicalAlert.objects.get(kind=AlertKind.COI_MISMATCH)
    assert {d.recipient for d in alert.deliveries.filter(channel="in_app")} == {bedside["coordinator"], bedside["physician"]}
    context.close()
