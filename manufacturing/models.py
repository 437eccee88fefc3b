"""The product's road: makers, their products and plants, each journey's manufacturing order, its slot,
its QC release, the chain of identity and every bag's custody from the patient's vein back to it.

Journeys knows nothing of this app; this app points at journeys and patients and drives the journey
through journeys' services (the QC-release step, Day 0).
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from journeys.models import Journey
from manufacturing import specification
from patients.models import Patient


class TargetAntigen(models.TextChoices):
    CD19 = "cd19", "CD19"
    BCMA = "bcma", "BCMA"
    CD19_BCMA = "cd19_bcma", "CD19 and BCMA (dual target)"


class ProductKind(models.TextChoices):
    AUTOLOGOUS = "autologous", "Autologous (the patient's own cells)"
    ALLOGENEIC = "allogeneic", "Allogeneic (off the shelf)"


class Maker(models.Model):
    name = models.CharField(max_length=120, unique=True)
    # The API client that speaks for this maker (role "manufacturer"): it sees only this maker's orders.
    api_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="maker"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A CAR-T product as its maker defines it. Every threshold the clinic applies to it is here, as data."""

    maker = models.ForeignKey(Maker, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=120)
    target_antigen = models.CharField(max_length=16, choices=TargetAntigen.choices)
    kind = models.CharField(max_length=16, choices=ProductKind.choices, default=ProductKind.AUTOLOGOUS)
    target_dose_cells_per_kg = models.PositiveBigIntegerField(help_text="CAR-T cells per kg body weight, e.g. 1000000.")
    shipping_min_celsius = models.DecimalField(max_digits=5, decimal_places=1)
    shipping_max_celsius = models.DecimalField(max_digits=5, decimal_places=1)
    # The frozen final product travels and is stored at or below this (e.g. vapour-phase nitrogen).
    frozen_max_celsius = models.DecimalField(max_digits=5, decimal_places=1, default=-120)
    max_collection_to_plant_hours = models.PositiveIntegerField(
        help_text="Fresh apheresis material must reach the plant within this many hours of collection."
    )
    shelf_life_days = models.PositiveIntegerField(default=365, help_text="From release to expiry of the final product.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["maker__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["maker", "name"], name="product_name_unique_per_maker"),
            models.CheckConstraint(
                condition=Q(shipping_min_celsius__lt=models.F("shipping_max_celsius")), name="product_shipping_range_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.maker})"

    def temperature_within_range(self, celsius, *, frozen: bool = False) -> bool:
        """Fresh material within the shipping range; frozen product at or below its maximum."""
        if frozen:
            return celsius <= self.frozen_max_celsius
        return self.shipping_min_celsius <= celsius <= self.shipping_max_celsius


class Criterion(models.TextChoices):
    STERILITY = "sterility", "Sterility"
    MYCOPLASMA = "mycoplasma", "Mycoplasma"
    ENDOTOXIN = "endotoxin", "Endotoxin"
    VIABILITY = "viability", "Viability"
    CAR_EXPRESSION = "car_expression", "CAR expression"
    VECTOR_COPY_NUMBER = "vector_copy_number", "Vector copy number"


class Comparison(models.TextChoices):
    AT_LEAST = specification.AT_LEAST, "at least"
    AT_MOST = specification.AT_MOST, "at most"
    BELOW = specification.BELOW, "below"
    MUST_READ = specification.MUST_READ, "must read"


class ReleaseCriterion(models.Model):
    """One line of a product's release specification, e.g. viability at least 70 %."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="release_criteria")
    criterion = models.CharField(max_length=24, choices=Criterion.choices)
    comparison = models.CharField(max_length=16, choices=Comparison.choices)
    limit = models.CharField(max_length=40, help_text="A number, or the words a qualitative result must read.")
    unit = models.CharField(max_length=24, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["product", "criterion"]
        constraints = [models.UniqueConstraint(fields=["product", "criterion"], name="release_criterion_once_per_product")]

    def __str__(self) -> str:
        return (
            f"{self.get_criterion_display()} {self.get_comparison_display()} {self.limit}{' ' + self.unit if self.unit else ''}"
        )


class Plant(models.Model):
    maker = models.ForeignKey(Maker, on_delete=models.PROTECT, related_name="plants")
    name = models.CharField(max_length=120)
    city = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["maker__name", "name"]
        constraints = [models.UniqueConstraint(fields=["maker", "name"], name="plant_name_unique_per_maker")]

    def __str__(self) -> str:
        return self.name


class PlantCapacity(models.Model):
    """How many orders of one product a plant starts per week. Booking locks this row: it is the queue."""

    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="capacities")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="capacities")
    weekly_slots = models.PositiveIntegerField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["plant", "product"]
        constraints = [models.UniqueConstraint(fields=["plant", "product"], name="plant_capacity_once_per_product")]

    def __str__(self) -> str:
        return f"{self.plant} · {self.product.name}: {self.weekly_slots}/week"


class ChainOfIdentity(models.Model):
    """One id that follows one therapy's cells from the first collection to the infusion (ISBT 128 COI):
    every collection of the journey, re-collections included, carries it."""

    journey = models.OneToOneField(Journey, on_delete=models.PROTECT, related_name="chain_of_identity")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="chains_of_identity")
    # NULL, not "": a chain not yet assigned has no id, and many such rows may coexist under the unique constraint.
    identifier = models.CharField(  # noqa: DJ001
        max_length=20, unique=True, null=True, help_text="Facility id, year, serial and the ISO 7064 Mod 37-2 check character."
    )
    assigned_at = models.DateTimeField()
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "chains of identity"

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        """Grouped for reading aloud at the bedside: facility, year, serial, check character."""
        value = self.identifier or ""
        return f"{value[:5]} {value[5:7]} {value[7:-1]} {value[-1:]}" if len(value) > 8 else value


class OrderStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    SLOT_CONFIRMED = "slot_confirmed", "Slot confirmed"
    MATERIAL_RECEIVED = "material_received", "Material received at the plant"
    IN_PRODUCTION = "in_production", "In production"
    QC_TESTING = "qc_testing", "QC testing"
    RELEASED = "released", "Released"
    OUT_OF_SPECIFICATION = "out_of_specification", "Out of specification"
    RE_MANUFACTURE = "re_manufacture", "Re-manufacture from retained material"
    RE_COLLECTION = "re_collection", "Re-collection"
    CANCELLED = "cancelled", "Cancelled"


# An order in one of these is over; the journey may have a newer one (re-manufacture, re-collection).
CLOSED_ORDER_STATUSES = (OrderStatus.RELEASED, OrderStatus.RE_MANUFACTURE, OrderStatus.RE_COLLECTION, OrderStatus.CANCELLED)
OPEN_ORDER_STATUSES = tuple(s for s in OrderStatus.values if s not in CLOSED_ORDER_STATUSES)


class ManufacturingOrder(models.Model):
    """One attempt at making one patient's product: its plant, week, lot, status and release."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    journey = models.ForeignKey(Journey, on_delete=models.PROTECT, related_name="manufacturing_orders")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    plant = models.ForeignKey(Plant, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=24, choices=OrderStatus.choices, default=OrderStatus.REQUESTED)
    previous = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="next",
        help_text="The order this one repeats (re-manufacture or re-collection).",
    )
    lot_number = models.CharField(max_length=40, blank=True)
    expected_release = models.DateField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    # An OOS product given anyway: a physician's documented decision with a second signature.
    exceptional_release = models.BooleanField(default=False)
    exceptional_release_reason = models.TextField(blank=True)
    exceptional_release_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    exceptional_release_countersigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    version = models.PositiveIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["journey"], condition=Q(status__in=OPEN_ORDER_STATUSES), name="order_one_open_per_journey"
            ),
            models.CheckConstraint(
                condition=Q(exceptional_release=False)
                | (
                    ~Q(exceptional_release_reason="")
                    & Q(exceptional_release_by__isnull=False)
                    & Q(exceptional_release_countersigned_by__isnull=False)
                    & ~Q(exceptional_release_by=models.F("exceptional_release_countersigned_by"))
                ),
                name="order_exceptional_release_signed_twice",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="order_status_idx")]

    def __str__(self) -> str:
        return f"Order {self.public_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES

    @property
    def is_oos(self) -> bool:
        return self.status == OrderStatus.OUT_OF_SPECIFICATION


class OrderEvent(models.Model):
    """One row per change of an order, in the same transaction: its audit trail."""

    order = models.ForeignKey(ManufacturingOrder, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["order", "at"], name="order_event_order_at_idx")]


class BookingStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    WAITING = "waiting", "On the waiting list"
    CANCELLED = "cancelled", "Cancelled"


class SlotBooking(models.Model):
    """An order's claim on a week at a plant: a slot, or a place on that week's waiting list."""

    order = models.ForeignKey(ManufacturingOrder, on_delete=models.CASCADE, related_name="bookings")
    capacity = models.ForeignKey(PlantCapacity, on_delete=models.PROTECT, related_name="bookings")
    week_start = models.DateField(help_text="The Monday of the booked week.")
    status = models.CharField(max_length=16, choices=BookingStatus.choices)
    # The waiting list's order: who asked first. Promotion keeps it; a cancellation leaves it.
    requested_at = models.DateTimeField()
    booked_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["week_start", "requested_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order"], condition=~Q(status="cancelled"), name="booking_one_live_per_order"),
            models.CheckConstraint(condition=Q(week_start__week_day=2), name="booking_week_starts_monday"),
        ]
        indexes = [models.Index(fields=["capacity", "week_start", "status"], name="booking_week_idx")]


class BagKind(models.TextChoices):
    COLLECTION = "collection", "Collection (apheresis) bag"
    PRODUCT = "product", "Final product bag"


class BagStatus(models.TextChoices):
    IN_CUSTODY = "in_custody", "In custody"
    QUARANTINED = "quarantined", "Quarantined (excursion)"
    DISCARDED = "discarded", "Discarded"
    INFUSED = "infused", "Infused"


class Bag(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    chain = models.ForeignKey(ChainOfIdentity, on_delete=models.PROTECT, related_name="bags")
    order = models.ForeignKey(ManufacturingOrder, on_delete=models.PROTECT, related_name="bags")
    kind = models.CharField(max_length=16, choices=BagKind.choices)
    code = models.CharField(max_length=40, unique=True, help_text="The bag id printed on its label.")
    status = models.CharField(max_length=16, choices=BagStatus.choices, default=BagStatus.IN_CUSTODY)
    expires_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.code


class CustodyKind(models.TextChoices):
    COLLECTED = "collected", "Collected"
    PACKED = "packed", "Packed for shipping"
    PICKED_UP = "picked_up", "Picked up by the courier"
    RECEIVED_AT_PLANT = "received_at_plant", "Received at the plant"
    FILLED = "filled", "Filled and frozen at the plant"
    SHIPPED = "shipped", "Shipped to the clinic"
    RECEIVED_AT_CLINIC = "received_at_clinic", "Received at the clinic"
    STORED = "stored", "Stored in the clinic's freezer"
    THAWED = "thawed", "Thawed"
    INFUSED = "infused", "Infused"


# The order every hand-off must follow, per kind of bag; nothing is skipped and nothing goes back.
CUSTODY_PATH = {
    BagKind.COLLECTION: (CustodyKind.COLLECTED, CustodyKind.PACKED, CustodyKind.PICKED_UP, CustodyKind.RECEIVED_AT_PLANT),
    BagKind.PRODUCT: (
        CustodyKind.FILLED,
        CustodyKind.SHIPPED,
        CustodyKind.RECEIVED_AT_CLINIC,
        CustodyKind.STORED,
        CustodyKind.THAWED,
        CustodyKind.INFUSED,
    ),
}


class CustodyEvent(models.Model):
    """One hand-off: who, where, when and at what temperature."""

    bag = models.ForeignKey(Bag, on_delete=models.PROTECT, related_name="custody_events")
    kind = models.CharField(max_length=24, choices=CustodyKind.choices)
    position = models.PositiveSmallIntegerField(help_text="Place of this kind on the bag's path (0 = first).")
    at = models.DateTimeField()
    handled_by = models.CharField(max_length=120, help_text="The person or courier who held the bag.")
    location = models.CharField(max_length=160)
    temperature_celsius = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["bag", "position"]
        constraints = [
            # The database's word on "out of order": one event per place on the path.
            models.UniqueConstraint(fields=["bag", "position"], name="custody_one_event_per_place"),
        ]


class ExcursionKind(models.TextChoices):
    TEMPERATURE = "temperature", "Temperature outside the product's range"
    TRANSIT_TIME = "transit_time", "Collection to plant over the product's maximum"


class ExcursionDecision(models.TextChoices):
    PENDING = "", "Waiting for a physician"
    USE = "use", "Use the material"
    QUARANTINE = "quarantine", "Keep in quarantine (decide later)"
    DISCARD = "discard", "Discard the material"


# The decisions that end the quarantine one way or the other; "keep in quarantine" is followed by one of them.
FINAL_EXCURSION_DECISIONS = (ExcursionDecision.USE, ExcursionDecision.DISCARD)


class Excursion(models.Model):
    """A custody event outside the product's limits: the bag is quarantined until a physician decides."""

    bag = models.ForeignKey(Bag, on_delete=models.PROTECT, related_name="excursions")
    event = models.ForeignKey(CustodyEvent, on_delete=models.PROTECT, related_name="excursions")
    kind = models.CharField(max_length=16, choices=ExcursionKind.choices)
    detail = models.CharField(max_length=300)
    raised_at = models.DateTimeField()
    decision = models.CharField(max_length=16, choices=ExcursionDecision.choices, blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [models.Index(fields=["bag"], condition=Q(decision=""), name="excursion_undecided_idx")]


class QcResult(models.Model):
    """One criterion's result for one order, judged against the limit the product had when it was entered."""

    order = models.ForeignKey(ManufacturingOrder, on_delete=models.CASCADE, related_name="qc_results")
    criterion = models.CharField(max_length=24, choices=Criterion.choices)
    result = models.CharField(max_length=40)
    comparison = models.CharField(max_length=16, choices=Comparison.choices)
    limit = models.CharField(max_length=40)
    unit = models.CharField(max_length=24, blank=True)
    within_specification = models.BooleanField()
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField()

    class Meta:
        ordering = ["order", "criterion"]
        constraints = [models.UniqueConstraint(fields=["order", "criterion"], name="qc_result_once_per_criterion")]


class BedsideCheckOutcome(models.TextChoices):
    MATCH = "match", "Match"
    MISMATCH = "mismatch", "Mismatch"


class BedsideCheck(models.Model):
    """The bag's COI compared with the patient's at the bedside. A mismatch blocks the infusion until a
    physician resolves it."""

    chain = models.ForeignKey(ChainOfIdentity, on_delete=models.PROTECT, related_name="bedside_checks")
    bag = models.ForeignKey(Bag, null=True, blank=True, on_delete=models.PROTECT, related_name="bedside_checks")
    expected = models.CharField(max_length=20)
    scanned_bag = models.CharField(max_length=60)
    scanned_wristband = models.CharField(max_length=60, blank=True)
    outcome = models.CharField(max_length=16, choices=BedsideCheckOutcome.choices)
    detail = models.CharField(max_length=300, blank=True)
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    second_checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField()
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [
            models.Index(
                fields=["chain"], condition=Q(outcome="mismatch", resolved_at__isnull=True), name="bedside_unresolved_idx"
            )
        ]


def monday_of(day):
    return day - timedelta(days=day.weekday())
