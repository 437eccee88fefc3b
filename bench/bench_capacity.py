"""Server time and query count of the manufacturing pages at 100 and 10,000 orders, side by side: the
capacity page (all makers, one maker) and the dashboard's manufacturing queue card (each journey's plant,
order status, expected release and Day 0 at risk, swapped into the dashboard by HTMX).

Builds a scratch PostgreSQL database (dropped afterwards unless --keep), 3 makers, 4 products and 5 plants,
then journeys (the page tests' bulk builder) each with an order and a booking spread over a year of weeks
(past and coming; a fifth on waiting lists). Times the page through Django's test client (median and best
of N requests, after warm-up). Aim: the large figure within 2x of the small one, the same query count.

    .venv/bin/python bench/bench_capacity.py                 # 100 and 10,000 orders
    .venv/bin/python bench/bench_capacity.py --large 2000    # a quicker run
"""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pages import parse_args, recreate_database  # noqa: E402  (after the path is set)


def main():
    args = parse_args()
    args.database = "carclinic_benchcapacity"
    database_url = recreate_database(args.server, args.database)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carclinic.settings")
    import django

    django.setup()
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(args.server, args.database, drop_only=True)


def build_orders(journeys, capacities, *, first_monday, coordinator):
    from datetime import timedelta

    from django.utils import timezone

    from manufacturing.models import BookingStatus, ManufacturingOrder, OrderStatus, SlotBooking

    now = timezone.now()
    orders, picks = [], []
    for i, journey in enumerate(journeys):
        capacity = capacities[i % len(capacities)]
        picks.append(capacity)
        orders.append(
            ManufacturingOrder(
                journey=journey,
                product=capacity.product,
                plant=capacity.plant,
                status=OrderStatus.SLOT_CONFIRMED,
                created_at=now,
                created_by=coordinator,
            )
        )
    orders = ManufacturingOrder.objects.bulk_create(orders, batch_size=2000)
    bookings = []
    for i, (order, capacity) in enumerate(zip(orders, picks, strict=False)):
        week = first_monday + timedelta(weeks=(i // len(picks) % 52) - 40)
        waiting = i % 5 == 0
        bookings.append(
            SlotBooking(
                order=order,
                capacity=capacity,
                week_start=week,
                requested_at=now,
                status=BookingStatus.WAITING if waiting else BookingStatus.BOOKED,
                booked_at=None if waiting else now,
            )
        )
    SlotBooking.objects.bulk_create(bookings, batch_size=2000)


def run(args):
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from manufacturing.models import ManufacturingOrder, PlantCapacity, monday_of
    from staff.models import User
    from tests.manufacturing.builders import make_plant, make_product
    from tests.web.bulk import build_patients

    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.ALLOWED_HOSTS = ["localhost"]
    call_command("migrate", verbosity=0)
    coordinator = User.objects.create_user("bench-coordinator", password="bench-password-1", first_name="Cora")
    coordinator.groups.add(Group.objects.get(name="coordinator"))
    products = [make_product(name=f"Product {n}") for n in "ABCD"]
    for n, product in enumerate(products + [products[0]]):
        make_plant(product, name=f"Plant {n + 1}", slots=3 + n)
    capacities = list(PlantCapacity.objects.select_related("plant", "product"))
    first_monday = monday_of(timezone.localdate())

    def measure(label):
        pages = {
            "capacity": reverse("manufacturing:capacity"),
            "capacity, one maker": reverse("manufacturing:capacity") + f"?maker={products[0].maker_id}",
            "manufacturing queue": reverse("manufacturing:dashboard_queue"),
            "manufacturing queue, st 2": reverse("manufacturing:dashboard_queue") + "?stage=2",
        }
        results = {}
        for name, url in pages.items():
            client = Client(HTTP_HOST="localhost")
            client.force_login(coordinator)
            for _ in range(3):
                assert client.get(url).status_code == 200
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            with CaptureQueriesContext(connection) as captured:
                client.get(url)
            results[name] = (statistics.median(times), min(times), len(captured))
        print(f"  measured at {label}: {ManufacturingOrder.objects.count()} orders", flush=True)
        return results

    journeys = build_patients(args.small, prefix="S", coordinator=coordinator)
    build_orders(journeys, capacities, first_monday=first_monday, coordinator=coordinator)
    connection.cursor().execute("ANALYZE")
    small = measure(f"{args.small} orders")
    journeys = build_patients(args.large - args.small, prefix="L", coordinator=coordinator)
    build_orders(journeys, capacities, first_monday=first_monday, coordinator=coordinator)
    connection.cursor().execute("ANALYZE")
    large = measure(f"{args.large} orders")

    print(f"\n{'page':26} {f'{args.small:,} orders':>26} {f'{args.large:,} orders':>26} {'ratio median':>13} {'ratio best':>11}")
    for name in small:
        (med_s, best_s, q_s), (med_l, best_l, q_l) = small[name], large[name]
        print(
            f"{name:26} {med_s:7.1f} / {best_s:6.1f} ms {q_s:3d} q {med_l:7.1f} / {best_l:6.1f} ms {q_l:3d} q"
            f" {med_l / med_s:12.2f}x {best_l / best_s:10.2f}x{'' if q_s == q_l else '  (query count differs!)'}"
        )


if __name__ == "__main__":
    main()
