"""The stock page and the "Reserve a unit" action on the patient's page."""

import pytest
from django.urls import reverse

from manufacturing.models import ProductKind, StockState, StockUnit
from tests.manufacturing.builders import make_product
from tests.manufacturing.test_stock import off_the_shelf_journey, receive


@pytest.fixture
def allogeneic_product(db):
    return make_product(name="Offcel", kind=ProductKind.ALLOGENEIC)


def test_the_stock_page_counts_available_reserved_and_soon_expiring_units(
    client, coordinator, nurse, physician, allogeneic_product
):
    receive(coordinator, allogeneic_product, "BAG-SOON", 20)
    receive(coordinator, allogeneic_product, "BAG-LATER", 200)
    receive(coordinator, allogeneic_product, "BAG-RESERVED", 300)
    StockUnit.objects.filter(bag_code="BAG-RESERVED").update(
        state=StockState.RESERVED, journey=off_the_shelf_journey(coordinator, nurse, physician, signed_off=False)
    )
    client.force_login(nurse)
    response = client.get(reverse("manufacturing:stock"))
    assert response.status_code == 200
    product = response.context["products"][0]
    assert (product.available, product.reserved, product.expiring_soon) == (2, 1, 1)
    body = response.content.decode()
    assert "BAG-SOON" in body and "BAG-RESERVED" in body and "Reserved" in body


def test_the_stock_page_costs_the_same_queries_for_few_and_many_units(
    client, coordinator, allogeneic_product, django_assert_max_num_queries
):
    client.force_login(coordinator)
    receive(coordinator, allogeneic_product, "BAG-0", 90)
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("manufacturing:stock"))
    other = make_product(name="Offcel 2", kind=ProductKind.ALLOGENEIC)
    for index in range(1, 25):
        receive(coordinator, other if index % 2 else allogeneic_product, f"BAG-{index}", 40 + index)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("manufacturing:stock"))
    assert response.content.decode().count("BAG-") == 25


def test_a_coordinator_reserves_a_unit_from_the_patients_page(client, coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    receive(coordinator, allogeneic_product, "BAG-1", 90, lot="LOT-9")
    client.force_login(coordinator)
    patient_page = reverse("patient_detail", args=[journey.patient.public_id])
    body = client.get(patient_page).content.decode()
    reserve = reverse("manufacturing:stock_reserve", args=[journey.public_id])
    assert reserve in body and "Reserve a unit" in body and "Request manufacturing" not in body

    response = client.post(reserve, {"product": allogeneic_product.pk})

    assert response.status_code == 302 and response.url == patient_page
    assert StockUnit.objects.get().journey_id == journey.id
    body = client.get(patient_page).content.decode()
    assert "BAG-1" in body and "lot LOT-9" in body and "Reserved for a patient" in body


def test_the_last_unit_taken_is_a_409_that_says_so(client, coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    client.force_login(coordinator)
    response = client.post(reverse("manufacturing:stock_reserve", args=[journey.public_id]), {"product": allogeneic_product.pk})
    assert response.status_code == 409
    assert "another coordinator may have reserved the last one" in response.content.decode()


def test_a_nurse_cannot_open_the_reserve_page(client, coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    client.force_login(nurse)
    assert client.get(reverse("manufacturing:stock_reserve", args=[journey.public_id])).status_code == 403
    assert "Reserve a unit" not in client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
