"""A maker's system over the API: it sees and changes only its own orders, moves one to released (If-Match,
Idempotency-Key), and posts custody hand-offs."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apiclients.services import api_client_create
from manufacturing import services
from manufacturing.models import BagKind, OrderStatus
from tests.manufacturing.builders import PASSING, make_plant, make_product, step_of

pytestmark = pytest.mark.django_db


def _maker_api(maker, name="maker-system"):
    client, key = api_client_create(name=name, role="manufacturer")
    maker.api_user = client.user
    maker.save()
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return http


@pytest.fixture
def other_order(coordinator):
    from journeys.models import ProtocolTemplate
    from journeys.services import journey_start
    from tests.factories import PatientFactory

    product = make_product(name="Other-cel")
    plant = make_plant(product, name="Other plant")
    journey = journey_start(
        actor=coordinator,
        patient_id=PatientFactory().id,
        protocol_id=ProtocolTemplate.objects.get(version=1, collection=True).id,
        leukapheresis_date=timezone.localdate(),
    )
    return services.order_request(actor=coordinator, journey_id=journey.id, product_id=product.id, plant_id=plant.id)


def test_a_makers_key_sees_and_changes_only_its_own_orders(order, other_order):
    api = _maker_api(order.product.maker)
    listed = api.get("/api/v1/manufacturing/orders/")
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()] == [str(order.public_id)]
    assert api.get(f"/api/v1/manufacturing/orders/{other_order.public_id}/").status_code == 404
    refused = api.post(
        f"/api/v1/manufacturing/orders/{other_order.public_id}/status/",
        {"status": "cancelled", "reason": "x"},
        format="json",
        HTTP_IF_MATCH=f'"{other_order.public_id}.{other_order.version}"',
    )
    assert refused.status_code == 404
    other_order.refresh_from_db()
    assert other_order.status == OrderStatus.REQUESTED
    # Nor does the key open the clinic's patients.
    assert api.get("/api/v1/patients/").status_code == 403


def test_a_makers_system_moves_an_order_to_released(order, coordinator, nurse):
    services.slot_book(actor=coordinator, order_id=order.id, week_start=timezone.localdate())
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    start = timezone.now() - timedelta(hours=30)
    for hours, kind in ((0, "collected"), (1, "packed"), (2, "picked_up")):
        services.custody_record(
            actor=nurse,
            bag_id=bag.id,
            kind=kind,
            at=start + timedelta(hours=hours),
            handled_by="Nina",
            location="Ward",
            temperature_celsius=5,
        )
    api = _maker_api(order.product.maker)
    url = f"/api/v1/manufacturing/orders/{order.public_id}/"
    received = api.post(
        url + "custody/",
        {
            "bag": bag.code,
            "kind": "received_at_plant",
            "at": (start + timedelta(hours=26)).isoformat(),
            "handled_by": "Plant intake",
            "location": "Plant North",
            "temperature_celsius": "5.5",
        },
        format="json",
    )
    assert received.status_code == 200, received.json()
    etag = api.get(url)["ETag"]
    for status in ("material_received", "in_production", "qc_testing"):
        moved = api.post(
            url + "status/",
            {"status": status, "lot_number": "LOT-API"},
            format="json",
            HTTP_IF_MATCH=etag,
            HTTP_IDEMPOTENCY_KEY=f"move-{status}",
        )
        assert moved.status_code == 200, moved.json()
        etag = moved["ETag"]
    # A retry of the last move with the same key returns the first answer, and changes nothing.
    replay = api.post(
        url + "status/",
        {"status": "qc_testing", "lot_number": "LOT-API"},
        format="json",
        HTTP_IF_MATCH=etag.replace(etag.split(".")[-1], str(int(etag.strip('"').split(".")[-1]) - 1) + '"'),
        HTTP_IDEMPOTENCY_KEY="move-qc_testing",
    )
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    stale = api.post(
        url + "qc/", {"lot_number": "LOT-API", "results": PASSING}, format="json", HTTP_IF_MATCH=f'"{order.public_id}.1"'
    )
    assert stale.status_code == 409 and stale.json()["current"]["status"] == "qc_testing"
    for code in ("plant-receipt", "manufacturing-start"):
        from journeys.services import step_complete
        from tests.factories import lymphodepletion_earlier, minimal_record, second_signer

        step = step_of(order.journey, code)
        step_complete(
            actor=coordinator,
            step_id=step.id,
            record=minimal_record(step),
            **second_signer(step),
            **lymphodepletion_earlier(step),
        )
    released = api.post(url + "qc/", {"lot_number": "LOT-API", "results": PASSING}, format="json", HTTP_IF_MATCH=etag)
    assert released.status_code == 200, released.json()
    body = released.json()
    assert body["status"] == "released" and len(body["qc_results"]) == 6
    order.journey.refresh_from_db()
    assert order.journey.product_released_at is not None
    custody = api.get(url + "custody/").json()
    assert [e["kind"] for e in custody] == ["collected", "packed", "picked_up", "received_at_plant"]


def test_if_match_is_required(order):
    api = _maker_api(order.product.maker)
    answer = api.post(
        f"/api/v1/manufacturing/orders/{order.public_id}/status/", {"status": "cancelled", "reason": "x"}, format="json"
    )
    assert answer.status_code == 428
