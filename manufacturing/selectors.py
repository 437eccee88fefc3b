"""Every read the product-road pages (and later the API) share; querysets come with their joins applied."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from journeys.models import Journey, Milestone, StepTemplate
from journeys.selectors import manufacturing_queue
from manufacturing.models import (
    FINAL_EXCURSION_DECISIONS,
    Bag,
    BedsideCheck,
    BedsideCheckOutcome,
    BookingStatus,
    ChainOfIdentity,
    Excursion,
    Maker,
    ManufacturingOrder,
    OrderStatus,
    PlantCapacity,
    Product,
    SlotBooking,
    monday_of,
)

CAPACITY_WEEKS = 12


def orders_with_context() -> QuerySet[ManufacturingOrder]:
    return ManufacturingOrder.objects.select_related(
        "journey__patient",
        "journey__protocol",
        "product__maker",
        "plant",
        "exceptional_release_by",
        "exceptional_release_countersigned_by",
    )


def orders_for_maker(*, maker: Maker) -> QuerySet[ManufacturingOrder]:
    """A maker's system sees its own orders only."""
    return orders_with_context().filter(product__maker=maker)


def latest_order_for_journey(*, journey_id: int) -> ManufacturingOrder | None:
    return (
        orders_with_context()
        .select_related("journey__chain_of_identity")
        .filter(journey_id=journey_id)
        .order_by("-created_at", "-id")
        .first()
    )


def chain_for_journey(*, journey_id: int) -> ChainOfIdentity | None:
    return ChainOfIdentity.objects.filter(journey_id=journey_id).first()


def day0_risk(*, journey_id: int, today: date):
    """Why the journey's Day 0 is at risk on `today` (journeys' one rule, `Journey.day0_risk`), or None."""
    return Journey.objects.with_release_needed_by().get(pk=journey_id).day0_risk(today)


def bags_for_order(*, order_id: int) -> QuerySet[Bag]:
    return (
        Bag.objects.filter(order_id=order_id)
        .select_related("chain__patient", "order__product")
        .prefetch_related("custody_events", "excursions")
    )


def unresolved_mismatches(*, chain_id: int) -> QuerySet[BedsideCheck]:
    return BedsideCheck.objects.filter(chain_id=chain_id, outcome=BedsideCheckOutcome.MISMATCH, resolved_at__isnull=True)


@dataclass
class CapacityCell:
    week_start: date
    slots: int
    booked: int = 0
    waiting: int = 0

    @property
    def free(self) -> int:
        return max(self.slots - self.booked, 0)

    @property
    def full(self) -> bool:
        return self.booked >= self.slots


@dataclass
class CapacityRow:
    capacity: PlantCapacity
    cells: list[CapacityCell] = field(default_factory=list)

    @property
    def utilisation(self) -> int:
        total = sum(c.slots for c in self.cells)
        return round(100 * sum(c.booked for c in self.cells) / total) if total else 0


def capacity_grid(
    *, first_week: date | None = None, weeks: int = CAPACITY_WEEKS, maker_id: int | None = None, product_id: int | None = None
) -> tuple[list[date], list[CapacityRow]]:
    """The next `weeks` weeks × every plant and product: slots, booked, free, waiting. Two queries whatever
    the number of orders: the capacity rows, and one grouped count of the bookings in the window."""
    first = monday_of(first_week or timezone.localdate())
    mondays = [first + timedelta(weeks=i) for i in range(weeks)]
    capacities = PlantCapacity.objects.select_related("plant__maker", "product").order_by(
        "plant__maker__name", "plant__name", "product__name"
    )
    if maker_id:
        capacities = capacities.filter(plant__maker_id=maker_id)
    if product_id:
        capacities = capacities.filter(product_id=product_id)
    capacities = list(capacities)
    counts = (
        SlotBooking.objects.filter(
            capacity__in=[c.pk for c in capacities], week_start__gte=mondays[0], week_start__lte=mondays[-1]
        )
        .exclude(status=BookingStatus.CANCELLED)
        .values("capacity_id", "week_start")
        .annotate(
            booked=Count("id", filter=Q(status=BookingStatus.BOOKED)), waiting=Count("id", filter=Q(status=BookingStatus.WAITING))
        )
    )
    by_key = {(row["capacity_id"], row["week_start"]): row for row in counts} if capacities else {}
    rows = []
    for capacity in capacities:
        cells = []
        for monday in mondays:
            row = by_key.get((capacity.pk, monday), {})
            cells.append(
                CapacityCell(
                    week_start=monday, slots=capacity.weekly_slots, booked=row.get("booked", 0), waiting=row.get("waiting", 0)
                )
            )
        rows.append(CapacityRow(capacity=capacity, cells=cells))
    return mondays, rows


def makers() -> QuerySet[Maker]:
    return Maker.objects.order_by("name")


def products() -> QuerySet[Product]:
    return Product.objects.select_related("maker").order_by("maker__name", "name")


def booking_for_order(*, order_id: int) -> SlotBooking | None:
    return SlotBooking.objects.filter(order_id=order_id).exclude(status=BookingStatus.CANCELLED).first()


def waiting_position(booking: SlotBooking) -> int | None:
    if booking is None or booking.status != BookingStatus.WAITING:
        return None
    return SlotBooking.objects.filter(
        capacity_id=booking.capacity_id,
        week_start=booking.week_start,
        status=BookingStatus.WAITING,
        requested_at__lte=booking.requested_at,
    ).count()


def bag_with_context(*, public_id) -> Bag:
    return Bag.objects.select_related("chain", "order__product__maker", "order__plant", "order__journey__patient").get(
        public_id=public_id
    )


def excursions_to_decide(*, bag_id: int) -> QuerySet[Excursion]:
    """The bag's excursions without a final decision (use or discard): undecided, or kept in quarantine."""
    return (
        Excursion.objects.filter(bag_id=bag_id)
        .exclude(decision__in=FINAL_EXCURSION_DECISIONS)
        .select_related("event", "decided_by")
        .order_by("raised_at", "id")
    )


def mismatches_to_resolve(*, chain_id: int) -> QuerySet[BedsideCheck]:
    return unresolved_mismatches(chain_id=chain_id).select_related("checked_by", "bag").order_by("checked_at", "id")


@dataclass
class QueueRow:
    """One journey of the dashboard's manufacturing queue with its latest order's plant, status and release."""

    journey: object
    maker: str | None
    plant: str | None
    status: str | None
    expected_release: date | None
    exceptional_release: bool
    release_offset_days: int | None
    today: date

    @property
    def status_label(self) -> str:
        return OrderStatus(self.status).label if self.status else "No order yet"

    @property
    def days_to_day0(self) -> int | None:
        return (self.journey.day0_planned - self.today).days if self.journey.day0_planned else None

    @property
    def day0_at_risk(self) -> bool:
        """Journeys' one rule (`Journey.day0_risk`): the release needed by a day that has passed, the plant's
        expected release after that day, or an out-of-specification product; the orders tell the journey."""
        return self.journey.is_day0_at_risk(self.today)


def manufacturing_queue_rows(*, limit: int, today: date | None = None, **filters) -> tuple[list[QueueRow], bool]:
    """The dashboard's manufacturing queue (journeys' own list, same filters and order) with each journey's latest
    order beside it. One query whatever the number of journeys and orders: the order's columns are correlated
    subqueries, computed only for the `limit` rows returned."""
    latest = ManufacturingOrder.objects.filter(journey=OuterRef("pk")).order_by("-created_at", "-id")
    offset = StepTemplate.objects.filter(protocol=OuterRef("protocol_id"), milestone=Milestone.PRODUCT_RELEASED).order_by(
        "position", "id"
    )
    journeys = list(
        manufacturing_queue(**filters)
        .with_release_needed_by()
        .annotate(
            order_maker=Subquery(latest.values("product__maker__name")[:1]),
            order_plant=Subquery(latest.values("plant__name")[:1]),
            order_status=Subquery(latest.values("status")[:1]),
            order_expected_release=Subquery(latest.values("expected_release")[:1]),
            order_exceptional=Subquery(latest.values("exceptional_release")[:1]),
            release_offset=Subquery(offset.values("offset_days")[:1]),
        )[: limit + 1]
    )
    today = today or timezone.localdate()
    rows = [
        QueueRow(
            journey=j,
            maker=j.order_maker,
            plant=j.order_plant,
            status=j.order_status,
            expected_release=j.order_expected_release,
            exceptional_release=bool(j.order_exceptional),
            release_offset_days=j.release_offset,
            today=today,
        )
        for j in journeys[:limit]
    ]
    return rows, len(journeys) > limit
