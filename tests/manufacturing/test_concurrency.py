"""Two coordinators booking the last slot of a week at once, on the real PostgreSQL with two connections."""

from datetime import timedelta

import pytest
from django.utils import timezone

from manufacturing import services
from manufacturing.models import BookingStatus, SlotBooking
from tests.journeys.test_concurrency import run_together
from tests.manufacturing.builders import make_plant, make_product


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_coordinators_book_the_last_slot_at_once_one_gets_it_the_other_waits(make_user):
    from journeys.models import ProtocolTemplate
    from journeys.services import journey_start
    from tests.factories import PatientFactory

    product = make_product()
    plant = make_plant(product, slots=1)
    coordinators = [make_user("coordinator") for _ in range(2)]
    protocol = ProtocolTemplate.objects.get(version=1, collection=True)
    orders = []
    for coordinator in coordinators:
        journey = journey_start(
            actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
        )
        orders.append(services.order_request(actor=coordinator, journey_id=journey.id, product_id=product.id, plant_id=plant.id))
    week = timezone.localdate() + timedelta(days=21)

    results = run_together(lambda i: services.slot_book(actor=coordinators[i], order_id=orders[i].id, week_start=week), 2)

    assert all(outcome == "ok" for outcome, _ in results), results
    statuses = sorted(SlotBooking.objects.values_list("status", flat=True))
    assert statuses == [BookingStatus.BOOKED, BookingStatus.WAITING]
