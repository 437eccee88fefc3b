"""The product's road through its services, on the real journey: orders, QC against the specification,
the OOS path and its guard on lymphodepletion, slots and the waiting list, custody and excursions, the
chain of identity and the bedside check."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import AlertKind, ClinicalAlert
from carclinic.errors import InvalidInput, NotPermitted
from journeys import services as journey_services
from journeys.errors import StageOrderViolation, TransitionNotAllowed
from journeys.models import Journey, StageStatus, StepStatus
from manufacturing import services
from manufacturing.errors import (
    BedsideMismatchUnresolved,
    ChainOfIdentityInvalid,
    CustodyOutOfOrder,
    MaterialQuarantined,
    OrderTransitionNotAllowed,
)
from manufacturing.identity import chain_of_identity_is_valid
from manufacturing.models import (
    BagKind,
    BagStatus,
    BedsideCheck,
    BookingStatus,
    ChainOfIdentity,
    Excursion,
    ExcursionKind,
    OrderStatus,
)
from notifications.models import Notification
from tests.manufacturing.builders import PASSING, step_of, walk_to_qc

pytestmark = pytest.mark.django_db


def test_an_order_gives_the_journey_its_chain_of_identity_and_takes_over_the_qc_release(order, coordinator):
    chain = ChainOfIdentity.objects.get(journey=order.journey)
    assert chain_of_identity_is_valid(chain.identifier)
    assert chain.patient_id == order.journey.patient_id
    order.journey.refresh_from_db()
    assert order.journey.product_release_by_order
    release = step_of(order.journey, "qc-release")
    with pytest.raises(TransitionNotAllowed, match="recorded by the manufacturing order"):
        journey_services.step_complete(actor=coordinator, step_id=release.id, record={"lot_number": "LOT-1"})
    assert order.history.count() == 1 and order.events.filter(kind="requested").exists()


def test_a_release_within_specification_records_the_journeys_qc_step_and_opens_lymphodepletion(order, coordinator, nurse):
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    services.order_qc_record(actor=coordinator, order_id=order.id, results=PASSING)
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED and order.released_at
    journey = order.journey
    journey.refresh_from_db()
    release = step_of(journey, "qc-release")
    assert release.status == StepStatus.DONE and release.record == {"lot_number": "LOT-7"}
    assert journey.product_released_at is not None
    assert journey.stages.get(number=3).status == StageStatus.IN_PROGRESS
    assert order.qc_results.count() == 6 and all(r.within_specification for r in order.qc_results.all())


@pytest.mark.parametrize(
    "criterion, result",
    [
        ("sterility", "growth"),
        ("mycoplasma", "positive"),
        ("endotoxin", "5"),
        ("viability", "69.9"),
        ("car_expression", "14.99"),
        ("vector_copy_number", "5.01"),
    ],
)
def test_one_result_just_past_its_limit_makes_the_product_oos_and_lymphodepletion_cannot_start(
    order, coordinator, nurse, physician, criterion, result
):
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    services.order_qc_record(actor=coordinator, order_id=order.id, results={**PASSING, criterion: result})
    order.refresh_from_db()
    assert order.status == OrderStatus.OUT_OF_SPECIFICATION
    assert [r.criterion for r in order.qc_results.filter(within_specification=False)] == [criterion]
    journey = order.journey
    journey.refresh_from_db()
    assert journey.product_released_at is None
    assert journey.stages.get(number=3).status == StageStatus.PENDING
    # Journeys' one "Day 0 at risk" rule knows at once, whatever the dates.
    assert journey.product_out_of_specification
    assert Journey.objects.day0_at_risk(timezone.localdate()).filter(pk=journey.pk).exists()
    # Neither the release step by hand nor the first lymphodepletion day gets through.
    with pytest.raises(TransitionNotAllowed):
        journey_services.step_complete(
            actor=coordinator, step_id=step_of(journey, "qc-release").id, record={"lot_number": "LOT-7"}
        )
    with pytest.raises(StageOrderViolation):
        journey_services.step_complete(actor=nurse, step_id=step_of(journey, "ld-day-5").id)
    with pytest.raises(OrderTransitionNotAllowed):
        services.order_move(actor=coordinator, order_id=order.id, to_status=OrderStatus.RELEASED)
    assert Notification.objects.filter(title__startswith="Product out of specification").count() >= 2


def test_values_at_their_limits_release(order, coordinator, nurse):
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    at_limits = {
        "sterility": "No growth",
        "mycoplasma": "negative",
        "endotoxin": "4.99",
        "viability": "70",
        "car_expression": "15",
        "vector_copy_number": "5",
    }
    services.order_qc_record(actor=coordinator, order_id=order.id, results=at_limits)
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED


def test_a_release_with_only_a_lot_number_is_refused(order, coordinator, nurse):
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    with pytest.raises(InvalidInput) as error:
        services.order_qc_record(actor=coordinator, order_id=order.id, results={}, lot_number="LOT-7")
    assert set(error.value.field_errors) == {
        "sterility",
        "mycoplasma",
        "endotoxin",
        "viability",
        "car_expression",
        "vector_copy_number",
    }
    order.refresh_from_db()
    assert order.status == OrderStatus.QC_TESTING and not order.qc_results.exists()


def _oos(order, coordinator, nurse):
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    services.order_qc_record(actor=coordinator, order_id=order.id, results={**PASSING, "viability": "12"})


def test_exceptional_release_needs_a_physician_a_reason_and_a_second_person(order, coordinator, nurse, physician, make_user):
    _oos(order, coordinator, nurse)
    with pytest.raises(NotPermitted):
        services.order_exceptional_release(actor=coordinator, order_id=order.id, reason="x", countersigned_by=physician)
    with pytest.raises(InvalidInput):
        services.order_exceptional_release(actor=physician, order_id=order.id, reason=" ", countersigned_by=coordinator)
    with pytest.raises(InvalidInput):
        services.order_exceptional_release(
            actor=physician, order_id=order.id, reason="No alternative", countersigned_by=physician
        )
    with pytest.raises(InvalidInput):
        services.order_exceptional_release(actor=physician, order_id=order.id, reason="No alternative", countersigned_by=nurse)
    services.order_exceptional_release(
        actor=physician, order_id=order.id, reason="Re-collection impossible; benefit outweighs", countersigned_by=coordinator
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED and order.exceptional_release
    assert order.exceptional_release_countersigned_by == coordinator
    release = step_of(order.journey, "qc-release")
    assert release.status == StepStatus.DONE and release.notes.startswith("EXCEPTIONAL RELEASE")


def test_re_collection_is_a_new_order_in_the_same_journey_with_the_same_chain_of_identity(order, coordinator, nurse):
    _oos(order, coordinator, nurse)
    chain = ChainOfIdentity.objects.get(journey=order.journey)
    repeat = services.order_repeat(actor=coordinator, order_id=order.id, how=OrderStatus.RE_COLLECTION, reason="Viability 12 %")
    order.refresh_from_db()
    assert order.status == OrderStatus.RE_COLLECTION and repeat.previous == order
    assert repeat.status == OrderStatus.REQUESTED and repeat.journey_id == order.journey_id
    bag = services.bag_register(actor=nurse, order_id=repeat.id, kind=BagKind.COLLECTION)
    assert bag.chain == chain and bag.code == f"{chain.identifier}-C2"
    remake = None
    with pytest.raises(OrderTransitionNotAllowed):
        remake = services.order_repeat(actor=coordinator, order_id=order.id, how=OrderStatus.RE_MANUFACTURE, reason="again")
    assert remake is None


def test_re_manufacture_starts_with_the_material_at_the_plant(order, coordinator, nurse):
    _oos(order, coordinator, nurse)
    repeat = services.order_repeat(
        actor=coordinator, order_id=order.id, how=OrderStatus.RE_MANUFACTURE, reason="Retained material"
    )
    assert repeat.status == OrderStatus.MATERIAL_RECEIVED


# --- slots ----------------------------------------------------------------------------------------


def _orders(count, *, coordinator, product, plant):
    from journeys.models import ProtocolTemplate
    from journeys.services import journey_start
    from tests.factories import PatientFactory

    protocol = ProtocolTemplate.objects.get(version=1)
    result = []
    for _ in range(count):
        journey = journey_start(
            actor=coordinator,
            patient_id=PatientFactory(coordinator=coordinator).id,
            protocol_id=protocol.id,
            leukapheresis_date=timezone.localdate(),
        )
        result.append(services.order_request(actor=coordinator, journey_id=journey.id, product_id=product.id, plant_id=plant.id))
    return result


def test_a_full_week_puts_orders_on_the_waiting_list_and_a_cancellation_promotes_the_first(coordinator, product, plant):
    week = timezone.localdate() + timedelta(days=14)
    first, second, third, fourth = _orders(4, coordinator=coordinator, product=product, plant=plant)
    bookings = [services.slot_book(actor=coordinator, order_id=o.id, week_start=week) for o in (first, second, third, fourth)]
    assert [b.status for b in bookings] == [
        BookingStatus.BOOKED,
        BookingStatus.BOOKED,
        BookingStatus.WAITING,
        BookingStatus.WAITING,
    ]
    third.refresh_from_db()
    assert third.status == OrderStatus.REQUESTED
    services.slot_cancel(actor=coordinator, order_id=first.id, reason="Patient has an infection")
    for o in (first, third, fourth):
        o.refresh_from_db()
    assert (first.status, third.status, fourth.status) == (
        OrderStatus.REQUESTED,
        OrderStatus.SLOT_CONFIRMED,
        OrderStatus.REQUESTED,
    )
    assert third.events.filter(kind="promoted").exists()
    notice = Notification.objects.get(recipient=coordinator, title__startswith="Slot confirmed from the waiting list")
    assert third.journey.patient.mrn in notice.title


def test_cancelling_an_order_frees_its_slot_for_the_waiting_list(coordinator, product, plant):
    week = timezone.localdate() + timedelta(days=7)
    orders = _orders(3, coordinator=coordinator, product=product, plant=plant)
    for o in orders:
        services.slot_book(actor=coordinator, order_id=o.id, week_start=week)
    services.order_move(actor=coordinator, order_id=orders[1].id, to_status=OrderStatus.CANCELLED, reason="Withdrawn")
    orders[2].refresh_from_db()
    assert orders[2].status == OrderStatus.SLOT_CONFIRMED


# --- custody --------------------------------------------------------------------------------------


def test_custody_out_of_order_is_refused(order, nurse):
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    now = timezone.now()
    with pytest.raises(CustodyOutOfOrder, match="cannot come before"):
        services.custody_record(actor=nurse, bag_id=bag.id, kind="picked_up", at=now, handled_by="Courier", location="Ward")
    services.custody_record(
        actor=nurse,
        bag_id=bag.id,
        kind="collected",
        at=now - timedelta(hours=2),
        handled_by="Nina",
        location="Apheresis unit",
        temperature_celsius=Decimal("4"),
    )
    with pytest.raises(CustodyOutOfOrder, match="already recorded"):
        services.custody_record(actor=nurse, bag_id=bag.id, kind="collected", at=now, handled_by="Nina", location="Ward")
    with pytest.raises(CustodyOutOfOrder, match="earlier than"):
        services.custody_record(
            actor=nurse, bag_id=bag.id, kind="packed", at=now - timedelta(hours=3), handled_by="Nina", location="Ward"
        )
    with pytest.raises(CustodyOutOfOrder, match="has no"):
        services.custody_record(actor=nurse, bag_id=bag.id, kind="thawed", at=now, handled_by="Nina", location="Ward")


def test_a_temperature_outside_the_range_quarantines_the_bag_until_a_physician_decides(order, nurse, coordinator, physician):
    _assign_coordinator(order, coordinator)
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    now = timezone.now()
    services.custody_record(
        actor=nurse,
        bag_id=bag.id,
        kind="collected",
        at=now - timedelta(hours=3),
        handled_by="Nina",
        location="Apheresis unit",
        temperature_celsius=Decimal("4"),
    )
    services.custody_record(
        actor=nurse,
        bag_id=bag.id,
        kind="packed",
        at=now - timedelta(hours=2),
        handled_by="Nina",
        location="Apheresis unit",
        temperature_celsius=Decimal("35"),
    )
    bag.refresh_from_db()
    assert bag.status == BagStatus.QUARANTINED
    excursion = Excursion.objects.get(bag=bag)
    assert excursion.kind == ExcursionKind.TEMPERATURE and "35" in excursion.detail
    alert = ClinicalAlert.objects.get(kind=AlertKind.CUSTODY_EXCURSION, key=f"custody-excursion:{excursion.pk}")
    assert alert.patient_id == order.journey.patient_id and "quarantined" in alert.summary
    assert {d.recipient for d in alert.deliveries.filter(channel="in_app")} >= {coordinator, physician}
    with pytest.raises(MaterialQuarantined):
        services.custody_record(actor=nurse, bag_id=bag.id, kind="picked_up", at=now, handled_by="Courier", location="Ward")
    with pytest.raises(NotPermitted):
        services.excursion_decide(actor=coordinator, excursion_id=excursion.id, decision="use", reason="Short")
    services.excursion_decide(
        actor=physician, excursion_id=excursion.id, decision="use", reason="10 minutes, within stability data"
    )
    bag.refresh_from_db()
    assert bag.status == BagStatus.IN_CUSTODY
    services.custody_record(actor=nurse, bag_id=bag.id, kind="picked_up", at=now, handled_by="Courier", location="Ward")


def test_74_hours_from_collection_to_plant_is_an_excursion_for_a_72_hour_product(order, nurse, coordinator):
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    start = timezone.now() - timedelta(hours=80)
    for hours, kind in ((0, "collected"), (1, "packed"), (2, "picked_up"), (74, "received_at_plant")):
        services.custody_record(
            actor=nurse,
            bag_id=bag.id,
            kind=kind,
            at=start + timedelta(hours=hours),
            handled_by="Courier",
            location="Road",
            temperature_celsius=Decimal("5"),
        )
    excursion = Excursion.objects.get(bag=bag)
    assert excursion.kind == ExcursionKind.TRANSIT_TIME and "74.0 h" in excursion.detail
    services.slot_book(actor=coordinator, order_id=order.id, week_start=timezone.localdate())
    with pytest.raises(MaterialQuarantined):
        services.order_move(actor=coordinator, order_id=order.id, to_status="material_received")


def test_72_hours_exactly_is_within_the_maximum(order, nurse):
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    start = timezone.now() - timedelta(hours=80)
    for hours, kind in ((0, "collected"), (1, "packed"), (2, "picked_up"), (72, "received_at_plant")):
        services.custody_record(
            actor=nurse,
            bag_id=bag.id,
            kind=kind,
            at=start + timedelta(hours=hours),
            handled_by="Courier",
            location="Road",
            temperature_celsius=Decimal("5"),
        )
    assert not Excursion.objects.filter(bag=bag).exists()


# --- Day 0 ----------------------------------------------------------------------------------------


def test_expected_release_proposes_day0_and_the_coordinator_confirms_it_with_a_reason(order, coordinator):
    journey = order.journey
    later = journey.day0_planned + timedelta(days=5)
    services.order_set_expected_release(actor=coordinator, order_id=order.id, expected_release=later - timedelta(days=7))
    order.refresh_from_db()
    assert services.proposed_day0(order) == later
    journey.refresh_from_db()
    assert journey.day0_planned != later  # proposed, not applied
    services.order_day0_confirm(actor=coordinator, order_id=order.id, reason="Plant is a week behind")
    journey.refresh_from_db()
    assert journey.day0_planned == later
    event = journey.events.filter(kind="anchor_moved").first()
    assert "Plant is a week behind" in event.reason


def _assign_coordinator(order, coordinator):
    # The clinical alert goes to the patient's own coordinator (and the treating or every physician).
    patient = order.journey.patient
    patient.coordinator = coordinator
    patient.save(update_fields=["coordinator"])


# --- bedside --------------------------------------------------------------------------------------


@pytest.fixture
def product_bag(order, coordinator, nurse):
    walk_to_qc(order, coordinator=coordinator, nurse=nurse)
    services.order_qc_record(actor=coordinator, order_id=order.id, results=PASSING)
    bag = services.bag_register(actor=coordinator, order_id=order.id, kind=BagKind.PRODUCT)
    now = timezone.now()
    for minutes, kind, temp in (
        (50, "filled", "-180"),
        (40, "shipped", "-170"),
        (30, "received_at_clinic", "-165"),
        (20, "stored", "-180"),
    ):
        services.custody_record(
            actor=coordinator,
            bag_id=bag.id,
            kind=kind,
            at=now - timedelta(minutes=minutes),
            handled_by="Cryo courier",
            location="Clinic",
            temperature_celsius=Decimal(temp),
        )
    bag.refresh_from_db()
    return bag


def test_a_matching_bag_is_recorded_and_lets_the_infusion_through(product_bag, order, nurse, physician):
    check = services.bedside_check(
        actor=nurse,
        journey_id=order.journey_id,
        scanned_bag=product_bag.code,
        scanned_wristband=order.journey.patient.mrn,
        second_checker=physician,
    )
    assert check.outcome == "match" and check.bag == product_bag
    services.custody_record(
        actor=nurse, bag_id=product_bag.id, kind="thawed", at=timezone.now(), handled_by="Nina", location="Ward 3"
    )
    services.custody_record(
        actor=nurse, bag_id=product_bag.id, kind="infused", at=timezone.now(), handled_by="Nina", location="Ward 3"
    )
    product_bag.refresh_from_db()
    assert product_bag.status == BagStatus.INFUSED


def test_a_mismatch_is_recorded_raised_and_blocks_the_infusion_until_a_physician_resolves_it(
    product_bag, order, nurse, physician, coordinator
):
    _assign_coordinator(order, coordinator)
    other = services.chain_of_identity_assign(
        actor=coordinator, journey_id=_orders(1, coordinator=coordinator, product=order.product, plant=order.plant)[0].journey_id
    )
    check = services.bedside_check(actor=nurse, journey_id=order.journey_id, scanned_bag=f"{other.identifier}-P1")
    assert check.outcome == "mismatch" and "another patient" in check.detail
    alert = ClinicalAlert.objects.get(kind=AlertKind.COI_MISMATCH)
    assert "MISMATCH" in alert.summary and alert.journey_id == order.journey_id
    assert {d.recipient for d in alert.deliveries.filter(channel="in_app")} >= {coordinator, physician}
    with pytest.raises(BedsideMismatchUnresolved):
        services.bedside_check(actor=nurse, journey_id=order.journey_id, scanned_bag=product_bag.code)
    services.custody_record(
        actor=nurse, bag_id=product_bag.id, kind="thawed", at=timezone.now(), handled_by="Nina", location="Ward 3"
    )
    with pytest.raises(BedsideMismatchUnresolved):
        services.custody_record(
            actor=nurse, bag_id=product_bag.id, kind="infused", at=timezone.now(), handled_by="Nina", location="Ward 3"
        )
    with pytest.raises(NotPermitted):
        services.bedside_mismatch_resolve(actor=nurse, check_id=check.id, resolution="Wrong bag returned")
    services.bedside_mismatch_resolve(actor=physician, check_id=check.id, resolution="Wrong bag returned to pharmacy")
    assert services.bedside_check(actor=nurse, journey_id=order.journey_id, scanned_bag=product_bag.code).outcome == "match"


def test_a_mistyped_bag_id_is_refused_by_its_check_character_and_nothing_is_compared(product_bag, order, nurse):
    code = product_bag.code
    coi, suffix = code.split("-")
    wrong = coi[:-1] + ("A" if coi[-1] != "A" else "B")
    with pytest.raises(ChainOfIdentityInvalid):
        services.bedside_check(actor=nurse, journey_id=order.journey_id, scanned_bag=f"{wrong}-{suffix}")
    with pytest.raises(ChainOfIdentityInvalid):
        services.bedside_check(actor=nurse, journey_id=order.journey_id, scanned_bag="7")
    assert not BedsideCheck.objects.exists()
