"""Demo of the product's road: 3 makers, 4 products (one allogeneic, one dual-target), 5 plants, and orders in
every status: a full week with a waiting list, one OOS with a re-collection, one exceptional release, one
excursion; a stock of off-the-shelf units (two expiring within 30 days) and one patient on the off-the-shelf
protocol with a unit reserved. Runs after load_demo (it needs its users); everything goes through the real services. Loads once."""

from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from journeys import services as journey_services
from journeys.models import ProtocolTemplate, StepStatus
from manufacturing import services
from manufacturing.models import (
    BagKind,
    Comparison,
    Criterion,
    Maker,
    OrderStatus,
    Plant,
    PlantCapacity,
    Product,
    ProductKind,
    ReleaseCriterion,
    TargetAntigen,
)
from patients.models import Indication, Sex
from patients.services import consent_record, patient_enrol
from staff.models import User

SPEC = [
    (Criterion.STERILITY, Comparison.MUST_READ, "no growth", ""),
    (Criterion.MYCOPLASMA, Comparison.MUST_READ, "negative", ""),
    (Criterion.ENDOTOXIN, Comparison.BELOW, "5", "EU/mL"),
    (Criterion.VIABILITY, Comparison.AT_LEAST, "70", "%"),
    (Criterion.CAR_EXPRESSION, Comparison.AT_LEAST, "15", "%"),
    (Criterion.VECTOR_COPY_NUMBER, Comparison.AT_MOST, "5", "copies/cell"),
]
PASSING = {
    "sterility": "no growth",
    "mycoplasma": "negative",
    "endotoxin": "0.8",
    "viability": "91",
    "car_expression": "38",
    "vector_copy_number": "1.6",
}
PRODUCTS = [  # maker, product, antigen, kind, plants [(name, city, slots)]
    (
        "Helix Therapeutics",
        "Lupucel",
        TargetAntigen.CD19,
        ProductKind.AUTOLOGOUS,
        [("Helix Leiden", "Leiden", 2), ("Helix Basel", "Basel", 6)],
    ),
    ("Helix Therapeutics", "Duocel", TargetAntigen.CD19_BCMA, ProductKind.AUTOLOGOUS, [("Helix Leiden", "Leiden", 1)]),
    (
        "Nordcell",
        "Nordleucel",
        TargetAntigen.CD19,
        ProductKind.AUTOLOGOUS,
        [("Nordcell Uppsala", "Uppsala", 1), ("Nordcell Aarhus", "Aarhus", 2)],
    ),
    ("Stockwell Bio", "Offshelcel", TargetAntigen.CD19, ProductKind.ALLOGENEIC, [("Stockwell Dublin", "Dublin", 6)]),
]


def _record(step) -> dict:
    values = {"text": "DEMO", "boolean": True, "date": timezone.localdate().isoformat()}
    record = {}
    for spec in step.template.record_fields:
        if spec.get("required"):
            kind = spec["type"]
            record[spec["name"]] = (
                spec["choices"][0][0]
                if kind == "choice"
                else spec.get("min", 0)
                if kind in ("integer", "decimal")
                else values.get(kind, "DEMO")
            )
    return record


class Command(BaseCommand):
    help = __doc__

    @transaction.atomic
    def handle(self, *args, **options):
        if Maker.objects.exists():
            self.stdout.write("Manufacturing demo already loaded.")
            return
        coordinator, nurse, physician = (User.objects.get(username=n) for n in ("coordinator", "nurse", "physician"))
        self.people = {"coordinator": coordinator, "nurse": nurse, "physician": physician}
        products = {}
        for maker_name, name, antigen, kind, plants in PRODUCTS:
            maker, _ = Maker.objects.get_or_create(name=maker_name)
            product = Product.objects.create(
                maker=maker,
                name=name,
                target_antigen=antigen,
                kind=kind,
                target_dose_cells_per_kg=1_000_000,
                shipping_min_celsius=Decimal("2"),
                shipping_max_celsius=Decimal("8"),
                frozen_max_celsius=Decimal("-150"),
                max_collection_to_plant_hours=72,
                shelf_life_days=180 if kind == ProductKind.AUTOLOGOUS else 365,
            )
            for criterion, comparison, limit, unit in SPEC:
                ReleaseCriterion.objects.create(
                    product=product, criterion=criterion, comparison=comparison, limit=limit, unit=unit
                )
            for plant_name, city, slots in plants:
                plant, _ = Plant.objects.get_or_create(maker=maker, name=plant_name, defaults={"city": city})
                PlantCapacity.objects.create(plant=plant, product=product, weekly_slots=slots)
            products[name] = product
        self.protocol = ProtocolTemplate.objects.filter(is_active=True, collection=True).order_by("id").first()
        self.count = 0
        lupucel, leiden = products["Lupucel"], Plant.objects.get(name="Helix Leiden")
        next_week = timezone.localdate() + timedelta(days=7)
        # A full week at Leiden with a waiting list.
        for _ in range(3):
            self._order(lupucel, leiden, book=next_week)
        self._order(products["Duocel"], leiden, book=next_week)
        basel = Plant.objects.get(name="Helix Basel")
        self._order(lupucel, basel, to=OrderStatus.MATERIAL_RECEIVED)
        self._order(lupucel, basel, to=OrderStatus.IN_PRODUCTION, expected_late=True)
        uppsala = Plant.objects.get(name="Nordcell Uppsala")
        self._order(products["Nordleucel"], uppsala, to=OrderStatus.QC_TESTING)
        self._order(products["Nordleucel"], Plant.objects.get(name="Nordcell Aarhus"), to="released")
        oos = self._order(lupucel, basel, to="oos")
        services.order_repeat(
            actor=coordinator,
            order_id=oos.id,
            how=OrderStatus.RE_COLLECTION,
            reason="Viability 41 %: a new collection in the same journey",
        )
        self._order(lupucel, basel, to="oos")  # waiting for the physician's decision
        remake = self._order(products["Duocel"], leiden, to="oos")
        services.order_repeat(
            actor=coordinator,
            order_id=remake.id,
            how=OrderStatus.RE_MANUFACTURE,
            reason="Viability 41 %: retained material at the plant",
        )
        exceptional = self._order(lupucel, basel, to="oos")
        services.order_exceptional_release(
            actor=physician,
            order_id=exceptional.id,
            countersigned_by=coordinator,
            reason="CAR expression 13 % (limit 15 %); re-collection not possible, benefit outweighs",
        )
        cancelled = self._order(products["Nordleucel"], uppsala, book=next_week + timedelta(days=7))
        services.order_move(
            actor=coordinator, order_id=cancelled.id, to_status=OrderStatus.CANCELLED, reason="Patient withdrew consent"
        )
        self._order(lupucel, basel, excursion=True)
        self._order(products["Offshelcel"], Plant.objects.get(name="Stockwell Dublin"), book=next_week)
        units = self._stock(products["Offshelcel"], Plant.objects.get(name="Stockwell Dublin"))
        self.stdout.write(
            f"Manufacturing demo: {Maker.objects.count()} makers, {Product.objects.count()} products, "
            f"{Plant.objects.count()} plants, {self.count} orders, {units} off-the-shelf units in stock."
        )

    def _stock(self, product, plant) -> int:
        """Units of the off-the-shelf product in the clinic's freezer, and one patient with one reserved."""
        p = self.people
        today = timezone.localdate()
        # Days to expiry: two within 30 days (the stock page shows them apart), the rest later.
        for index, days in enumerate((14, 26, 75, 120, 180, 240, 300, 330), start=1):
            services.stock_unit_receive(
                actor=p["coordinator"],
                product_id=product.id,
                plant_id=plant.id,
                lot_number=f"SWB-{today:%y}{(index + 1) // 2:02d}",
                bag_code=f"OTS-{index:04d}",
                expires_on=today + timedelta(days=days),
                location=f"LN2 freezer 1, rack {'ABCD'[index % 4]}, position {index}",
            )
        protocol = ProtocolTemplate.objects.filter(is_active=True, collection=False).order_by("id").first()
        if protocol is None:  # the clinic has no off-the-shelf protocol active: the stock alone
            return 8
        self.count += 1
        patient = patient_enrol(
            actor=p["coordinator"],
            mrn=f"MFG{self.count:04d}",
            given_name="Ines",
            family_name="Okafor",
            date_of_birth=today.replace(year=today.year - 41),
            sex=Sex.FEMALE,
            indication=Indication.SLE,
            coordinator=p["coordinator"],
            nurse=p["nurse"],
            physician=p["physician"],
        )
        self._consent(patient)
        journey = journey_services.journey_start(actor=p["coordinator"], patient_id=patient.id, protocol_id=protocol.id)
        for step in journey.steps.select_related("template").filter(template__stage=1).order_by("template__position"):
            journey_services.step_complete(actor=p[step.template.responsible_role], step_id=step.id, record=_record(step))
        services.stock_reserve(actor=p["coordinator"], journey_id=journey.id, product_id=product.id)
        return 8

    def _consent(self, patient) -> None:
        # The protocol starts no journey without the treatment consent on file (eligibility, issue 13).
        consent_record(
            actor=self.people["coordinator"],
            patient_id=patient.id,
            signed_on=timezone.localdate() - timedelta(days=14),
            document_version="2026-01",
        )

    def _order(self, product, plant, *, book=None, to=None, excursion=False, expected_late=False):
        p = self.people
        self.count += 1
        today = timezone.localdate()
        patient = patient_enrol(
            actor=p["coordinator"],
            mrn=f"MFG{self.count:04d}",
            given_name=["Lina", "Omar", "Greta", "Yusuf", "Alma", "Tomas"][self.count % 6],
            family_name=["Brandt", "Aksoy", "Lindqvist", "Hale", "Moreau", "Ivanova", "Sato"][self.count % 7],
            date_of_birth=today.replace(year=today.year - 30 - self.count),
            sex=Sex.FEMALE,
            indication=Indication.SLE,
            coordinator=p["coordinator"],
            nurse=p["nurse"],
            physician=p["physician"],
        )
        self._consent(patient)
        journey = journey_services.journey_start(
            actor=p["coordinator"], patient_id=patient.id, protocol_id=self.protocol.id, leukapheresis_date=today
        )
        order = services.order_request(actor=p["coordinator"], journey_id=journey.id, product_id=product.id, plant_id=plant.id)
        if book:
            services.slot_book(actor=p["coordinator"], order_id=order.id, week_start=book)
        if not (to or excursion):
            return order
        for step in journey.steps.select_related("template").filter(template__stage=1).order_by("template__position"):
            journey_services.step_complete(actor=p[step.template.responsible_role], step_id=step.id, record=_record(step))
        services.slot_book(actor=p["coordinator"], order_id=order.id, week_start=today)
        bag = services.bag_register(actor=p["nurse"], order_id=order.id, kind=BagKind.COLLECTION)
        start = timezone.now() - timedelta(hours=30)
        for hours, kind in ((0, "collected"), (1, "packed"), (2, "picked_up"), (26, "received_at_plant")):
            temperature = Decimal("14.5") if excursion and kind == "picked_up" else Decimal("5")
            services.custody_record(
                actor=p["nurse"],
                bag_id=bag.id,
                kind=kind,
                at=start + timedelta(hours=hours),
                handled_by="Courier" if hours else "Apheresis nurse",
                location="Clinic → plant",
                temperature_celsius=temperature,
            )
            if excursion and kind == "picked_up":
                return order
        for status in (OrderStatus.MATERIAL_RECEIVED, OrderStatus.IN_PRODUCTION, OrderStatus.QC_TESTING):
            services.order_move(actor=p["coordinator"], order_id=order.id, to_status=status, lot_number=f"LOT-{self.count:03d}")
            if status == to:
                break
        if expected_late:
            services.order_set_expected_release(
                actor=p["coordinator"], order_id=order.id, expected_release=journey.day0_planned + timedelta(days=2)
            )
        if to in ("released", "oos"):
            for code in ("plant-receipt", "manufacturing-start"):
                step = journey.steps.select_related("template").get(template__code=code)
                if step.status == StepStatus.PENDING:
                    journey_services.step_complete(actor=p["coordinator"], step_id=step.id, record=_record(step))
            results = PASSING if to == "released" else {**PASSING, "viability": "41"}
            services.order_qc_record(actor=p["coordinator"], order_id=order.id, results=results)
        return order
