"""Makers, products and plants for tests, and a journey walked to the stage the test needs."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from journeys import services as journey_services
from journeys.models import StepStatus
from manufacturing.models import (
    Comparison,
    Criterion,
    Maker,
    Plant,
    PlantCapacity,
    Product,
    ProductKind,
    ReleaseCriterion,
    TargetAntigen,
)
from tests.factories import lymphodepletion_earlier, minimal_record, second_signer

# A specification in the shape of ../shared/domain.md "QC release specification".
SPECIFICATION = [
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
    "endotoxin": "1.2",
    "viability": "88",
    "car_expression": "42",
    "vector_copy_number": "1.8",
}


def make_product(*, maker=None, name="Autoleucel", kind=ProductKind.AUTOLOGOUS, antigen=TargetAntigen.CD19):
    maker = maker or Maker.objects.create(name=f"Maker of {name}")
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
        shelf_life_days=180,
    )
    for criterion, comparison, limit, unit in SPECIFICATION:
        ReleaseCriterion.objects.create(product=product, criterion=criterion, comparison=comparison, limit=limit, unit=unit)
    return product


def make_plant(product, *, name="Plant North", slots=2):
    plant = Plant.objects.create(maker=product.maker, name=name, city="Leiden")
    PlantCapacity.objects.create(plant=plant, product=product, weekly_slots=slots)
    return plant


def finish_collection_stage(journey, *, nurse, physician, coordinator, coi: str = "TEST"):
    """Record stage 1's steps, so that the journey is in re-engineering."""
    for step in journey.steps.select_related("template").filter(template__stage=1).order_by("template__position"):
        role = step.template.responsible_role
        actor = {"nurse": nurse, "physician": physician, "coordinator": coordinator}[role]
        record = minimal_record(step)
        if "coi_id" in record:
            record["coi_id"] = coi
        journey_services.step_complete(actor=actor, step_id=step.id, record=record)
    journey.refresh_from_db()
    return journey


def step_of(journey, code):
    return journey.steps.select_related("template", "stage").get(template__code=code)


def walk_to_qc(order, *, coordinator, nurse, collected_at=None):
    """Book, collect and ship a bag, receive it at the plant, produce: the order ends in QC testing."""
    from manufacturing import services
    from manufacturing.models import BagKind

    services.slot_book(actor=coordinator, order_id=order.id, week_start=timezone.localdate())
    bag = services.bag_register(actor=nurse, order_id=order.id, kind=BagKind.COLLECTION)
    start = collected_at or timezone.now() - timedelta(hours=30)
    for hours, kind in ((0, "collected"), (1, "packed"), (2, "picked_up"), (26, "received_at_plant")):
        services.custody_record(
            actor=nurse,
            bag_id=bag.id,
            kind=kind,
            at=start + timedelta(hours=hours),
            handled_by="Nina Nurse" if hours < 2 else "Courier GmbH",
            location="Ward 3",
            temperature_celsius=Decimal("5.0"),
        )
    for status in ("material_received", "in_production", "qc_testing"):
        services.order_move(actor=coordinator, order_id=order.id, to_status=status, lot_number="LOT-7")
    order.refresh_from_db()
    # The journey's own stage-2 check-list, recorded by hand as the ward does it today.
    for code in ("plant-receipt", "manufacturing-start"):
        step = step_of(order.journey, code)
        if step.status == StepStatus.PENDING:
            journey_services.step_complete(
                actor=coordinator,
                step_id=step.id,
                record=minimal_record(step),
                **second_signer(step),
                **lymphodepletion_earlier(step),
            )
    return bag


def pending(journey, code):
    return step_of(journey, code).status == StepStatus.PENDING
