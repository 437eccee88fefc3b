"""How fast is the overdue scan next to the bare SQL that does the same flagging, and what does an idle
minute cost as the clinic grows?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/bench_overdue_scan.py
    ... --sizes 100000,1000000          (the default: the idle scan at both sizes, side by side)
    ... --sizes 100000 --detail         (also the first run, statement counts and reminders per second)

For each size it creates its own scratch database (`carclinic_bench`, dropped first and at the end unless
--keep), bulk-loads a clinic, runs a first scan (a sweep: flags and plans everything), sends what is due,
and then times, median of --repeat minutes with nothing new:
  * the bare `UPDATE … FROM journeys_journey` flagging statement over the whole past (what the scan did
    before it knew the previous one), and the same bare statement over the last minute only (the floor),
  * `overdue_scan()` in an idle minute (it reads what changed since the previous scan),
  * `overdue_scan()` as the hourly sweep over everything, with nothing new.
The data: one journey per patient; a year before and after now; 97 % of past steps done, the rest late;
every stage in progress (so no step is blocked, and late is late as in the old rule)."""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="Steps per clinic, comma-separated.")
    parser.add_argument("--steps-per-patient", type=int, default=20)
    parser.add_argument("--detail", action="store_true", help="Also the first run and reminders per second (first size).")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default="carclinic_bench")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    return parser.parse_args()


def scratch_database(base_url: str, name: str) -> str:
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(base_url)
    if "postgresql" not in config["ENGINE"]:
        sys.exit("The benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    admin = psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    user = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    return f"postgres://{user}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{name}"


def drop_database(base_url: str, name: str) -> None:
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(base_url)
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_clinic(*, steps: int, patients: int, now: datetime, rng: random.Random) -> None:
    from django.contrib.auth.models import Group
    from django.db import connection

    from journeys.models import Journey, ProtocolTemplate, Stage, StepTemplate
    from patients.models import Patient
    from staff.models import User

    per_journey = max(1, steps // patients)
    team = {}
    for role, count in (("coordinator", 5), ("nurse", 20), ("physician", 5)):
        users = User.objects.bulk_create([User(username=f"{role}{i}", email=f"{role}{i}@clinic.test") for i in range(count)])
        Group.objects.get(name=role).user_set.add(*users)
        team[role] = users
    protocol = ProtocolTemplate.objects.create(name="Benchmark protocol", version=1)
    roles = ["nurse"] * 6 + ["coordinator"] * 3 + ["physician"]
    StepTemplate.objects.bulk_create(
        [
            StepTemplate(
                protocol=protocol,
                stage=1 + i * 5 // per_journey,
                code=f"s{i}",
                name=f"Step {i}",
                anchor="day0",
                offset_days=i,
                responsible_role=roles[i % len(roles)],
                position=i,
            )
            for i in range(per_journey)
        ]
    )
    created = Patient.objects.bulk_create(
        [
            Patient(
                mrn=f"B{i:08d}",
                given_name="Bench",
                family_name=f"Patient{i}",
                date_of_birth="1980-01-01",
                sex="female",
                indication="sle",
                nurse=rng.choice(team["nurse"]),
                coordinator=rng.choice(team["coordinator"]),
            )
            for i in range(patients)
        ],
        batch_size=5000,
    )
    journeys = Journey.objects.bulk_create(
        [
            Journey(
                patient=patient,
                protocol=protocol,
                leukapheresis_date=now.date() - timedelta(days=400),
                day0_planned=now.date(),
                started_at=now - timedelta(days=400),
                status="active" if rng.random() < 0.95 else rng.choice(["on_hold", "completed", "withdrawn"]),
            )
            for patient in created
        ],
        batch_size=5000,
    )
    # Every stage in progress: no step is blocked, so every past pending step of an active journey is late.
    Stage.objects.bulk_create(
        [Stage(journey=j, number=n, status="in_progress") for j in journeys for n in range(1, 6)], batch_size=10000
    )
    # The steps in one INSERT … SELECT (a million Python objects took most of an hour on a busy machine):
    # each step's overdue time uniformly within a year of now, 97 % of the past ones done, the rest late.
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [rng.random() - 0.5])
        cursor.execute(
            """
            INSERT INTO journeys_step (public_id, status, due_on, window_opens_on, window_closes_on, overdue_after,
                                       completed_at, signature_meaning, notes, skip_reason, version, updated_at,
                                       journey_id, stage_id, template_id, record)
            SELECT gen_random_uuid(), CASE WHEN r.done THEN 'done' ELSE 'pending' END, r.due, r.due, r.due, r.overdue_after,
                   CASE WHEN r.done THEN r.overdue_after END, '', '', '', 1, %(now)s, r.journey_id, st.id, r.template_id, '{}'
              FROM (SELECT j.id AS journey_id, t.id AS template_id, t.stage, x.overdue_after,
                           (x.overdue_after - interval '1 day')::date AS due,
                           x.overdue_after < %(now)s AND random() < 0.97 AS done
                      FROM journeys_journey j CROSS JOIN journeys_steptemplate t
                      CROSS JOIN LATERAL (SELECT %(now)s + (random() * 730 - 365 + 0 * j.id + 0 * t.id) * interval '1 day'
                                                 AS overdue_after) x
                     WHERE t.protocol_id = %(protocol)s) r
              JOIN journeys_stage st ON st.journey_id = r.journey_id AND st.number = r.stage
        """,
            {"now": now, "protocol": protocol.id},
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


BARE_FLAG = """
    UPDATE journeys_step s SET overdue_since = %s
      FROM journeys_journey j
     WHERE j.id = s.journey_id AND j.status = 'active'
       AND s.status = 'pending' AND s.overdue_after <= %s AND s.overdue_since IS NULL
"""


BARE_FLAG_SINCE = BARE_FLAG + "       AND s.overdue_after > %s\n"


SEND_ALL = "UPDATE notifications_reminder SET state = 'sent', sent_at = %s WHERE state = 'pending' AND send_after <= %s"


def reset(cursor) -> None:
    cursor.execute("UPDATE journeys_step SET overdue_since = NULL WHERE overdue_since IS NOT NULL")
    cursor.execute("DELETE FROM notifications_reminder")
    cursor.execute("DELETE FROM notifications_scanrun")


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def median_ms(samples) -> float:
    return statistics.median(samples) * 1000


def measure_idle(*, steps: int, patients: int, repeat: int, now: datetime) -> dict:
    """Load a clinic, sweep it once, send what is due, then time idle minutes. Returns milliseconds."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from journeys.models import Step
    from notifications.services import overdue_scan

    load_clinic(steps=steps, patients=patients, now=now, rng=random.Random(42))
    total = Step.objects.count()
    first = overdue_scan(now=now)
    with connection.cursor() as cursor:
        cursor.execute(SEND_ALL, [now, now])
        cursor.execute("VACUUM ANALYZE")
    bare, floor, idle, in_sql, sweep, clocked, statements = [], [], [], [], [], [], 0
    quiet, ticked = [], []  # minutes in which the clock made nothing late or due, and those in which it did
    minute = now
    with connection.cursor() as cursor:
        for _ in range(repeat):
            previous, minute = minute, minute + timedelta(minutes=1)
            with transaction.atomic():
                seconds, _ = timed(lambda minute=minute: cursor.execute(BARE_FLAG, [minute, minute]))
                bare.append(seconds)
                transaction.set_rollback(True)
            with transaction.atomic():
                seconds, _ = timed(
                    lambda minute=minute, previous=previous: cursor.execute(BARE_FLAG_SINCE, [minute, minute, previous])
                )
                floor.append(seconds)
                transaction.set_rollback(True)
            with CaptureQueriesContext(connection) as queries:
                seconds, result = timed(lambda minute=minute: overdue_scan(now=minute))
            # "Idle": no write. The clock still makes a step or two late in a minute in a large clinic.
            clocked.append(result.flagged)
            idle.append(seconds)
            (ticked if result.flagged or result.created else quiet).append(seconds)
            in_sql.append(sum(float(q["time"]) for q in queries.captured_queries))
            statements = len(queries.captured_queries)
            slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:4]
        for _ in range(repeat):
            minute += timedelta(minutes=1)
            seconds, result = timed(lambda minute=minute: overdue_scan(now=minute, everything=True))
            sweep.append(seconds)
    return {
        "steps": total,
        "late": first.flagged,
        "bare": median_ms(bare),
        "floor": median_ms(floor),
        "idle": median_ms(idle),
        "quiet": median_ms(quiet) if quiet else float("nan"),
        "quiet_n": len(quiet),
        "ticked": median_ms(ticked) if ticked else float("nan"),
        "ticked_n": len(ticked),
        "idle_in_sql": median_ms(in_sql),
        "sweep": median_ms(sweep),
        "statements": statements,
        "clocked": statistics.median(clocked),
        "slowest": [(float(q["time"]) * 1000, " ".join(q["sql"].split())[:400]) for q in slowest],
    }


def main() -> None:
    args = parse_args()
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carclinic.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sizes = [int(size) for size in args.sizes.split(",")]
    now = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
    rows = []
    for number, steps in enumerate(sizes):
        os.environ["DATABASE_URL"] = scratch_database(base_url, args.database)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        settings.DATABASES["default"]["NAME"] = args.database
        connection.close()
        try:
            started = time.perf_counter()
            call_command("migrate", verbosity=0)
            patients = max(1, steps // args.steps_per_patient)
            if args.detail and number == 0:
                detail(steps=steps, patients=patients, repeat=args.repeat, now=now)
                connection.close()
                drop_database(base_url, args.database)
                os.environ["DATABASE_URL"] = scratch_database(base_url, args.database)
                call_command("migrate", verbosity=0)
            row = measure_idle(steps=steps, patients=patients, repeat=args.repeat, now=now)
            row["load_seconds"] = time.perf_counter() - started
            rows.append(row)
            print(f"{row['steps']:,} steps loaded and measured in {row['load_seconds']:.0f} s: {row}", flush=True)
        finally:
            connection.close()
            if not args.keep:
                drop_database(base_url, args.database)

    print(f"\nan idle minute (nothing new), median of {args.repeat}, milliseconds:")
    print(f"  {'steps':>28}" + "".join(f"{row['steps']:>14,}" for row in rows))
    print(f"  {'late steps':>28}" + "".join(f"{row['late']:>14,}" for row in rows))
    for key, label in (
        ("bare", "bare UPDATE, whole past"),
        ("floor", "bare UPDATE, last minute"),
        ("idle", "overdue_scan(), idle minute"),
        ("idle_in_sql", "  of which in SQL"),
        ("quiet", "  nothing late by the clock"),
        ("ticked", "  the clock made one late"),
        ("sweep", "overdue_scan(), hourly sweep"),
    ):
        print(f"  {label:>28}" + "".join(f"{row[key]:>14.1f}" for row in rows))
    print(f"  {'statements, idle minute':>28}" + "".join(f"{row['statements']:>14}" for row in rows))
    print(f"  {'made late by the clock/min':>28}" + "".join(f"{row['clocked']:>14.0f}" for row in rows))
    print(f"  {'minutes: quiet / clock moved':>28}" + "".join(f"{row['quiet_n']:>9} / {row['ticked_n']:<2}" for row in rows))


def detail(*, steps: int, patients: int, repeat: int, now: datetime) -> None:
    """The first run next to the bare flagging, and reminders per second (the bench's earlier report)."""
    import django
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from journeys.models import Step
    from notifications.models import Reminder
    from notifications.services import overdue_scan, reminders_plan, steps_flag_overdue

    load_clinic(steps=steps, patients=patients, now=now, rng=random.Random(42))
    total = Step.objects.count()
    bare, orm, scan = [], [], []
    flagged = None
    with connection.cursor() as cursor:
        for _ in range(repeat):
            reset(cursor)
            seconds, _ = timed(lambda: transaction.atomic()(lambda: cursor.execute(BARE_FLAG, [now, now]))())
            bare.append(seconds)
            flagged = cursor.rowcount
            reset(cursor)
            seconds, count = timed(lambda: transaction.atomic()(steps_flag_overdue)(now=now))
            orm.append(seconds)
            assert count == flagged, (count, flagged)
            reset(cursor)
            seconds, result = timed(lambda: overdue_scan(now=now))
            scan.append(seconds)
            assert result.flagged == flagged
        reset(cursor)
        with CaptureQueriesContext(connection) as queries:
            first = overdue_scan(now=now)
        m = statistics.median
        print(f"\nflagging {flagged:,} late steps among {total:,} (median of {repeat}):")
        print(f"  bare SQL UPDATE … FROM            {m(bare) * 1000:8.1f} ms")
        print(f"  steps_flag_overdue() (ORM)        {m(orm) * 1000:8.1f} ms   ratio {m(orm) / m(bare):.2f}x")
        print(
            f"  overdue_scan(), first run         {m(scan) * 1000:8.1f} ms   ratio {m(scan) / m(bare):.2f}x"
            f"   (also plans {first.created:,} reminders)"
        )
        print(f"  SQL statements, first run: {len(queries.captured_queries)}")

        # Reminders per second: 10,000 steps of active journeys that have just become overdue.
        reset(cursor)
        cursor.execute(
            """
            UPDATE journeys_step SET overdue_since = %s, overdue_after = %s
             WHERE id IN (SELECT s.id FROM journeys_step s JOIN journeys_journey j ON j.id = s.journey_id
                           WHERE j.status = 'active' AND s.status = 'pending' AND s.overdue_after > %s
                           ORDER BY s.id LIMIT %s)""",
            [now, now - timedelta(hours=1), now + timedelta(days=30), 10_000],
        )
        due_steps = cursor.rowcount
        # Everything else pending is moved well out of the planning horizon, so only the due steps count.
        cursor.execute(
            "UPDATE journeys_step SET overdue_after = overdue_after + interval '800 days', "
            "due_on = due_on + 800, window_opens_on = window_opens_on + 800, "
            "window_closes_on = window_closes_on + 800 "
            "WHERE overdue_since IS NULL AND status = 'pending' AND due_on <= %s",
            [(now + timedelta(days=30)).date()],
        )
    with CaptureQueriesContext(connection) as plan_queries:
        seconds, created = timed(lambda: transaction.atomic()(reminders_plan)(now=now))
    kinds = dict(Reminder.objects.values_list("kind").annotate(n=django.db.models.Count("id")))
    print(
        f"\nreminders for {due_steps:,} due steps: {created:,} rows ({kinds}) in {seconds * 1000:.0f} ms "
        f"= {created / seconds:,.0f} reminders/s, {due_steps / seconds:,.0f} steps/s, "
        f"{len(plan_queries.captured_queries)} SQL statements"
    )


if __name__ == "__main__":
    main()
