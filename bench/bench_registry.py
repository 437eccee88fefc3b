"""The metrics page and a full registry export at a small and a large clinic, side by side.

Builds a scratch PostgreSQL database (dropped afterwards unless --keep), loads patients with the bulk
builder the page benchmark uses, dated two years back so that most are infused and in follow-up, then
gives them what the metrics and the export read: actual Day 0, monitoring grades, follow-up values and a
released manufacturing order each. Prints the metrics page's server time and queries with a fresh snapshot
(what a user waits for), the snapshot's computation (the background cost, every 15 minutes), and the export's time and
peak Python memory (tracemalloc, in a second pass so that tracing does not slow the timed one; with
DEBUG off, so that Django's log of every query's SQL is not counted as the export's memory).
The aims: the page within 2x, the export's memory flat.

    .venv/bin/python bench/bench_registry.py                  # 100 and 10,000 patients
    .venv/bin/python bench/bench_registry.py --large 2000     # a quicker run
"""

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pages import recreate_database  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=5, help="timed requests of the page (median reported)")
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL to create the scratch database from",
    )
    parser.add_argument("--database", default="carclinic_benchregistry")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    return parser.parse_args()


def main():
    args = parse_args()
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


FOLLOW_UP_RECORD = {
    "cd19_b_cells": 42.5,
    "igg": 7.1,
    "creatinine": 71,
    "egfr": 96,
    "disease_activity": 2,
    "remission": "doris",
    "infection_since_last_visit": "none",
    "new_malignancy": "none",
}


def enrich(journeys, product, plant):
    """What the bulk builder leaves out: actual Day 0 once the infusion is done, grades, follow-up values and a
    released order per journey. Set-based updates, so the large clinic is built in seconds."""
    from datetime import timedelta

    from django.db.models import F

    from journeys.models import Journey, Step, StepStatus
    from manufacturing.models import ManufacturingOrder, OrderEvent, OrderStatus

    ids = [journey.id for journey in journeys]
    infused = Step.objects.filter(journey_id__in=ids, template__code="infusion", status=StepStatus.DONE).values("journey_id")
    Journey.objects.filter(id__in=infused).update(day0_actual=F("day0_planned"))
    done = Step.objects.filter(journey_id__in=ids, status=StepStatus.DONE)
    done.filter(template__code__startswith="monitoring-day").update(record={"crs_grade": "1", "icans_grade": "0"})
    done.filter(template__stage=5).update(record=FOLLOW_UP_RECORD)
    orders = ManufacturingOrder.objects.bulk_create(
        [
            ManufacturingOrder(
                journey=journey,
                product=product,
                plant=plant,
                status=OrderStatus.RELEASED,
                released_at=journey.started_at + timedelta(days=14 + journey.id % 7),
                created_at=journey.started_at,
            )
            for journey in journeys
        ],
        batch_size=2000,
    )
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order, kind="status", to_state=OrderStatus.MATERIAL_RECEIVED, at=order.created_at + timedelta(days=2)
            )
            for order in orders
        ],
        batch_size=2000,
    )


def run(args):
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from journeys.models import Journey, Step
    from registry import exports, services
    from registry.models import MetricsSnapshot
    from staff.models import User
    from tests.manufacturing.builders import make_plant, make_product
    from tests.web.bulk import build_patients

    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.ALLOWED_HOSTS = ["localhost"]
    call_command("migrate", verbosity=0)
    coordinator = User.objects.create_user("bench-coordinator", password="bench-password-1", first_name="Cora")
    coordinator.groups.add(Group.objects.get(name="coordinator"))
    product = make_product()
    plant = make_plant(product)
    two_years_back = timezone.localdate() - timedelta(days=730)

    def build(count: int, prefix: str):
        started = time.perf_counter()
        journeys = build_patients(count, prefix=prefix, today=two_years_back, coordinator=coordinator)
        enrich(journeys, product, plant)
        connection.cursor().execute("ANALYZE")
        print(f"built {count} patients in {time.perf_counter() - started:.1f} s", flush=True)

    def export(fmt: str) -> tuple[int, float]:
        lines = 0
        for _ in exports.registry_lines(fmt=fmt, patients=exports.registry_patients(), today=timezone.localdate()):
            lines += 1
        return lines

    def measure(label: str) -> dict:
        client = Client(HTTP_HOST="localhost")
        client.force_login(coordinator)
        url = "/registry/metrics/"
        # The background cost: the scheduled refresh of the default range (what the page cost before snapshots).
        computing = []
        for _ in range(args.requests):
            started = time.perf_counter()
            services.metrics_snapshot_refresh(date_from=None, date_to=None)
            computing.append((time.perf_counter() - started) * 1000)
        # The query log is full after the build (CaptureQueriesContext would count 0); a request empties it, a service call does not.
        reset_queries()
        with CaptureQueriesContext(connection) as computed:
            stored_at = services.metrics_snapshot_refresh(date_from=None, date_to=None).computed_at
        # The user's experience: the page reading the fresh snapshot just stored.
        assert client.get(url).status_code == 200
        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        # The page served the stored snapshot: nothing recomputed it while it was timed.
        assert MetricsSnapshot.objects.get().computed_at == stored_at
        results = {
            "metrics page, fresh snapshot": (statistics.median(times), len(captured), None),
            "snapshot computation": (statistics.median(computing), len(computed), None),
        }
        # DEBUG keeps every query's SQL in connection.queries: memory of Django's debugging, not of the export.
        settings.DEBUG = False
        reset_queries()
        for fmt in ("csv", "ndjson"):
            started = time.perf_counter()
            lines = export(fmt)
            seconds = time.perf_counter() - started
            tracemalloc.start()
            export(fmt)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            results[f"registry export {fmt} ({lines} lines)"] = (seconds * 1000, None, peak / 1024 / 1024)
        settings.DEBUG = True
        print(f"  measured at {label}: {Journey.objects.count()} journeys, {Step.objects.count()} steps", flush=True)
        return results

    build(args.small, "S")
    small = measure(f"{args.small} patients")
    build(args.large - args.small, "L")
    large = measure(f"{args.large} patients")

    print()
    print(f"{'':38} {f'{args.small:,} patients':>24} {f'{args.large:,} patients':>24} {'ratio':>8}")
    for (name, (ms_s, q_s, mem_s)), (_, (ms_l, q_l, mem_l)) in zip(small.items(), large.items(), strict=True):
        if q_s is not None:
            print(f"{name + ' (median)':38} {ms_s:14.1f} ms {q_s:3d} q {ms_l:14.1f} ms {q_l:3d} q {ms_l / ms_s:7.2f}x")
        else:
            kind = name.split(" (")[0]
            print(f"{kind + ' time':38} {ms_s:17.1f} ms {ms_l:21.1f} ms {ms_l / ms_s:7.2f}x")
            print(f"{kind + ' peak memory (tracemalloc)':38} {mem_s:17.2f} MB {mem_l:21.2f} MB {mem_l / mem_s:7.2f}x")
    print(f"\nlines: {', '.join(f'{n} -> {m}' for n, m in zip(small, large, strict=True) if 'export' in n)}")


if __name__ == "__main__":
    main()
