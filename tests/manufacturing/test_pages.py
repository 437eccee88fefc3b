"""Product-road pages through the test client: who may open what, the capacity page's constant query count,
the COI in the patient header and in search, labels, and the bedside check."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from manufacturing import services
from manufacturing.models import BagKind, BedsideCheck, ChainOfIdentity
from tests.factories import PatientFactory
from tests.manufacturing.builders import make_plant, make_product

pytestmark = pytest.mark.django_db
ROLES = ["coordinator", "nurse", "physician", "viewer", "admin"]


@pytest.fixture(autouse=True)
def _plain_static(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture
def users(coordinator, nurse, physician, viewer, make_user):
    return {"coordinator": coordinator, "nurse": nurse, "physician": physician, "viewer": viewer, "admin": make_user("admin")}


ALLOWED = {
    "capacity": set(ROLES),
    "order": set(ROLES),
    "labels": set(ROLES),
    "order_request": {"coordinator", "physician", "admin"},
    "bedside": {"coordinator", "nurse", "physician", "admin"},
}


def _urls(order):
    return {
        "capacity": reverse("manufacturing:capacity"),
        "order": reverse("manufacturing:order", args=[order.public_id]),
        "labels": reverse("manufacturing:labels", args=[order.public_id]),
        "order_request": reverse("manufacturing:order_request", args=[order.journey.public_id]),
        "bedside": reverse("manufacturing:bedside", args=[order.journey.public_id]),
    }


@pytest.mark.parametrize("role", ROLES)
def test_who_may_open_which_page(client, users, order, role):
    client.force_login(users[role])
    for page, url in _urls(order).items():
        response = client.get(url)
        expected = 200 if role in ALLOWED[page] else 403
        assert response.status_code == expected, (page, role, response.status_code)


def test_a_maker_client_opens_no_clinic_page(client, make_user, order):
    client.force_login(make_user("manufacturer"))
    for url in _urls(order).values():
        assert client.get(url).status_code == 403


def test_the_capacity_page_costs_the_same_queries_for_few_and_many_orders(client, coordinator, django_assert_max_num_queries):
    from journeys.models import ProtocolTemplate
    from journeys.services import journey_start

    product = make_product()
    plant = make_plant(product, slots=2)
    protocol = ProtocolTemplate.objects.get(version=1, collection=True)
    client.force_login(coordinator)

    def book(count, week_offset):
        for i in range(count):
            journey = journey_start(
                actor=coordinator,
                patient_id=PatientFactory().id,
                protocol_id=protocol.id,
                leukapheresis_date=timezone.localdate(),
            )
            order = services.order_request(actor=coordinator, journey_id=journey.id, product_id=product.id, plant_id=plant.id)
            services.slot_book(
                actor=coordinator, order_id=order.id, week_start=timezone.localdate() + timedelta(weeks=week_offset + i % 3)
            )

    book(1, 0)
    with django_assert_max_num_queries(12) as few:
        response = client.get(reverse("manufacturing:capacity"))
    assert response.status_code == 200
    book(9, 1)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("manufacturing:capacity"))
    body = response.content.decode()
    assert "waiting" in body and "Plant North" in body and "full" in body


def test_capacity_filters_by_maker(client, coordinator):
    first = make_product(name="Alpha-cel")
    second = make_product(name="Beta-cel")
    make_plant(first, name="Plant Alpha")
    make_plant(second, name="Plant Beta")
    client.force_login(coordinator)
    body = client.get(reverse("manufacturing:capacity"), {"maker": first.maker.pk}).content.decode()
    assert "Plant Alpha" in body and "Plant Beta" not in body


def test_the_patient_header_shows_the_coi_and_search_finds_the_patient_by_it(client, coordinator, order):
    chain = ChainOfIdentity.objects.get(journey=order.journey)
    patient = order.journey.patient
    client.force_login(coordinator)
    body = client.get(reverse("patient_detail", args=[patient.public_id])).content.decode()
    assert chain.display in body and "Requested" in body
    from journeys.selectors import patient_search

    assert [p.pk for p in patient_search(text=chain.display)] == [patient.pk]
    assert [p.pk for p in patient_search(text=chain.identifier.lower())] == [patient.pk]


def test_a_label_carries_the_code_coi_patient_product_lot_and_expiry(client, nurse, order):
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    client.force_login(nurse)
    body = client.get(reverse("manufacturing:labels", args=[order.public_id])).content.decode()
    patient = order.journey.patient
    assert "<svg" in body and bag.code in body and bag.chain.display in body
    assert patient.mrn in body and patient.family_name.upper() in body and order.product.name in body
    assert patient.date_of_birth.strftime("%d %b %Y") in body


def test_the_bedside_page_shows_the_expected_coi_and_records_a_mismatch(client, nurse, order, coordinator):
    chain = ChainOfIdentity.objects.get(journey=order.journey)
    client.force_login(nurse)
    url = reverse("manufacturing:bedside", args=[order.journey.public_id])
    assert chain.display in client.get(url).content.decode()
    from journeys.models import ProtocolTemplate
    from journeys.services import journey_start

    other_journey = journey_start(
        actor=coordinator,
        patient_id=PatientFactory().id,
        protocol_id=ProtocolTemplate.objects.get(version=1, collection=True).id,
        leukapheresis_date=timezone.localdate(),
    )
    other = services.chain_of_identity_assign(actor=coordinator, journey_id=other_journey.id)
    response = client.post(url, {"scanned_bag": f"{other.identifier}-P1"})
    assert "MISMATCH" in response.content.decode()
    assert BedsideCheck.objects.get().outcome == "mismatch"
    mistyped = client.post(url, {"scanned_bag": chain.identifier[:-1] + ("A" if chain.identifier[-1] != "A" else "B")})
    assert mistyped.status_code == 400 and "check character" in mistyped.content.decode().lower()
    assert BedsideCheck.objects.count() == 1
