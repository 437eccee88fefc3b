"""The clinic's stock of off-the-shelf units: received, reserved (the unit expiring first among those good on
Day 0, by a conditional UPDATE), released back with a reason, and its custody from the freezer to the bedside."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from carclinic.errors import InvalidInput, NotPermitted
from journeys.models import ProtocolTemplate, StageNumber, StageStatus, StepStatus
from journeys.services import journey_start, step_complete
from manufacturing import services
from manufacturing.errors import CustodyOutOfOrder, NoStockAvailable, StockUnitChanged
from manufacturing.models import ProductKind, StockEvent, StockEventKind, StockState, StockUnit
from tests.factories import PatientFactory, minimal_record
from tests.journeys.test_concurrency import run_together
from tests.manufacturing.builders import make_product


@pytest.fixture
def allogeneic_product(db):
    return make_product(name="Offcel", kind=ProductKind.ALLOGENEIC)


def receive(actor, product, bag: str, expires_in_days: int, lot: str = "LOT-A"):
    return services.stock_unit_receive(
        actor=actor,
        product_id=product.id,
        lot_number=lot,
        bag_code=bag,
        expires_on=timezone.localdate() + timedelta(days=expires_in_days),
        location="Freezer 2, rack B",
    )


def off_the_shelf_journey(coordinator, nurse, physician, *, signed_off: bool = True):
    """An off-the-shelf journey, its eligibility recorded and signed (stage 2 under way) unless told not to."""
    protocol = ProtocolTemplate.objects.get(collection=False, version=1)
    journey = journey_start(actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id)
    if signed_off:
        for code, actor in (("eligibility-labs", nurse), ("eligibility-signoff", physician)):
            step = journey.steps.select_related("template", "stage").get(template__code=code)
            step_complete(actor=actor, step_id=step.id, record=minimal_record(step))
    journey.refresh_from_db()
    return journey


def test_only_an_allogeneic_product_is_kept_in_stock(coordinator):
    own_cells = make_product(name="Autocel")
    with pytest.raises(InvalidInput) as caught:
        receive(coordinator, own_cells, "BAG-1", 90)
    assert "product" in caught.value.field_errors


def test_an_expired_unit_or_a_bag_id_twice_is_refused(coordinator, allogeneic_product):
    receive(coordinator, allogeneic_product, "BAG-1", 90)
    with pytest.raises(InvalidInput) as caught:
        receive(coordinator, allogeneic_product, "BAG-1", 90)
    assert "bag_code" in caught.value.field_errors
    with pytest.raises(InvalidInput) as caught:
        receive(coordinator, allogeneic_product, "BAG-2", 0)
    assert "expires_on" in caught.value.field_errors


def test_reserving_takes_the_unit_expiring_first_among_those_good_on_day0_and_records_the_step(
    coordinator, nurse, physician, allogeneic_product
):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    days_to_day0 = (journey.day0_planned - timezone.localdate()).days
    receive(coordinator, allogeneic_product, "BAG-EXPIRES-BEFORE-DAY0", days_to_day0 - 1)
    receive(coordinator, allogeneic_product, "BAG-LATE", days_to_day0 + 200)
    first = receive(coordinator, allogeneic_product, "BAG-FIRST", days_to_day0 + 5, lot="LOT-7")

    unit = services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)

    assert unit.pk == first.pk
    assert (unit.state, unit.journey_id, unit.reserved_by, unit.version) == (StockState.RESERVED, journey.id, coordinator, 2)
    event = unit.events.get(kind=StockEventKind.RESERVED)
    assert (event.from_state, event.to_state, event.actor, event.journey_id) == ("available", "reserved", coordinator, journey.id)
    step = journey.steps.get(template__code="unit-reserved")
    assert step.status == StepStatus.DONE and step.completed_by == coordinator
    assert step.record["lot_number"] == "LOT-7" and step.record["bag_id"] == "BAG-FIRST"
    assert step.record["expires_on"] == first.expires_on.isoformat()
    # The unit's release for infusion is the clinic's own step (milestone: lymphodepletion waits for it).
    assert journey.steps.get(template__code="unit-released").status == StepStatus.PENDING


def test_a_second_reservation_for_the_same_patient_is_refused(coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    for bag in ("BAG-1", "BAG-2"):
        receive(coordinator, allogeneic_product, bag, 90)
    services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)
    with pytest.raises(StockUnitChanged, match="reserved for this patient already"):
        services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)
    assert StockUnit.objects.filter(state=StockState.AVAILABLE).count() == 1


def test_no_unit_left_is_a_clear_conflict_and_nothing_changes(coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    with pytest.raises(NoStockAvailable) as caught:
        services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)
    assert caught.value.http_status == 409
    assert journey.steps.get(template__code="unit-reserved").status == StepStatus.PENDING


def test_before_eligibility_is_signed_nothing_is_reserved(coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician, signed_off=False)
    receive(coordinator, allogeneic_product, "BAG-1", 90)
    with pytest.raises(Exception, match="has not started yet"):
        services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)
    # One transaction: the step refused, the claim is undone.
    assert StockUnit.objects.get().state == StockState.AVAILABLE
    assert not StockEvent.objects.filter(kind=StockEventKind.RESERVED).exists()


def test_an_autologous_journey_gets_no_unit_from_stock(coordinator, journey, allogeneic_product):
    receive(coordinator, allogeneic_product, "BAG-1", 90)
    with pytest.raises(InvalidInput, match="collects the patient's own cells"):
        services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)


def test_a_nurse_may_not_reserve(coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    receive(coordinator, allogeneic_product, "BAG-1", 90)
    with pytest.raises(NotPermitted):
        services.stock_reserve(actor=nurse, journey_id=journey.id, product_id=allogeneic_product.id)


def test_a_released_reservation_goes_back_to_stock_with_its_reason(coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    receive(coordinator, allogeneic_product, "BAG-1", 90)
    unit = services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)
    with pytest.raises(InvalidInput):
        services.stock_release_reservation(actor=coordinator, unit_id=unit.id, reason=" ")
    with pytest.raises(StockUnitChanged):
        services.stock_release_reservation(actor=coordinator, unit_id=unit.id, reason="Day 0 moved", expected_version=1)

    unit = services.stock_release_reservation(actor=coordinator, unit_id=unit.id, reason="Day 0 moved", expected_version=2)

    assert (unit.state, unit.journey_id, unit.version) == (StockState.AVAILABLE, None, 3)
    event = unit.events.get(kind=StockEventKind.RESERVATION_RELEASED)
    assert (event.reason, event.journey_id, event.from_state, event.to_state) == (
        "Day 0 moved",
        journey.id,
        "reserved",
        "available",
    )


def test_custody_from_stock_to_bedside_goes_in_order(coordinator, nurse, physician, allogeneic_product):
    journey = off_the_shelf_journey(coordinator, nurse, physician)
    receive(coordinator, allogeneic_product, "BAG-1", 90)
    unit = services.stock_reserve(actor=coordinator, journey_id=journey.id, product_id=allogeneic_product.id)
    start = timezone.now() - timedelta(hours=3)

    def record(kind, hours, celsius=None):
        return services.stock_custody_record(
            actor=nurse,
            unit_id=unit.id,
            kind=kind,
            at=start + timedelta(hours=hours),
            handled_by="Nina Nurse",
            location="Ward 3",
            temperature_celsius=celsius,
        )

    with pytest.raises(CustodyOutOfOrder, match="Issued from stock"):
        record(StockEventKind.THAWED, 0)
    issued = record(StockEventKind.ISSUED, 0, Decimal("-160"))
    assert issued.within_range is True and issued.to_state == StockState.ISSUED
    with pytest.raises(CustodyOutOfOrder):
        record(StockEventKind.ISSUED, 1)
    on_ward = record(StockEventKind.RECEIVED_ON_WARD, 1, Decimal("-100"))
    assert on_ward.within_range is False  # warmer than the product's frozen maximum (−150 °C): on the record
    with pytest.raises(CustodyOutOfOrder, match="dated before"):
        record(StockEventKind.THAWED, 0.5)
    record(StockEventKind.THAWED, 2)
    record(StockEventKind.INFUSED, 2.5)
    unit.refresh_from_db()
    assert unit.state == StockState.USED and unit.journey_id == journey.id
    kinds = list(unit.events.order_by("recorded_at", "id").values_list("kind", flat=True))
    assert kinds == ["received", "reserved", "issued", "received_on_ward", "thawed", "infused"]
    with pytest.raises(CustodyOutOfOrder, match="infused"):
        record(StockEventKind.INFUSED, 2.6)


def test_an_available_unit_cannot_leave_stock(coordinator, allogeneic_product):
    unit = receive(coordinator, allogeneic_product, "BAG-1", 90)
    with pytest.raises(CustodyOutOfOrder, match="only a reserved unit"):
        services.stock_custody_record(
            actor=coordinator, unit_id=unit.id, kind="issued", at=timezone.now(), handled_by="Cora", location="Freezer 2"
        )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_coordinators_reserve_the_last_unit_at_once_one_gets_it_the_other_a_conflict(make_user):
    product = make_product(name="Offcel", kind=ProductKind.ALLOGENEIC)
    coordinators = [make_user("coordinator") for _ in range(2)]
    nurse, physician = make_user("nurse"), make_user("physician")
    journeys = [off_the_shelf_journey(coordinator, nurse, physician) for coordinator in coordinators]
    receive(coordinators[0], product, "THE-LAST-BAG", 90)

    results = run_together(
        lambda i: services.stock_reserve(actor=coordinators[i], journey_id=journeys[i].id, product_id=product.id), 2
    )

    outcomes = sorted(outcome for outcome, _ in results)
    assert outcomes == ["error", "ok"], results
    [error] = [value for outcome, value in results if outcome == "error"]
    assert isinstance(error, NoStockAvailable)
    [winner] = [value for outcome, value in results if outcome == "ok"]
    unit = StockUnit.objects.get()
    assert (unit.state, unit.journey_id) == (StockState.RESERVED, winner.journey_id)
    assert StockEvent.objects.filter(kind=StockEventKind.RESERVED).count() == 1
    steps = {j.id: j.steps.get(template__code="unit-reserved").status for j in journeys}
    assert sorted(steps.values()) == [StepStatus.DONE, StepStatus.PENDING]
    assert steps[winner.journey_id] == StepStatus.DONE
    assert all(j.stages.get(number=StageNumber.RE_ENGINEERING).status == StageStatus.IN_PROGRESS for j in journeys)
