"""Benchmark of the REST API under gunicorn on PostgreSQL, measured side by side with a bare Django view.

    .venv/bin/python bench/bench_api.py [--workers 2] [--duration 10] [--connections 8] [--rounds 2] [--status-only]

BENCH_DB, BENCH_PORT and BENCH_REDIS choose the scratch database, port and Redis db, so that two
checkouts can measure on one machine without trampling each other.

Creates a scratch database (carclinic_benchapi), migrates it, seeds patients with journeys, ANALYZEs, starts
two gunicorns on 127.0.0.1 with the same number of workers: the product with the benchmark's URL conf
(bench.settings: the product's URLs plus two constant views) and a bare Django (bench.settings_bare: one
constant view behind only Django's default middleware, on BENCH_PORT + 1), and runs wrk against:

  1. bare /bench/constant/                 a constant JSON body, Django's default middleware only: the baseline
     and /bench/constant/ on the product   the same body through the product's own middleware
  2. /api/v1/patients/{id}/status/         the call most clients make (key check, throttle, one statement)
     and /api/v1/bench-constant/           a constant body behind the same key check, throttle and middleware
  3. /api/v1/patients/?page_size=50        the list, at 100 and at 10,000 patients

It prints requests/s, p50 and p99 for each, and per round the ratios status / bare and key+throttle / bare
(both sides of a ratio measured seconds apart in the same round: on a shared machine compare within a
round, not across runs). The database is dropped at the end. Loopback only; every run is bounded by
--duration.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_DB", "carclinic_benchapi")
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
PORT = int(os.environ.get("BENCH_PORT", "8765"))


def env() -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "CACHE_URL": REDIS,
        "CELERY_BROKER_URL": REDIS,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_HTTPS": "0",
        "STATIC_MANIFEST": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
    }


def psql(sql: str) -> None:
    subprocess.run(["psql", f"{PG}/postgres", "-q", "-c", sql], check=True, capture_output=True)


SEED = r"""
import sys
from datetime import timedelta
import django
django.setup()
from django.contrib.auth.models import Group
from django.utils import timezone
from apiclients.services import api_client_create
from journeys.models import Journey, JourneyEvent, ProtocolTemplate, Stage, Step
from journeys.services import journey_start
from patients.models import Patient
from staff.models import User

total = int(sys.argv[1])
already = Patient.objects.count()
coordinator, _ = User.objects.get_or_create(username="bench-coordinator")
coordinator.groups.add(Group.objects.get(name="coordinator"))
protocol = ProtocolTemplate.objects.get(version=1, collection=True)
if already == 0:
    first = Patient.objects.create(mrn="B0000000", given_name="Bench", family_name="Patient",
                                   date_of_birth="1990-01-01", sex="female", indication="sle")
    journey_start(actor=coordinator, patient_id=first.pk, protocol_id=protocol.pk,
                  leukapheresis_date=timezone.localdate() - timedelta(days=3))
    already = 1
template = Journey.objects.order_by("id").first()
stages, steps = list(template.stages.all()), list(template.steps.all())
number_of = {s.pk: s.number for s in stages}
now = timezone.now()
for start in range(already, total, 1000):
    count = min(1000, total - start)
    patients = Patient.objects.bulk_create([
        Patient(mrn=f"B{start + i:07d}", given_name="Bench", family_name=f"Patient{start + i}",
                date_of_birth="1990-01-01", sex="female", indication="sle") for i in range(count)])
    journeys = Journey.objects.bulk_create([
        Journey(patient=p, protocol=protocol, status=template.status, current_stage=template.current_stage,
                leukapheresis_date=template.leukapheresis_date, day0_planned=template.day0_planned,
                started_at=now, started_by=coordinator) for p in patients])
    new_stages = Stage.objects.bulk_create([
        Stage(journey=j, number=s.number, status=s.status, started_at=s.started_at) for j in journeys for s in stages])
    stage_of = {(s.journey_id, s.number): s for s in new_stages}
    Step.objects.bulk_create([
        Step(journey=j, stage=stage_of[(j.pk, number_of[s.stage_id])], template_id=s.template_id, status=s.status,
             due_on=s.due_on, window_opens_on=s.window_opens_on, window_closes_on=s.window_closes_on,
             overdue_after=s.overdue_after, completed_at=s.completed_at) for j in journeys for s in steps],
        batch_size=5000)
    JourneyEvent.objects.bulk_create([JourneyEvent(journey=j, kind="journey_started", to_state="active", at=now)
                                      for j in journeys])
if len(sys.argv) > 2:
    _, key = api_client_create(name="bench", role="viewer", throttle_rate="100000000/min", sees_all_patients=True)
    print(key)
print(Patient.objects.order_by("id").first().public_id)
"""


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env(), check=True, capture_output=True)


def analyze() -> None:
    manage("shell", "-c", "from django.db import connection; connection.cursor().execute('ANALYZE')")


def seed(total: int, make_key: bool) -> list[str]:
    args = [sys.executable, "-c", SEED, str(total)] + (["key"] if make_key else [])
    out = subprocess.run(args, cwd=ROOT, env=env(), check=True, capture_output=True, text=True).stdout
    return out.split()


def start_server(workers: int, *, settings: str = "bench.settings", port: int = PORT) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    server = subprocess.Popen(
        [
            gunicorn,
            "carclinic.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**env(), "DJANGO_SETTINGS_MODULE": settings},
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/constant/", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not come up")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def wrk(path: str, key: str | None, duration: int, connections: int, port: int = PORT) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    if key:
        command[1:1] = ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": int(non2xx.group(1)) if non2xx else 0}


def line(label: str, result: dict) -> str:
    errors = f"  NON-2xx: {result['errors']}" if result["errors"] else ""
    return f"  {label:<44} {result['rps']:>9.0f} req/s   p50 {result['p50']:>7.2f} ms   p99 {result['p99']:>7.2f} ms{errors}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--big", type=int, default=10_000, help="patients for the large list measurement")
    parser.add_argument("--status-only", action="store_true", help="only the bare view and the status call")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of bare, status and constant-behind-key")
    options = parser.parse_args()

    psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(f"CREATE DATABASE {DB_NAME}")
    server = bare = None
    try:
        manage("migrate", "--noinput")
        key, patient = seed(100, make_key=True)
        # Planner statistics as autovacuum keeps them in a running clinic; without them the freshly seeded
        # tables are planned as if empty (a bitmap scan over every pending step of the clinic).
        analyze()
        server = start_server(options.workers)
        bare = start_server(options.workers, settings="bench.settings_bare", port=PORT + 1)
        status_path = f"/api/v1/patients/{patient}/status/"
        list_path = "/api/v1/patients/?page_size=50"
        for path in (status_path, list_path):  # warm the workers and check the key works
            request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", headers={"Authorization": f"Bearer {key}"})
            assert urllib.request.urlopen(request, timeout=5).status == 200

        print(
            f"gunicorn {options.workers} sync workers, wrk 2 threads x {options.connections} connections, "
            f"{options.duration} s each, PostgreSQL, Redis throttle counter"
        )
        # Alternate bare, status and the constant API body, so a noisy neighbour on the machine hits all
        # alike; each round's ratio compares measurements taken a few seconds apart.
        rounds = []
        for _ in range(options.rounds):
            rounds.append(
                {
                    "bare": wrk("/bench/constant/", None, options.duration, options.connections, PORT + 1),
                    "product": wrk("/bench/constant/", None, options.duration, options.connections),
                    "status": wrk(status_path, key, options.duration, options.connections),
                    "api": wrk("/api/v1/bench-constant/", key, options.duration, options.connections),
                }
            )
        for number, measured in enumerate(rounds, 1):
            print(f"  round {number}:")
            print(line("bare Django view (default middleware)", measured["bare"]))
            print(line("constant JSON, the product's middleware", measured["product"]))
            print(line("GET /api/v1/patients/{id}/status/", measured["status"]))
            print(line("constant body behind key+throttle (no DB)", measured["api"]))
            print(
                f"    ratio status / bare: {measured['status']['rps'] / measured['bare']['rps']:.2f}  (aim >= 0.5)"
                f"   key+throttle / bare: {measured['api']['rps'] / measured['bare']['rps']:.2f}"
                f"   status / product-middleware constant: {measured['status']['rps'] / measured['product']['rps']:.2f}"
            )
        bare.send_signal(signal.SIGTERM)
        bare.wait(timeout=30)
        bare = None
        if options.status_only:
            return
        small = wrk(list_path, key, options.duration, options.connections)
        print(line("GET /api/v1/patients/ (50 of 100)", small))

        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        server = None
        print(f"  seeding {options.big} patients ...", flush=True)
        seed(options.big, make_key=False)
        analyze()
        server = start_server(options.workers)
        big = wrk(list_path, key, options.duration, options.connections)
        print(line(f"GET /api/v1/patients/ (50 of {options.big})", big))
        updated = wrk(list_path + "&updated_since=2030-01-01T00:00:00Z", key, options.duration, options.connections)
        print(line(f"  ... &updated_since (nothing changed, {options.big})", updated))
        overdue = wrk(list_path + "&overdue=true", key, options.duration, options.connections)
        print(line(f"  ... &overdue=true ({options.big})", overdue))
    finally:
        if bare is not None:
            bare.send_signal(signal.SIGTERM)
            bare.wait(timeout=30)
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        psql(f"DROP DATABASE IF EXISTS {DB_NAME}")


if __name__ == "__main__":
    main()
