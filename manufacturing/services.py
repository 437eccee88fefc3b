"""Every write on the product's road. One transaction each; the actor's role is checked first; every
change writes an OrderEvent (or a custody/QC/check row) and a history row in the same transaction.

Locking order, to keep two writers from deadlocking: the journey (through journeys' services), the
order, then the plant capacity row, then bags.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertKind
from alerts.services import alert_raise
from carclinic.errors import InvalidInput, NotPermitted, StaleVersion
from journeys import services as journey_services
from journeys.models import Journey, Milestone, StageStatus, StepStatus
from manufacturing import identity, specification
from manufacturing.errors import (
    BedsideMismatchUnresolved,
    ChainOfIdentityInvalid,
    CustodyOutOfOrder,
    MismatchAlreadyResolved,
    NoStockAvailable,
    OrderTransitionNotAllowed,
    StockUnitChanged,
)
from manufacturing.models import (
    FINAL_EXCURSION_DECISIONS,
    OPEN_ORDER_STATUSES,
    STOCK_CUSTODY_PATH,
    Bag,
    BagKind,
    BagStatus,
    BedsideCheck,
    BedsideCheckOutcome,
    BookingStatus,
    ChainOfIdentity,
    CustodyEvent,
    CustodyKind,
    Excursion,
    ExcursionDecision,
    ExcursionKind,
    ManufacturingOrder,
    OrderEvent,
    OrderStatus,
    PlantCapacity,
    Product,
    ProductKind,
    QcResult,
    SlotBooking,
    StockEvent,
    StockEventKind,
    StockState,
    StockUnit,
    monday_of,
)
from manufacturing.transitions import guard_custody, guard_material_usable, guard_order
from staff.roles import Action, Role, authorize

# Events not judged against the shipping range: the cells are being thawed or are in the patient.
_UNJUDGED_TEMPERATURE = frozenset({CustodyKind.THAWED, CustodyKind.INFUSED})
# Who may put the second signature on an exceptional release.
_COUNTERSIGNING_ROLES = frozenset({Role.PHYSICIAN, Role.COORDINATOR})
# The off-the-shelf protocol's stage-2 step that a reservation from stock records (its code in the protocol file).
UNIT_RESERVED_STEP = "unit-reserved"


# --- small helpers --------------------------------------------------------------------------------


def _require_reason(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("A reason is required.", field_errors={field: ["Give a reason; it goes into the audit trail."]})
    return reason


def _event(
    order: ManufacturingOrder,
    kind: str,
    *,
    actor,
    at: datetime,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    detail: dict | None = None,
) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order, kind=kind, from_state=from_state, to_state=to_state, reason=reason, detail=detail or {}, actor=actor, at=at
    )


def _save_order(order: ManufacturingOrder, actor, *, reason: str = "") -> None:
    order.version += 1
    order._history_user = actor
    order._change_reason = reason or None
    order.save()
    _forecast_to_journey(order.journey_id, actor)


def _forecast_to_journey(journey_id: int, actor) -> None:
    """Tell the journey what its latest order now forecasts (expected release while at the plant, out of
    specification), in the same transaction: journeys' one "Day 0 at risk" rule reads it from there."""
    latest = (
        ManufacturingOrder.objects.filter(journey_id=journey_id)
        .order_by("-created_at", "-id")
        .values("status", "expected_release")
        .first()
    )
    at_plant = latest is not None and latest["status"] in OPEN_ORDER_STATUSES
    journey_services.journey_product_forecast(
        actor=actor,
        journey_id=journey_id,
        expected_release_on=latest["expected_release"] if at_plant else None,
        out_of_specification=latest is not None and latest["status"] == OrderStatus.OUT_OF_SPECIFICATION,
        reason="The manufacturing order's forecast changed",
    )


def _lock_order(order_id: int, expected_version: int | None = None) -> ManufacturingOrder:
    order = (
        ManufacturingOrder.objects.select_for_update(of=("self",))
        .select_related("product__maker", "plant", "journey__patient")
        .get(pk=order_id)
    )
    if expected_version is not None and order.version != expected_version:
        raise StaleVersion("order", expected_version, order.version)
    return order


def _is_maker_client(actor) -> bool:
    roles = getattr(actor, "roles", frozenset())
    return Role.MANUFACTURER in roles and not roles & {Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN, Role.NURSE}


def authorize_order(actor, action: str, order: ManufacturingOrder) -> None:
    """The role's rule, and a maker's client only for its own maker's orders."""
    authorize(actor, action)
    if _is_maker_client(actor) and order.product.maker.api_user_id != actor.pk:
        raise NotPermitted(action, "This order belongs to another maker.")


def _link(journey: Journey) -> str:
    return reverse("patient_detail", args=[journey.patient.public_id])


def _notify(recipients, *, title: str, body: str, link: str, urgent: bool) -> int:
    """Tell people in the app's bell at once. Until the clinical-alert channel lands (safety issue), an urgent
    notice goes out as an escalation-kind notification, a routine one as "coming up"."""
    from notifications.models import Notification, ReminderKind

    now = timezone.now()
    people = {user.pk: user for user in recipients if user is not None}
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=pk,
                kind=ReminderKind.ESCALATION if urgent else ReminderKind.UPCOMING,
                title=title[:200],
                body=body,
                link=link,
                created_at=now,
            )
            for pk in people
        ]
    )
    return len(people)


def _coordinators_of(journey: Journey) -> list:
    from staff.models import User

    if journey.patient.coordinator_id:
        return [journey.patient.coordinator]
    return list(User.objects.filter(groups__name=Role.COORDINATOR, is_active=True))


def _physicians_of(journey: Journey) -> list:
    from staff.models import User

    if journey.patient.physician_id:
        return [journey.patient.physician]
    return list(User.objects.filter(groups__name=Role.PHYSICIAN, is_active=True))


# --- chain of identity ----------------------------------------------------------------------------


def _facility_identifier() -> str:
    # The clinic's ICCBBA facility identification number (5 characters); a placeholder until assigned.
    return getattr(settings, "CLINIC_FACILITY_IDENTIFIER", "W0000")


@transaction.atomic
def chain_of_identity_assign(*, actor, journey_id: int) -> ChainOfIdentity:
    """The journey's chain-of-identity id, assigned once (at journey start or the first collection, whichever
    asks first): facility id, year, serial, ISO 7064 Mod 37-2 check character."""
    existing = ChainOfIdentity.objects.filter(journey_id=journey_id).first()
    if existing is not None:
        return existing
    journey = Journey.objects.select_for_update().get(pk=journey_id)
    existing = ChainOfIdentity.objects.filter(journey_id=journey_id).first()
    if existing is not None:
        return existing
    now = timezone.now()
    chain = ChainOfIdentity(journey=journey, patient_id=journey.patient_id, assigned_at=now, assigned_by=actor)
    chain._history_user = actor
    chain.save()
    # The row's own id is the serial: unique without a second counter to keep in step.
    body = f"{_facility_identifier()}{now:%y}{chain.pk:07d}"
    chain.identifier = body + identity.chain_of_identity_check_character(body)
    chain.save(update_fields=["identifier"])
    return chain


def chain_of_identity_parse(text: str) -> str:
    """A typed or scanned COI, normalised, or ChainOfIdentityInvalid if its check character does not fit."""
    value = identity.normalise_chain_of_identity(text)
    if not identity.chain_of_identity_is_valid(value):
        raise ChainOfIdentityInvalid(
            "This chain-of-identity id is not valid: its check character does not fit. It was mistyped or misread; "
            "nothing was compared.",
            field_errors={"scanned_bag": ["Check character does not fit: scan or type it again."]},
        )
    return value


# --- orders ---------------------------------------------------------------------------------------


@transaction.atomic
def order_request(*, actor, journey_id: int, product_id: int, plant_id: int) -> ManufacturingOrder:
    """Ask a plant to make a journey's product. The journey gets its chain of identity, and its QC-release
    step is from now on recorded by this order's release."""
    authorize(actor, Action.MANAGE_ORDERS)
    if _is_maker_client(actor):
        raise NotPermitted(Action.MANAGE_ORDERS, "The clinic requests orders; a maker's system updates them.")
    journey = Journey.objects.select_for_update().select_related("patient").get(pk=journey_id)
    if not journey.is_open:
        raise OrderTransitionNotAllowed(f"This journey is {journey.get_status_display().lower()}.")
    try:
        capacity = PlantCapacity.objects.select_related("product", "plant").get(plant_id=plant_id, product_id=product_id)
    except PlantCapacity.DoesNotExist:
        raise InvalidInput(
            "This plant does not make this product.", field_errors={"plant": ["Choose a plant that makes the product."]}
        ) from None
    if ManufacturingOrder.objects.filter(journey=journey, status__in=OPEN_ORDER_STATUSES).exists():
        raise OrderTransitionNotAllowed("This journey already has an open manufacturing order.")
    now = timezone.now()
    order = ManufacturingOrder(journey=journey, product=capacity.product, plant=capacity.plant, created_at=now, created_by=actor)
    order._history_user = actor
    try:
        with transaction.atomic():
            order.save()
    except IntegrityError:
        raise OrderTransitionNotAllowed("This journey already has an open manufacturing order.") from None
    chain_of_identity_assign(actor=actor, journey_id=journey.pk)
    journey_services.journey_hand_product_release_to_order(
        actor=actor, journey_id=journey.pk, reason="Manufacturing order requested: QC release follows the order"
    )
    _event(
        order,
        "requested",
        actor=actor,
        at=now,
        to_state=OrderStatus.REQUESTED,
        detail={"product": str(capacity.product), "plant": str(capacity.plant)},
    )
    return order


def _move(
    order: ManufacturingOrder, to_status: str, *, actor, at: datetime, reason: str = "", detail=None, kind: str = "status"
) -> None:
    from_status = order.status
    order.status = to_status
    _save_order(order, actor, reason=reason or OrderStatus(to_status).label)
    _event(order, kind, actor=actor, at=at, from_state=from_status, to_state=to_status, reason=reason, detail=detail)


@transaction.atomic
def order_move(
    *, actor, order_id: int, to_status: str, reason: str = "", expected_version: int | None = None, lot_number: str | None = None
) -> ManufacturingOrder:
    """Move an order one step along the plant's work: material received, in production, QC testing, or cancel.
    Released and OOS come from the QC results only."""
    order = _lock_order(order_id, expected_version)
    authorize_order(actor, Action.MANAGE_ORDERS, order)
    guard_order(order, to_status, by_hand=True)
    if to_status == OrderStatus.CANCELLED:
        reason = _require_reason(reason)
    if to_status == OrderStatus.MATERIAL_RECEIVED and order.product.kind == ProductKind.AUTOLOGOUS:
        received = CustodyEvent.objects.filter(
            bag__order=order, bag__kind=BagKind.COLLECTION, kind=CustodyKind.RECEIVED_AT_PLANT
        ).exists()
        if not received:
            raise OrderTransitionNotAllowed("No collection bag of this order is recorded as received at the plant.")
    if to_status in (OrderStatus.MATERIAL_RECEIVED, OrderStatus.IN_PRODUCTION):
        guard_material_usable(order.bags.all())
    if lot_number is not None:
        order.lot_number = lot_number.strip()
    now = timezone.now()
    _move(order, to_status, actor=actor, at=now, reason=reason)
    if to_status == OrderStatus.CANCELLED:
        _booking_cancel(order, actor=actor, at=now, reason=reason)
    return order


@transaction.atomic
def order_set_expected_release(
    *, actor, order_id: int, expected_release: date, lot_number: str | None = None, expected_version: int | None = None
) -> ManufacturingOrder:
    """The plant's expected release date (and lot). It proposes a planned Day 0; the coordinator confirms it."""
    order = _lock_order(order_id, expected_version)
    authorize_order(actor, Action.MANAGE_ORDERS, order)
    if not order.is_open:
        raise OrderTransitionNotAllowed(f"This order is {order.get_status_display().lower()}.")
    before = order.expected_release
    order.expected_release = expected_release
    if lot_number is not None:
        order.lot_number = lot_number.strip()
    now = timezone.now()
    _save_order(order, actor, reason="Expected release date")
    _event(
        order,
        "expected_release",
        actor=actor,
        at=now,
        detail={"from": before.isoformat() if before else None, "to": expected_release.isoformat()},
    )
    return order


def proposed_day0(order: ManufacturingOrder) -> date | None:
    """Day 0 as the expected release allows it: the release falls where the protocol's QC-release step is due
    (e.g. Day −7), so Day 0 is that many days after it."""
    if order.expected_release is None:
        return None
    offset = (
        order.journey.protocol.step_templates.filter(milestone=Milestone.PRODUCT_RELEASED)
        .values_list("offset_days", flat=True)
        .first()
    )
    return order.expected_release - timedelta(days=offset or 0)


@transaction.atomic
def order_day0_confirm(*, actor, order_id: int, reason: str) -> Journey:
    """The coordinator accepts the Day 0 the expected release proposes; journeys moves it and logs why."""
    reason = _require_reason(reason)
    order = ManufacturingOrder.objects.select_related("journey__protocol").get(pk=order_id)
    new_day0 = proposed_day0(order)
    if new_day0 is None:
        raise InvalidInput("The order has no expected release date yet.")
    journey = journey_services.day0_reschedule(
        actor=actor,
        journey_id=order.journey_id,
        new_day0=new_day0,
        reason=f"Expected release {order.expected_release:%d %b %Y} ({order.plant}): {reason}",
    )
    _event(order, "day0_confirmed", actor=actor, at=timezone.now(), reason=reason, detail={"day0": new_day0.isoformat()})
    return journey


# --- slots ----------------------------------------------------------------------------------------


def _booked_count(capacity_id: int, week_start: date) -> int:
    return SlotBooking.objects.filter(capacity_id=capacity_id, week_start=week_start, status=BookingStatus.BOOKED).count()


@transaction.atomic
def slot_book(*, actor, order_id: int, week_start: date) -> SlotBooking:
    """Book a week at the order's plant. A full week puts the order on that week's waiting list, in order."""
    order = _lock_order(order_id)
    authorize_order(actor, Action.MANAGE_ORDERS, order)
    if order.status not in (OrderStatus.REQUESTED,):
        raise OrderTransitionNotAllowed(f"Only a requested order books a slot; this one is {order.get_status_display().lower()}.")
    week_start = monday_of(week_start)
    if week_start < monday_of(timezone.localdate()):
        raise InvalidInput("That week is over.", field_errors={"week_start": ["Choose this week or a later one."]})
    if order.bookings.exclude(status=BookingStatus.CANCELLED).exists():
        raise OrderTransitionNotAllowed("This order already holds a slot or a place on a waiting list; cancel it first.")
    # The capacity row is the lock that serialises everyone booking this plant and product: two coordinators
    # asking for the last slot at once are served one after the other; the second finds it taken.
    capacity = PlantCapacity.objects.select_for_update().get(plant_id=order.plant_id, product_id=order.product_id)
    now = timezone.now()
    free = _booked_count(capacity.pk, week_start) < capacity.weekly_slots
    booking = SlotBooking(
        order=order,
        capacity=capacity,
        week_start=week_start,
        requested_at=now,
        status=BookingStatus.BOOKED if free else BookingStatus.WAITING,
        booked_at=now if free else None,
    )
    booking._history_user = actor
    booking.save()
    if free:
        _move(
            order,
            OrderStatus.SLOT_CONFIRMED,
            actor=actor,
            at=now,
            kind="slot_booked",
            detail={"week_start": week_start.isoformat()},
        )
    else:
        _event(order, "waiting_list", actor=actor, at=now, detail={"week_start": week_start.isoformat()})
    return booking


def _booking_cancel(order: ManufacturingOrder, *, actor, at: datetime, reason: str) -> SlotBooking | None:
    booking = order.bookings.select_for_update().exclude(status=BookingStatus.CANCELLED).first()
    if booking is None:
        return None
    capacity = PlantCapacity.objects.select_for_update().get(pk=booking.capacity_id)
    held_a_slot = booking.status == BookingStatus.BOOKED
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = at
    booking._history_user = actor
    booking.save()
    _event(order, "slot_cancelled", actor=actor, at=at, reason=reason, detail={"week_start": booking.week_start.isoformat()})
    if held_a_slot:
        _promote_waiting(capacity, booking.week_start, actor=actor, at=at)
    return booking


def _promote_waiting(capacity: PlantCapacity, week_start: date, *, actor, at: datetime) -> SlotBooking | None:
    """Give a freed slot to the first on the week's waiting list, and tell its coordinator."""
    if _booked_count(capacity.pk, week_start) >= capacity.weekly_slots:
        return None
    waiting = (
        SlotBooking.objects.select_for_update()
        .filter(capacity=capacity, week_start=week_start, status=BookingStatus.WAITING)
        .order_by("requested_at", "id")
        .first()
    )
    if waiting is None:
        return None
    waiting.status = BookingStatus.BOOKED
    waiting.booked_at = at
    waiting._history_user = actor
    waiting.save()
    order = (
        ManufacturingOrder.objects.select_for_update(of=("self",))
        .select_related("journey__patient", "plant")
        .get(pk=waiting.order_id)
    )
    _move(
        order,
        OrderStatus.SLOT_CONFIRMED,
        actor=actor,
        at=at,
        kind="promoted",
        reason="A slot freed up",
        detail={"week_start": week_start.isoformat()},
    )
    patient = order.journey.patient
    _notify(
        _coordinators_of(order.journey),
        title=f"Slot confirmed from the waiting list: {patient.mrn}",
        body=f"{order.plant}, week of {week_start:%d %b %Y}: a slot freed up and this order has it now.",
        link=_link(order.journey),
        urgent=False,
    )
    return waiting


@transaction.atomic
def slot_cancel(*, actor, order_id: int, reason: str) -> ManufacturingOrder:
    """Give back an order's slot (or its place on the list); the first waiting order gets a freed slot."""
    reason = _require_reason(reason)
    order = _lock_order(order_id)
    authorize_order(actor, Action.MANAGE_ORDERS, order)
    if order.status not in (OrderStatus.REQUESTED, OrderStatus.SLOT_CONFIRMED):
        raise OrderTransitionNotAllowed("Production has begun; cancel the order instead.")
    now = timezone.now()
    if _booking_cancel(order, actor=actor, at=now, reason=reason) is None:
        raise OrderTransitionNotAllowed("This order holds no slot.")
    if order.status == OrderStatus.SLOT_CONFIRMED:
        order.status = OrderStatus.REQUESTED
        _save_order(order, actor, reason=reason)
    return order


# --- QC release -----------------------------------------------------------------------------------


def _release(order: ManufacturingOrder, *, actor, at: datetime, reason: str) -> None:
    """Released: the journey's QC-release step is recorded through journeys, so lymphodepletion may start."""
    guard_order(order, OrderStatus.RELEASED)
    order.released_at = at
    _move(
        order,
        OrderStatus.RELEASED,
        actor=actor,
        at=at,
        kind="released",
        reason=reason,
        detail={"exceptional": order.exceptional_release},
    )
    step = (
        order.journey.steps.filter(template__milestone=Milestone.PRODUCT_RELEASED, status=StepStatus.PENDING)
        .values_list("pk", flat=True)
        .first()
    )
    if step is not None:
        notes = f"Released by manufacturing order {order.public_id} (lot {order.lot_number})."
        if order.exceptional_release:
            notes = "EXCEPTIONAL RELEASE of an out-of-specification product. " + notes
        journey_services.step_complete(
            actor=actor,
            step_id=step,
            performed_at=at,
            notes=notes,
            record={"lot_number": order.lot_number},
            released_by_order=True,
        )
    shelf = timedelta(days=order.product.shelf_life_days)
    order.bags.filter(kind=BagKind.PRODUCT, expires_on__isnull=True).update(expires_on=timezone.localdate(at) + shelf)


@transaction.atomic
def order_qc_record(
    *, actor, order_id: int, results: dict[str, str], lot_number: str = "", expected_version: int | None = None
) -> ManufacturingOrder:
    """Enter the QC results, one per criterion of the product's release specification. All within: released.
    Any outside: out of specification, no release; the coordinator and the physician are told."""
    order = _lock_order(order_id, expected_version)
    authorize_order(actor, Action.RECORD_QC, order)
    if order.status != OrderStatus.QC_TESTING:
        raise OrderTransitionNotAllowed(
            f"QC results are entered while the order is in QC testing; it is {order.get_status_display().lower()}."
        )
    lot_number = (lot_number or order.lot_number or "").strip()
    if not lot_number:
        raise InvalidInput("A lot number is required.", field_errors={"lot_number": ["The lot on the bags."]})
    criteria = list(order.product.release_criteria.all())
    if not criteria:
        raise InvalidInput("This product has no release specification; a release would check nothing.")
    results = {name: str(value).strip() for name, value in (results or {}).items() if str(value).strip() != ""}
    missing = [c.criterion for c in criteria if c.criterion not in results]
    unknown = sorted(set(results) - {c.criterion for c in criteria})
    if missing or unknown:
        errors = {name: ["A result is required."] for name in missing}
        errors.update({name: ["Not in this product's specification."] for name in unknown})
        raise InvalidInput("Enter a result for every criterion of the specification.", field_errors=errors)
    now = timezone.now()
    rows = [
        QcResult(
            order=order,
            criterion=c.criterion,
            result=results[c.criterion],
            comparison=c.comparison,
            limit=c.limit,
            unit=c.unit,
            entered_by=actor,
            entered_at=now,
            within_specification=specification.qc_result_within_specification(c.comparison, c.limit, results[c.criterion]),
        )
        for c in criteria
    ]
    QcResult.objects.bulk_create(rows)
    order.lot_number = lot_number
    failed = [r for r in rows if not r.within_specification]
    detail = {
        "results": {
            r.criterion: {"result": r.result, "limit": f"{r.comparison} {r.limit}", "within": r.within_specification}
            for r in rows
        }
    }
    if failed:
        _move(
            order,
            OrderStatus.OUT_OF_SPECIFICATION,
            actor=actor,
            at=now,
            kind="qc_out_of_specification",
            reason="; ".join(
                f"{r.get_criterion_display()} {r.result} (limit: {r.get_comparison_display()} {r.limit})" for r in failed
            ),
            detail=detail,
        )
        patient = order.journey.patient
        _notify(
            _coordinators_of(order.journey) + _physicians_of(order.journey),
            title=f"Product out of specification: {patient.mrn}",
            body=f"Lot {lot_number}: "
            + ", ".join(r.get_criterion_display() for r in failed)
            + ". No release; decide on re-manufacture, re-collection or an exceptional release.",
            link=_link(order.journey),
            urgent=True,
        )
    else:
        _event(order, "qc_results", actor=actor, at=now, detail=detail)
        _release(order, actor=actor, at=now, reason="All results within the release specification")
    return order


def countersigner_verify(*, username: str, password: str):
    """The second person of a two-person signature, typed on the same screen: their user name and password,
    checked. A wrong name or password is one message, so it tells no one which names exist."""
    from staff.models import User

    person = User.objects.filter(username=(username or "").strip(), is_active=True).first()
    if person is None or not password or not person.check_password(password):
        raise InvalidInput(
            "The second signature was not accepted.",
            field_errors={"countersigner_password": ["That user name and password do not match an active member of staff."]},
        )
    return person


@transaction.atomic
def order_exceptional_release(
    *,
    actor,
    order_id: int,
    reason: str,
    countersigned_by=None,
    countersigner_username: str = "",
    countersigner_password: str = "",
    expected_version: int | None = None,
) -> ManufacturingOrder:
    """Release an out-of-specification product anyway: a physician's documented decision, signed by a second
    person (given as a user, or by user name and password typed on the physician's screen). The order is
    flagged as an exceptional release wherever it shows."""
    authorize(actor, Action.EXCEPTIONAL_RELEASE)
    reason = _require_reason(reason)
    if countersigned_by is None and countersigner_username:
        countersigned_by = countersigner_verify(username=countersigner_username, password=countersigner_password)
    order = _lock_order(order_id, expected_version)
    if order.status != OrderStatus.OUT_OF_SPECIFICATION:
        raise OrderTransitionNotAllowed("Only an out-of-specification product needs an exceptional release.")
    if countersigned_by is None or countersigned_by.pk == actor.pk:
        raise InvalidInput(
            "A second person must sign.",
            field_errors={"countersigned_by": ["Someone other than you."], "countersigner_username": ["Someone other than you."]},
        )
    if not (getattr(countersigned_by, "roles", frozenset()) & _COUNTERSIGNING_ROLES) or not countersigned_by.is_active:
        raise InvalidInput(
            "The second signature must be a physician's or a coordinator's.",
            field_errors={
                "countersigned_by": ["A physician or a coordinator."],
                "countersigner_username": ["A physician or a coordinator."],
            },
        )
    order.exceptional_release = True
    order.exceptional_release_reason = reason
    order.exceptional_release_by = actor
    order.exceptional_release_countersigned_by = countersigned_by
    _release(order, actor=actor, at=timezone.now(), reason=f"Exceptional release: {reason}")
    return order


@transaction.atomic
def order_repeat(*, actor, order_id: int, how: str, reason: str) -> ManufacturingOrder:
    """After an OOS: re-manufacture from the retained material (the new order starts with the material at the
    plant) or re-collect (a new collection in the same journey, same chain of identity; the new order
    books a slot again). Returns the new order."""
    reason = _require_reason(reason)
    order = _lock_order(order_id)
    authorize_order(actor, Action.MANAGE_ORDERS, order)
    if how not in (OrderStatus.RE_MANUFACTURE, OrderStatus.RE_COLLECTION):
        raise InvalidInput("Choose re-manufacture or re-collection.")
    guard_order(order, how)
    now = timezone.now()
    _move(order, how, actor=actor, at=now, reason=reason)
    _booking_cancel(order, actor=actor, at=now, reason=reason)
    start = OrderStatus.MATERIAL_RECEIVED if how == OrderStatus.RE_MANUFACTURE else OrderStatus.REQUESTED
    repeat = ManufacturingOrder(
        journey=order.journey,
        product=order.product,
        plant=order.plant,
        previous=order,
        status=start,
        created_at=now,
        created_by=actor,
    )
    repeat._history_user = actor
    repeat.save()
    _forecast_to_journey(repeat.journey_id, actor)  # the new order's forecast replaces the failed one's
    _event(
        repeat,
        "requested",
        actor=actor,
        at=now,
        to_state=start,
        reason=reason,
        detail={"repeats": str(order.public_id), "how": how},
    )
    return repeat


# --- bags and custody -----------------------------------------------------------------------------


@transaction.atomic
def bag_register(*, actor, order_id: int, kind: str, chain_on_label: str | None = None) -> Bag:
    """A new bag for an order, labelled with the journey's chain of identity and its own id. With
    `chain_on_label` (the COI read off the bag in hand), the bag is registered only if that id's check
    character fits and it is this journey's: a bag of another patient is never filed under this one."""
    order = _lock_order(order_id)
    authorize_order(actor, Action.RECORD_CUSTODY, order)
    if kind not in BagKind.values:
        raise InvalidInput("Unknown kind of bag.", field_errors={"kind": ["Collection or final product."]})
    chain = chain_of_identity_assign(actor=actor, journey_id=order.journey_id)
    if chain_on_label is not None:
        try:
            scanned = chain_of_identity_parse(_bag_code_parts(chain_on_label)[0])
        except ChainOfIdentityInvalid as error:
            raise ChainOfIdentityInvalid(
                error.message, field_errors={"chain_on_label": ["Check character does not fit: scan or type it again."]}
            ) from None
        if scanned != chain.identifier:
            raise InvalidInput(
                "The bag carries another chain of identity: it is not this patient's. Nothing was registered.",
                field_errors={"chain_on_label": [f"Not this journey's chain of identity ({chain.display})."]},
            )
    number = Bag.objects.filter(chain=chain, kind=kind).count() + 1
    letter = "C" if kind == BagKind.COLLECTION else "P"
    bag = Bag(chain=chain, order=order, kind=kind, code=f"{chain.identifier}-{letter}{number}", created_at=timezone.now())
    if kind == BagKind.PRODUCT and order.released_at:
        bag.expires_on = timezone.localdate(order.released_at) + timedelta(days=order.product.shelf_life_days)
    bag._history_user = actor
    bag.save()
    _event(order, "bag_registered", actor=actor, at=bag.created_at, detail={"bag": bag.code})
    return bag


@transaction.atomic
def custody_record(
    *, actor, bag_id: int, kind: str, at: datetime, handled_by: str, location: str, temperature_celsius: Decimal | None = None
) -> CustodyEvent:
    """Record the bag's next hand-off. Out of order is refused. A temperature outside the product's range, or
    collection-to-plant time over its maximum, is an excursion: recorded, the bag quarantined, the
    coordinator and the physician told."""
    bag = Bag.objects.select_for_update().select_related("order__product__maker", "order__journey__patient").get(pk=bag_id)
    authorize_order(actor, Action.RECORD_CUSTODY, bag.order)
    handled_by, location = (handled_by or "").strip(), (location or "").strip()
    errors = {}
    if not handled_by:
        errors["handled_by"] = ["Who held the bag."]
    if not location:
        errors["location"] = ["Where the hand-off happened."]
    if errors:
        raise InvalidInput("Say who and where.", field_errors=errors)
    now = timezone.now()
    if at > now + timedelta(minutes=5):
        raise InvalidInput("The time is in the future.", field_errors={"at": ["Cannot be in the future."]})
    previous = list(bag.custody_events.order_by("position"))
    position = guard_custody(bag, [e.kind for e in previous], kind, previous[-1].at if previous else None, at)
    if kind == CustodyKind.INFUSED:
        _guard_bedside_passed(bag)
    event = CustodyEvent.objects.create(
        bag=bag,
        kind=kind,
        position=position,
        at=at,
        handled_by=handled_by,
        location=location,
        temperature_celsius=temperature_celsius,
        recorded_by=actor,
        recorded_at=now,
    )
    order = bag.order
    product = order.product
    problems = []
    if temperature_celsius is not None and kind not in _UNJUDGED_TEMPERATURE:
        frozen = bag.kind == BagKind.PRODUCT
        if not product.temperature_within_range(Decimal(str(temperature_celsius)), frozen=frozen):
            allowed = (
                f"≤ {product.frozen_max_celsius} °C"
                if frozen
                else f"{product.shipping_min_celsius} to {product.shipping_max_celsius} °C"
            )
            problems.append(
                (ExcursionKind.TEMPERATURE, f"{temperature_celsius} °C at '{event.get_kind_display()}' (allowed {allowed})")
            )
    if kind == CustodyKind.RECEIVED_AT_PLANT:
        collected = next((e for e in previous if e.kind == CustodyKind.COLLECTED), None)
        if collected is not None:
            hours = (at - collected.at).total_seconds() / 3600
            if hours > product.max_collection_to_plant_hours:
                problems.append(
                    (
                        ExcursionKind.TRANSIT_TIME,
                        f"{hours:.1f} h from collection to plant (maximum {product.max_collection_to_plant_hours} h)",
                    )
                )
    excursions = [
        Excursion.objects.create(bag=bag, event=event, kind=excursion_kind, detail=detail, raised_at=now)
        for excursion_kind, detail in problems
    ]
    if problems:
        bag.status = BagStatus.QUARANTINED
    elif kind == CustodyKind.INFUSED:
        bag.status = BagStatus.INFUSED
    bag.version += 1
    bag._history_user = actor
    bag.save()
    _event(
        order,
        "custody",
        actor=actor,
        at=now,
        detail={
            "bag": bag.code,
            "kind": kind,
            "at": at.isoformat(),
            "handled_by": handled_by,
            "location": location,
            "temperature_celsius": str(temperature_celsius) if temperature_celsius is not None else None,
            "excursions": [d for _, d in problems],
        },
    )
    for excursion in excursions:
        # One alert per excursion, keyed by it: a retried request (or a second worker) meets the key and
        # raises nothing more. The alert goes to the treating physician and the coordinator and escalates.
        alert_raise(
            patient_id=order.journey.patient_id,
            journey_id=order.journey_id,
            kind=AlertKind.CUSTODY_EXCURSION,
            key=f"custody-excursion:{excursion.pk}",
            summary=f"Excursion, material quarantined: bag {bag.code}",
            detail={"bag": bag.code, "excursion": excursion.detail, "custody": event.get_kind_display()},
            escalate_after_minutes=settings.CUSTODY_ALERT_ESCALATE_AFTER_MINUTES,
            raised_by=actor,
        )
    return event


@transaction.atomic
def excursion_decide(*, actor, excursion_id: int, decision: str, reason: str, expected_version: int | None = None) -> Excursion:
    """A physician's decision on quarantined material: use it, keep it in quarantine (more data needed; a
    later decision follows), or discard it. `expected_version` is the bag's, as the physician saw it."""
    authorize(actor, Action.DECIDE_EXCURSION)
    reason = _require_reason(reason)
    if decision not in FINAL_EXCURSION_DECISIONS + (ExcursionDecision.QUARANTINE,):
        raise InvalidInput(
            "Decide: use, keep in quarantine, or discard.", field_errors={"decision": ["Use, quarantine or discard."]}
        )
    excursion = Excursion.objects.select_for_update(of=("self",)).select_related("decided_by").get(pk=excursion_id)
    bag = Bag.objects.select_for_update().select_related("order").get(pk=excursion.bag_id)
    if expected_version is not None and bag.version != expected_version:
        raise StaleVersion("bag", expected_version, bag.version)
    if excursion.decision in FINAL_EXCURSION_DECISIONS:
        raise OrderTransitionNotAllowed(
            f"Already decided by {excursion.decided_by} at {timezone.localtime(excursion.decided_at):%d %b %Y %H:%M}."
        )
    now = timezone.now()
    excursion.decision, excursion.decided_by, excursion.decided_at, excursion.decision_reason = decision, actor, now, reason
    excursion._history_user = actor
    excursion.save()
    # Kept in quarantine counts as undecided for the bag: it moves only when every excursion is used or discarded.
    undecided = bag.excursions.exclude(decision__in=FINAL_EXCURSION_DECISIONS).exists()
    if decision == ExcursionDecision.DISCARD:
        bag.status = BagStatus.DISCARDED
    elif not undecided and bag.status == BagStatus.QUARANTINED:
        bag.status = BagStatus.IN_CUSTODY
    bag.version += 1
    bag._history_user = actor
    bag.save()
    _event(
        bag.order,
        "excursion_decided",
        actor=actor,
        at=now,
        reason=reason,
        detail={"bag": bag.code, "decision": decision, "excursion": excursion.detail},
    )
    return excursion


# --- bedside identity check -----------------------------------------------------------------------


def _guard_bedside_passed(bag: Bag) -> None:
    if BedsideCheck.objects.filter(
        chain_id=bag.chain_id, outcome=BedsideCheckOutcome.MISMATCH, resolved_at__isnull=True
    ).exists():
        raise BedsideMismatchUnresolved("A bedside mismatch is not resolved: no infusion until a physician resolves it.")
    if not BedsideCheck.objects.filter(bag=bag, outcome=BedsideCheckOutcome.MATCH).exists():
        raise BedsideMismatchUnresolved(f"Bag {bag.code} has not passed the bedside identity check.")


def _bag_code_parts(text: str) -> tuple[str, str]:
    """A scanned bag label: the COI, then (after a hyphen) the bag's own number."""
    raw = (text or "").strip().upper().replace(" ", "")
    coi, _, suffix = raw.partition("-")
    return coi, suffix


@transaction.atomic
def bedside_check(*, actor, journey_id: int, scanned_bag: str, scanned_wristband: str = "", second_checker=None) -> BedsideCheck:
    """Compare the bag's chain of identity with the patient's. A mistyped id is refused by its check character
    before anything is compared. A match is recorded (and records the journey's COI-check step when it is
    due); a mismatch is recorded, raised at once to the coordinator and the treating physician, and blocks
    the infusion until a physician resolves it."""
    authorize(actor, Action.BEDSIDE_CHECK)
    journey = Journey.objects.select_related("patient__coordinator", "patient__physician").get(pk=journey_id)
    chain = ChainOfIdentity.objects.select_for_update().filter(journey=journey).first()
    if chain is None:
        raise OrderTransitionNotAllowed("This journey has no chain of identity yet.")
    coi_text, suffix = _bag_code_parts(scanned_bag)
    scanned_coi = chain_of_identity_parse(coi_text)
    wristband = (scanned_wristband or "").strip().upper().replace(" ", "")
    if second_checker is not None and second_checker.pk == actor.pk:
        raise InvalidInput("The second checker must be another person.", field_errors={"second_checker": ["Someone else."]})
    now = timezone.now()
    bag = Bag.objects.filter(code=f"{scanned_coi}-{suffix}").first() if suffix else None
    problems = []
    if scanned_coi != chain.identifier:
        problems.append("the bag's chain of identity is another patient's")
    if suffix and bag is None:
        problems.append("no bag with this id is registered")
    if bag is not None and bag.kind != BagKind.PRODUCT:
        problems.append("this is a collection bag, not the product")
    if bag is not None and bag.status in (BagStatus.QUARANTINED, BagStatus.DISCARDED):
        problems.append(f"the bag is {bag.get_status_display().lower()}")
    if wristband and wristband not in (journey.patient.mrn.upper(), chain.identifier):
        problems.append("the wristband is not this patient's")
    unresolved = chain.bedside_checks.filter(outcome=BedsideCheckOutcome.MISMATCH, resolved_at__isnull=True).exists()
    if not problems and unresolved:
        raise BedsideMismatchUnresolved("An earlier mismatch is not resolved: a physician resolves it before the check can pass.")
    outcome = BedsideCheckOutcome.MISMATCH if problems else BedsideCheckOutcome.MATCH
    check = BedsideCheck(
        chain=chain,
        bag=bag if bag is not None and bag.chain_id == chain.pk else None,
        expected=chain.identifier,
        scanned_bag=(scanned_bag or "").strip()[:60],
        scanned_wristband=(scanned_wristband or "").strip()[:60],
        outcome=outcome,
        detail="; ".join(problems)[:300],
        checked_by=actor,
        second_checker=second_checker,
        checked_at=now,
    )
    check._history_user = actor
    check.save()
    order = ManufacturingOrder.objects.filter(journey=journey).order_by("-created_at", "-id").first()
    if order is not None:
        _event(
            order,
            f"bedside_{outcome}",
            actor=actor,
            at=now,
            reason=check.detail,
            detail={"expected": chain.identifier, "scanned_bag": check.scanned_bag},
        )
    if problems:
        # One alert per unresolved episode: the nurse scanning the wrong bag again before a physician has
        # resolved the first mismatch adds a check row, not a second page to the physician. After a
        # resolution, a new mismatch is a new episode and raises again.
        episode = chain.bedside_checks.filter(outcome=BedsideCheckOutcome.MISMATCH, resolved_at__isnull=False).count()
        alert_raise(
            patient_id=journey.patient_id,
            journey_id=journey.id,
            kind=AlertKind.COI_MISMATCH,
            key=f"coi-mismatch:{chain.pk}:{episode}",
            summary=f"Bedside identity MISMATCH: do not infuse (expected {chain.display})",
            detail={"expected": chain.identifier, "scanned_bag": check.scanned_bag, "problems": problems},
            escalate_after_minutes=settings.CUSTODY_ALERT_ESCALATE_AFTER_MINUTES,
            raised_by=actor,
        )
    else:
        _record_coi_step(journey, actor=actor, second_checker=second_checker)
    return check


def _record_coi_step(journey: Journey, *, actor, second_checker) -> None:
    """A passed bedside check is also the journey's COI-check step, when that step is due now."""
    step = (
        journey.steps.select_related("stage", "template")
        .filter(template__code="coi-check", status=StepStatus.PENDING, stage__status=StageStatus.IN_PROGRESS)
        .first()
    )
    if step is None or journey.status != "active":
        return
    names = {f["name"] for f in step.template.record_fields}
    record = {"coi_match": True} if "coi_match" in names else {}
    if "second_checker" in names and second_checker is not None:
        record["second_checker"] = str(second_checker)
    journey_services.step_complete(
        actor=actor, step_id=step.pk, record=record, notes="Bedside scan: bag matches the patient's chain of identity."
    )


@transaction.atomic
def bedside_mismatch_resolve(*, actor, check_id: int, resolution: str) -> BedsideCheck:
    """A physician resolves a mismatch (the wrong bag returned, the right one found): a new check may pass."""
    authorize(actor, Action.DECIDE_EXCURSION)
    resolution = _require_reason(resolution, "resolution")
    check = BedsideCheck.objects.select_for_update(of=("self",)).select_related("resolved_by", "chain").get(pk=check_id)
    if check.outcome != BedsideCheckOutcome.MISMATCH:
        raise OrderTransitionNotAllowed("Only a mismatch is resolved.")
    if check.resolved_at is not None:
        # Two physicians resolving at once: the second is told, not silently written over.
        raise MismatchAlreadyResolved(
            f"{check.resolved_by} resolved this mismatch already, at {timezone.localtime(check.resolved_at):%d %b %Y %H:%M}."
        )
    check.resolved_by, check.resolved_at, check.resolution = actor, timezone.now(), resolution
    check._history_user = actor
    check.save()
    order = ManufacturingOrder.objects.filter(journey_id=check.chain.journey_id).order_by("-created_at", "-id").first()
    if order is not None:
        _event(order, "bedside_mismatch_resolved", actor=actor, at=check.resolved_at, reason=resolution)
    return check


# --- the clinic's stock of off-the-shelf units ------------------------------------------------------


def _stock_event(unit: StockUnit, kind: str, *, actor, at: datetime, from_state: str = "", **fields) -> StockEvent:
    return StockEvent.objects.create(
        unit=unit, kind=kind, from_state=from_state, to_state=unit.state, actor=actor, at=at, recorded_at=timezone.now(), **fields
    )


@transaction.atomic
def stock_unit_receive(
    *,
    actor,
    product_id: int,
    lot_number: str,
    bag_code: str,
    expires_on: date,
    location: str,
    plant_id: int | None = None,
    chain_identifier: str = "",
) -> StockUnit:
    """Put one off-the-shelf unit into the clinic's stock. Only an allogeneic product is kept in stock: an
    autologous one is a patient's own cells and goes to that patient alone."""
    authorize(actor, Action.MANAGE_STOCK)
    product = Product.objects.get(pk=product_id)
    errors = {}
    if product.kind != ProductKind.ALLOGENEIC:
        errors["product"] = ["An autologous product is one patient's own cells: it is not kept in stock."]
    for field, value in (("lot_number", lot_number), ("bag_code", bag_code), ("location", location)):
        if not (value or "").strip():
            errors[field] = ["Required."]
    if expires_on is not None and expires_on <= timezone.localdate():
        errors["expires_on"] = ["This unit has expired already."]
    if StockUnit.objects.filter(bag_code=(bag_code or "").strip()).exists():
        errors["bag_code"] = ["A unit with this bag id is in stock already."]
    if chain_identifier:
        chain_identifier = chain_of_identity_parse(chain_identifier)
    if errors:
        raise InvalidInput("The unit cannot be received into stock.", field_errors=errors)
    now = timezone.now()
    unit = StockUnit.objects.create(
        product=product,
        plant_id=plant_id,
        lot_number=lot_number.strip(),
        bag_code=bag_code.strip(),
        chain_identifier=chain_identifier,
        expires_on=expires_on,
        location=location.strip(),
        received_at=now,
    )
    _stock_event(unit, StockEventKind.RECEIVED, actor=actor, at=now, location=unit.location)
    return unit


def _reservation_step(journey: Journey):
    """The journey's pending "unit reserved" step, if its protocol has one (recorded by the reservation)."""
    return journey.steps.filter(template__code=UNIT_RESERVED_STEP, status=StepStatus.PENDING).values_list("pk", flat=True).first()


@transaction.atomic
def stock_reserve(*, actor, journey_id: int, product_id: int) -> StockUnit:
    """Reserve for the journey the unit of the product that expires first among those still good on the planned
    Day 0, and record the journey's "unit reserved" step. Claimed by a conditional UPDATE: of two coordinators
    reserving the last unit, one gets it and the other NoStockAvailable."""
    authorize(actor, Action.MANAGE_STOCK)
    journey = Journey.objects.select_related("protocol").get(pk=journey_id)
    if journey.protocol.collection:
        raise InvalidInput(
            "This journey's protocol collects the patient's own cells: its product comes from a manufacturing order.",
            field_errors={"journey": ["Not an off-the-shelf protocol."]},
        )
    if not journey.is_open:
        raise OrderTransitionNotAllowed(f"This journey is {journey.get_status_display().lower()}: no unit is reserved for it.")
    held = StockUnit.objects.filter(journey=journey, state__in=(StockState.RESERVED, StockState.ISSUED)).first()
    if held is not None:
        raise StockUnitChanged(f"Unit {held.bag_code} (lot {held.lot_number}) is reserved for this patient already.")
    # Good on the infusion day, not only today: a unit expiring before Day 0 would be thawed past its date.
    good_on = max(timezone.localdate(), journey.day0)
    candidates = list(
        StockUnit.objects.filter(product_id=product_id, state=StockState.AVAILABLE, expires_on__gte=good_on)
        .order_by("expires_on", "id")
        .values_list("pk", flat=True)[:10]
    )
    now = timezone.now()
    for unit_id in candidates:
        # The claim: only a unit still available becomes ours; a coordinator who got there first leaves 0 rows.
        claimed = StockUnit.objects.filter(pk=unit_id, state=StockState.AVAILABLE).update(
            state=StockState.RESERVED, journey=journey, reserved_at=now, reserved_by=actor, version=F("version") + 1
        )
        if claimed == 1:
            break
    else:
        raise NoStockAvailable(
            "No unit of this product is available and good on the planned Day 0: another coordinator may have "
            "reserved the last one. Nothing was reserved."
        )
    unit = StockUnit.objects.select_related("product").get(pk=unit_id)
    _stock_event(unit, StockEventKind.RESERVED, actor=actor, at=now, from_state=StockState.AVAILABLE, journey=journey)
    step_id = _reservation_step(journey)
    if step_id is not None:
        journey_services.step_complete(
            actor=actor,
            step_id=step_id,
            performed_at=now,
            notes=f"Reserved from the clinic's stock ({unit.location}).",
            record={"lot_number": unit.lot_number, "bag_id": unit.bag_code, "expires_on": unit.expires_on.isoformat()},
        )
    return unit


@transaction.atomic
def stock_release_reservation(*, actor, unit_id: int, reason: str, expected_version: int | None = None) -> StockUnit:
    """Give a reserved unit back to stock (the patient's Day 0 moved past its expiry, the journey stopped)."""
    authorize(actor, Action.MANAGE_STOCK)
    reason = _require_reason(reason)
    unit = StockUnit.objects.get(pk=unit_id)
    version = unit.version if expected_version is None else expected_version
    changed = StockUnit.objects.filter(pk=unit_id, state=StockState.RESERVED, version=version).update(
        state=StockState.AVAILABLE, journey=None, reserved_at=None, reserved_by=None, version=F("version") + 1
    )
    if changed != 1:
        raise StockUnitChanged("Someone changed this unit first (issued, released or reserved again): reload it.")
    journey = unit.journey
    unit.refresh_from_db()
    _stock_event(
        unit,
        StockEventKind.RESERVATION_RELEASED,
        actor=actor,
        at=timezone.now(),
        from_state=StockState.RESERVED,
        journey=journey,
        reason=reason,
    )
    return unit


@transaction.atomic
def stock_custody_record(
    *, actor, unit_id: int, kind: str, at: datetime, handled_by: str, location: str, temperature_celsius: Decimal | None = None
) -> StockEvent:
    """The reserved unit's next hand-off from the freezer to the bedside: issued, received on the ward, thawed,
    infused, in that order, each once. The frozen hand-offs are judged against the product's frozen maximum."""
    authorize(actor, Action.RECORD_CUSTODY)
    unit = StockUnit.objects.select_for_update().select_related("product").get(pk=unit_id)
    handled_by, location = (handled_by or "").strip(), (location or "").strip()
    errors = {}
    if not handled_by:
        errors["handled_by"] = ["Who held the unit."]
    if not location:
        errors["location"] = ["Where the hand-off happened."]
    if kind not in STOCK_CUSTODY_PATH:
        errors["kind"] = ["Not a hand-off of a stock unit."]
    if errors:
        raise InvalidInput("Say what, who and where.", field_errors=errors)
    if at > timezone.now() + timedelta(minutes=5):
        raise InvalidInput("The time is in the future.", field_errors={"at": ["Cannot be in the future."]})
    if unit.state not in (StockState.RESERVED, StockState.ISSUED):
        raise CustodyOutOfOrder(f"Unit {unit.bag_code} is {unit.get_state_display().lower()}: only a reserved unit leaves stock.")
    done = list(unit.events.filter(kind__in=STOCK_CUSTODY_PATH).order_by("at", "id"))
    expected = STOCK_CUSTODY_PATH[len(done)]
    if kind != expected:
        raise CustodyOutOfOrder(
            f"“{StockEventKind(kind).label}” cannot be recorded now: “{StockEventKind(expected).label}” comes next."
        )
    if done and at < done[-1].at:
        raise CustodyOutOfOrder("This hand-off is dated before the one recorded before it.")
    within = None
    if temperature_celsius is not None and kind in (StockEventKind.ISSUED, StockEventKind.RECEIVED_ON_WARD):
        within = unit.product.temperature_within_range(temperature_celsius, frozen=True)
    from_state = unit.state
    if kind == StockEventKind.ISSUED:
        unit.state = StockState.ISSUED
    elif kind == StockEventKind.INFUSED:
        unit.state = StockState.USED
    if unit.state != from_state:
        unit.version += 1
        unit.save(update_fields=["state", "version"])
    return _stock_event(
        unit,
        kind,
        actor=actor,
        at=at,
        from_state=from_state,
        journey_id=unit.journey_id,
        handled_by=handled_by,
        location=location,
        temperature_celsius=temperature_celsius,
        within_range=within,
    )
