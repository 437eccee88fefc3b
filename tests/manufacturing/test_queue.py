"""The dashboard's manufacturing queue with each order's plant, status, expected release and Day 0 at risk:
rendered by this app (journeys may not import it) and swapped into the dashboard; constant query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from journeys import selectors as journey_selectors
from journeys.models import Journey
from manufacturing import selectors, services
from manufacturing.models import ManufacturingOrder, OrderStatus
from tests.web.bulk import build_patients

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_static(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def _orders_for_stage_2(product, plant, *, status=OrderStatus.IN_PRODUCTION, expected_in_days=10):
    now = timezone.now()
    journeys = Journey.objects.filter(current_stage=2, manufacturing_orders__isnull=True)
    ManufacturingOrder.objects.bulk_create(
        [
            ManufacturingOrder(
                journey=j,
                product=product,
                plant=plant,
                status=status,
                created_at=now,
                expected_release=timezone.localdate() + timedelta(days=expected_in_days),
            )
            for j in journeys
        ]
    )


def test_the_dashboard_loads_the_queue_card_from_this_app(client, coordinator, order):
    client.force_login(coordinator)
    body = client.get(reverse("dashboard"), {"stage": 2}).content.decode()
    assert f'hx-get="{reverse("manufacturing:dashboard_queue")}?stage=2"' in body


def test_a_queue_row_shows_plant_status_expected_release_and_day0_at_risk(client, coordinator, order, plant):
    client.force_login(coordinator)
    journey = order.journey
    body = client.get(reverse("manufacturing:dashboard_queue")).content.decode()
    assert plant.name in body and "Requested" in body and "Day 0 at risk" not in body
    # The plant expects to release after the day the planned Day 0 needs the product.
    late = journey.day0_planned + timedelta(days=3)
    services.order_set_expected_release(actor=coordinator, order_id=order.id, expected_release=late)
    rows, more = selectors.manufacturing_queue_rows(limit=25)
    (row,) = [r for r in rows if r.journey.pk == journey.pk]
    assert row.plant == plant.name and row.status == OrderStatus.REQUESTED and row.expected_release == late
    assert row.day0_at_risk and not more
    body = client.get(reverse("manufacturing:dashboard_queue")).content.decode()
    assert "Day 0 at risk" in body and late.strftime("%d %b") in body
    # The dashboard's own "Day 0 at risk" list says the same, with why: one rule, read from the journey.
    assert [j.pk for j in journey_selectors.dashboard_day0_at_risk(today=timezone.localdate())] == [journey.pk]
    panels = client.get(reverse("dashboard")).content.decode()
    assert f"expected {late.strftime('%a %d %b')}, needed by" in panels
    # The journey holds the order's forecast, written in the same transaction as the order.
    order.refresh_from_db()
    order.journey.refresh_from_db()
    assert order.journey.product_expected_release_on == late and not order.journey.product_out_of_specification
    # In time: released by the QC-release step's day (Day −7 in the shipped protocol).
    services.order_set_expected_release(
        actor=coordinator, order_id=order.id, expected_release=journey.day0_planned + timedelta(days=row.release_offset_days)
    )
    (row,) = [r for r in selectors.manufacturing_queue_rows(limit=25)[0] if r.journey.pk == journey.pk]
    assert row.release_offset_days < 0 and not row.day0_at_risk


def test_the_queue_keeps_the_dashboards_filters(client, coordinator, order):
    client.force_login(coordinator)
    url = reverse("manufacturing:dashboard_queue")
    assert order.journey.patient.mrn in client.get(url, {"stage": 2}).content.decode()
    assert "No product is at the plant" in client.get(url, {"stage": 4}).content.decode()


def test_who_may_open_the_queue(client, make_user, order):
    for role, expected in (("viewer", 200), ("nurse", 200), ("manufacturer", 403)):
        client.force_login(make_user(role))
        assert client.get(reverse("manufacturing:dashboard_queue")).status_code == expected, role


def test_the_queue_and_the_dashboard_cost_the_same_queries_for_few_and_many_patients(client, coordinator, product, plant):
    client.force_login(coordinator)
    build_patients(10, prefix="MQS", coordinator=coordinator)
    _orders_for_stage_2(product, plant)
    queue, dashboard = reverse("manufacturing:dashboard_queue"), reverse("dashboard")
    few = (_queries(client, queue), _queries(client, dashboard))
    build_patients(200, prefix="MQL", coordinator=coordinator)
    _orders_for_stage_2(product, plant, status=OrderStatus.QC_TESTING, expected_in_days=60)
    assert Journey.objects.filter(current_stage=2).count() > 25  # more than one dashboard list
    many = (_queries(client, queue), _queries(client, dashboard))
    assert many == few
    rows, more = selectors.manufacturing_queue_rows(limit=25)
    assert more and len(rows) == 25 and all(r.plant == plant.name for r in rows)


def test_the_queue_also_flags_what_the_dashboards_own_rule_flags(order):
    """No expected release from the plant yet, but the day the product was needed by has passed."""
    journey = order.journey

    def row(today):
        return next(r for r in selectors.manufacturing_queue_rows(limit=25, today=today)[0] if r.journey.pk == journey.pk)

    assert row(timezone.localdate()).expected_release is None and not row(timezone.localdate()).day0_at_risk
    assert row(journey.day0_planned).day0_at_risk
