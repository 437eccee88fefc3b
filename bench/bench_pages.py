"""Server time and query count of the main pages at a small and a large clinic, side by side.

Builds a scratch PostgreSQL database (dropped afterwards unless --keep), loads patients with the bulk
builder the page tests use, and times each page through Django's test client (median of N requests,
after warm-up). The aim: the large figure within 2x of the small one, and the same query count.

    .venv/bin/python bench/bench_pages.py                  # 100 and 10,000 patients
    .venv/bin/python bench/bench_pages.py --large 2000     # a quicker run
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=15, help="timed requests per page (median reported)")
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL to create the scratch database from",
    )
    parser.add_argument("--database", default="carclinic_benchweb")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    return parser.parse_args()


def recreate_database(server_url: str, name: str, *, drop_only: bool = False) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlparse(server_url)
    return urlunparse(parts._replace(path=f"/{name}"))


def main():
    args = parse_args()
    database_url = recreate_database(args.server, args.database)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_DEBUG", "1")  # plain static storage; DEBUG does not change the queries run
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


def run(args):
    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from journeys.models import Journey, Step
    from staff.models import User
    from tests.web.bulk import build_patients

    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.ALLOWED_HOSTS = ["localhost"]
    call_command("migrate", verbosity=0)
    coordinator = User.objects.create_user("bench-coordinator", password="bench-password-1", first_name="Cora")
    coordinator.groups.add(Group.objects.get(name="coordinator"))
    nurse = User.objects.create_user("bench-nurse", password="bench-password-1", first_name="Nina")
    nurse.groups.add(Group.objects.get(name="nurse"))
    # The added patients belong to another nurse's caseload: a nurse's list should depend on her own
    # patients, not on the size of the clinic.
    other_nurse = User.objects.create_user("bench-nurse-2", password="bench-password-1", first_name="Olga")
    other_nurse.groups.add(Group.objects.get(name="nurse"))

    def measure(label: str) -> dict:
        journey = Journey.objects.filter(current_stage=4).select_related("patient").order_by("id").first()
        pages = {
            "dashboard": (coordinator, reverse("dashboard")),
            "dashboard, filtered + search": (coordinator, reverse("dashboard") + "?q=Becker&stage=2&indication=sle"),
            "dashboard poll (HTMX)": (coordinator, reverse("dashboard_panels")),
            "patient page": (coordinator, reverse("patient_detail", args=[journey.patient.public_id])),
            "stage list (stage 4)": (coordinator, reverse("stage_list", args=[4])),
            "nurse: my steps today": (nurse, reverse("my_steps")),
            "calendar (week)": (coordinator, reverse("planning:calendar")),
            "calendar (month)": (coordinator, reverse("planning:calendar") + "?view=month"),
            "record-status grid": (coordinator, reverse("planning:grid")),
            "record-status grid, stage 3": (coordinator, reverse("planning:grid") + "?steps=3&stage=3"),
        }
        results = {}
        for name, (user, url) in pages.items():
            client = Client(HTTP_HOST="localhost")
            client.force_login(user)
            for _ in range(3):
                assert client.get(url).status_code == 200, (name, url)
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            with CaptureQueriesContext(connection) as captured:
                client.get(url)
            results[name] = (statistics.median(times), min(times), len(captured))
        print(f"  measured at {label}: {Journey.objects.count()} journeys, {Step.objects.count()} steps", flush=True)
        return results

    started = time.perf_counter()
    build_patients(args.small, prefix="S", coordinator=coordinator, nurse=nurse)
    connection.cursor().execute("ANALYZE")
    print(f"built {args.small} patients in {time.perf_counter() - started:.1f} s", flush=True)
    small = measure(f"{args.small} patients")

    started = time.perf_counter()
    build_patients(args.large - args.small, prefix="L", coordinator=coordinator, nurse=other_nurse)
    connection.cursor().execute("ANALYZE")
    print(f"built {args.large - args.small} more patients in {time.perf_counter() - started:.1f} s", flush=True)
    large = measure(f"{args.large} patients")

    head_small, head_large = f"{args.small:,} patients", f"{args.large:,} patients"
    print()
    print(
        f"server time per request through the Django test client on PostgreSQL: median and best of {args.requests}"
        " (the best is the least disturbed by other work on a shared machine), and queries per request"
    )
    print(f"{'page':30} {head_small:>26} {head_large:>26} {'ratio median':>13} {'ratio best':>11}")
    worst_median = worst_best = 0.0
    for name in small:
        (med_s, best_s, q_s), (med_l, best_l, q_l) = small[name], large[name]
        ratio_median, ratio_best = med_l / med_s, best_l / best_s
        worst_median, worst_best = max(worst_median, ratio_median), max(worst_best, ratio_best)
        print(
            f"{name:30} {med_s:7.1f} / {best_s:6.1f} ms {q_s:3d} q {med_l:7.1f} / {best_l:6.1f} ms {q_l:3d} q"
            f" {ratio_median:12.2f}x {ratio_best:10.2f}x{'' if q_s == q_l else '  (query count differs!)'}"
        )
    print(f"\nworst ratio: {worst_median:.2f}x by median, {worst_best:.2f}x by best (aim: <= 2x)")


if __name__ == "__main__":
    main()
