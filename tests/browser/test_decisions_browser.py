"""Real headless Chromium at 375 px and 1280 px: the physician's decision pages (exceptional release signed
twice, quarantined material, a bedside mismatch), registering a bag against its chain of identity, and the
dashboard's manufacturing queue card swapped in by HTMX. No page scrolls sideways on a phone, none breaks
the Content-Security-Policy."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from journeys.models import ProtocolTemplate
from journeys.services import journey_start
from manufacturing import services
from manufacturing.models import Bag, BagKind, BagStatus, BedsideCheck, OrderStatus
from tests.browser.test_journeys_browser import (  # noqa: F401 - browser is a fixture
    DESKTOP,
    PASSWORD,
    PHONE,
    browser,
    shot,
    sign_in,
    ward_member,
)
from tests.factories import PatientFactory
from tests.manufacturing.builders import PASSING, finish_collection_stage, make_plant, make_product, walk_to_qc

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def scene():
    coordinator, nurse, physician = ward_member("coordinator"), ward_member("nurse"), ward_member("physician")
    protocol = ProtocolTemplate.objects.get(version=1, name__startswith="CD19")
    product = make_product()
    plant = make_plant(product)

    def journey_for(given, family):
        patient = PatientFactory(given_name=given, family_name=family, coordinator=coordinator, physician=physician)
        journey = journey_start(
            actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
        )
        return finish_collection_stage(journey, nurse=nurse, physician=physician, coordinator=coordinator)

    journey = journey_for("Ida", "Sørensen")
    order = services.order_request(actor=coordinator, journey_id=journey.id, product_id=product.id, plant_id=plant.id)
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    services.order_qc_record(actor=coordinator, order_id=order.id, results={**PASSING, "viability": "12"})
    warm = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    services.custody_record(
        actor=nurse,
        bag_id=warm.id,
        kind="collected",
        at=timezone.now() - timedelta(hours=1),
        handled_by="Nina Nurse",
        location="Apheresis unit",
        temperature_celsius=Decimal("35"),
    )
    stranger = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
    )
    other = services.chain_of_identity_assign(actor=coordinator, journey_id=stranger.id)
    services.bedside_check(actor=nurse, journey_id=journey.id, scanned_bag=f"{other.identifier}-P1")
    # A second patient whose plant expects to release too late for her planned Day 0.
    late_journey = journey_for("Lina", "Keller")
    late = services.order_request(actor=coordinator, journey_id=late_journey.id, product_id=product.id, plant_id=plant.id)
    services.order_set_expected_release(
        actor=coordinator, order_id=late.id, expected_release=late_journey.day0_planned + timedelta(days=2)
    )
    order.refresh_from_db()
    return {"order": order, "warm": warm, "journey": journey, "coordinator": coordinator, "plant": plant}


def _open(page, url, name, width):
    page.goto(url)
    if width == PHONE["width"]:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    shot(page, f"{name}-{width}")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_decision_pages_and_the_queue_at_both_widths(browser, live_server, scene, viewport):
    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Europe/Berlin")
    page = context.new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    base, order, width = live_server.url, scene["order"], viewport["width"]
    sign_in(page, base, "phil")

    _open(page, f"{base}/manufacturing/orders/{order.public_id}/exceptional-release/", "exceptional-release", width)
    assert "OUT OF SPECIFICATION" in page.content() and "Viability" in page.content()
    _open(page, f"{base}/manufacturing/bags/{scene['warm'].public_id}/excursion/", "excursion-decision", width)
    assert "35" in page.content()
    _open(page, f"{base}/manufacturing/journeys/{scene['journey'].public_id}/bedside/resolve/", "mismatch-resolve", width)
    _open(page, f"{base}/manufacturing/orders/{order.public_id}/bags/new/", "bag-register", width)
    assert page.locator("#expected-coi").inner_text() == order.journey.chain_of_identity.display

    page.goto(f"{base}{reverse('dashboard')}")
    # The plain card is replaced by manufacturing's, with the plant and the at-risk flag.
    page.wait_for_selector("#mfg-queue[data-queue=orders]")
    queue = page.locator("#mfg-queue").inner_text()
    assert scene["plant"].name in queue and "Day 0 at risk" in queue and "Out of specification" in queue
    page.locator("#mfg-queue").scroll_into_view_if_needed()
    if width == PHONE["width"]:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, f"dashboard-queue-{width}")
    assert refused == []
    context.close()


def test_a_physician_decides_everything_on_a_desk(browser, live_server, scene):
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/Berlin")
    page = context.new_page()
    base, order = live_server.url, scene["order"]
    sign_in(page, base, "phil")

    page.goto(f"{base}/manufacturing/bags/{scene['warm'].public_id}/excursion/")
    page.get_by_label("Discard the material").check()
    page.get_by_label("Reason (goes into the audit trail)").fill("35 °C for an hour: outside the maker's data")
    page.get_by_role("button", name="Record the decision").click()
    assert Bag.objects.get(pk=scene["warm"].pk).status == BagStatus.DISCARDED

    page.goto(f"{base}/manufacturing/journeys/{scene['journey'].public_id}/bedside/resolve/")
    page.get_by_label("Resolution (what was found and done; goes into the audit trail)").fill("Wrong bag, back to pharmacy")
    page.get_by_role("button", name="Resolve").click()
    assert not BedsideCheck.objects.filter(outcome="mismatch", resolved_at__isnull=True).exists()

    page.goto(f"{base}/manufacturing/orders/{order.public_id}/bags/new/")
    page.get_by_label("Final product bag").check()
    page.get_by_label("Chain of identity on the bag (scan or type)").fill(order.journey.chain_of_identity.identifier[:-1] + "0")
    page.get_by_role("button", name="Register the bag").click()
    if order.journey.chain_of_identity.identifier[-1] != "0":
        assert "Check character does not fit" in page.content()
        shot(page, "bag-register-refused-1280")
    page.get_by_label("Chain of identity on the bag (scan or type)").fill(order.journey.chain_of_identity.display)
    page.get_by_role("button", name="Register the bag").click()
    assert Bag.objects.filter(order=order, kind=BagKind.PRODUCT).exists()

    page.goto(f"{base}/manufacturing/orders/{order.public_id}/exceptional-release/")
    page.get_by_label("Reason (clinical justification", exact=False).fill("Progressing disease; no alternative therapy")
    page.get_by_label("Second signer: user name").fill("cora")
    page.get_by_label("Second signer: password").fill("wrong")
    page.get_by_role("button", name="Release exceptionally, signed twice").click()
    assert "do not match" in page.content()
    shot(page, "exceptional-release-refused-1280")
    page.get_by_label("Second signer: password").fill(PASSWORD)
    page.get_by_role("button", name="Release exceptionally, signed twice").click()
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED and order.exceptional_release
    assert "EXCEPTIONAL RELEASE" in page.content()
    shot(page, "order-exceptional-release-1280")
    context.close()
