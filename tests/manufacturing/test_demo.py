from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from manufacturing.models import (
    BookingStatus,
    Excursion,
    Maker,
    ManufacturingOrder,
    OrderStatus,
    Plant,
    Product,
    SlotBooking,
    StockState,
    StockUnit,
)


def test_the_demo_has_every_status_a_waiting_list_an_exceptional_release_and_an_excursion(db):
    call_command("load_demo", patients=2)
    call_command("load_manufacturing_demo")
    assert (Maker.objects.count(), Product.objects.count(), Plant.objects.count()) == (3, 4, 5)
    assert set(ManufacturingOrder.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    assert ManufacturingOrder.objects.filter(exceptional_release=True).count() == 1
    assert SlotBooking.objects.filter(status=BookingStatus.WAITING).exists()
    assert Excursion.objects.exists()
    assert Product.objects.filter(kind="allogeneic").exists() and Product.objects.filter(target_antigen="cd19_bcma").exists()
    # The off-the-shelf stock: two units expiring within 30 days, one reserved for a patient on the allogeneic protocol.
    units = StockUnit.objects.all()
    assert units.count() == 8 and all(unit.product.kind == "allogeneic" for unit in units)
    [reserved] = units.filter(state=StockState.RESERVED)
    assert not reserved.journey.protocol.collection
    assert reserved.journey.steps.get(template__code="unit-reserved").status == "done"
    soon = timezone.localdate() + timedelta(days=30)
    assert units.filter(state=StockState.AVAILABLE, expires_on__lte=soon).count() == 1  # the other is the reserved one
    call_command("load_manufacturing_demo")  # loads once
    assert Maker.objects.count() == 3
