"""Outages against the real services: the broker unreachable when a process wants to enqueue, and a real
`celery worker` process consuming from the real Redis. Committed rows (transaction=True), because the
other processes read the test database through their own connections."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from journeys.models import Step
from notifications import tasks
from notifications.models import Notification, Reminder, ReminderKind, ReminderState, ScanRun

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "carclinic.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def _overdue_journey(start_journey):
    # Real time here: the other processes run on the real clock. Ten days after leukapheresis the
    # eligibility labs, sign-off, collection, shipment and plant receipt are all overdue.
    return start_journey(leukapheresis_date=date.today() - timedelta(days=10), day0_planned=date.today() + timedelta(days=20))


def test_broker_unreachable_completion_is_saved_and_the_next_scan_sends_the_missed_reminders(
    start_journey, staff_team, mailoutbox
):
    journey = _overdue_journey(start_journey)
    labs = Step.objects.get(journey=journey, template__code="eligibility-labs")
    # Another process (a web worker, cron) with the broker down: a nurse records the labs, the scan runs,
    # and the enqueue after it fails. Nothing of what was committed may be lost.
    script = (
        "import django; django.setup()\n"
        "from kombu.exceptions import OperationalError\n"
        "from journeys.services import step_complete\n"
        "from staff.models import User\n"
        "from notifications import tasks\n"
        f"step_complete(actor=User.objects.get(pk={staff_team['nurse'].pk}), step_id={labs.pk})\n"
        "print('COMPLETED')\n"
        "print('SCAN', tasks.scan_overdue())\n"
        "try:\n"
        "    tasks.send_due_reminders.delay()\n"
        "except OperationalError as error:\n"
        "    print('ENQUEUE FAILED', type(error).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(CELERY_BROKER_URL=f"redis://127.0.0.1:{_closed_port()}/0"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "COMPLETED" in done.stdout and "ENQUEUE FAILED" in done.stdout, done.stdout
    # The enqueue inside the scan task failed too, after its commit, and said so in the log.
    assert "Error calling" in done.stderr or "OperationalError" in done.stderr, done.stderr[-3000:]
    labs.refresh_from_db()
    assert labs.status == "done"
    assert ScanRun.objects.count() == 1
    missed = Reminder.objects.filter(state=ReminderState.PENDING, send_after__lte=time_now())
    missed_count = missed.count()
    assert missed.filter(kind=ReminderKind.OVERDUE).exists()
    assert not Reminder.objects.filter(step=labs, kind=ReminderKind.OVERDUE).exists()

    # The broker is back: the periodic send (state-based, it asks what is due) sends them, once.
    first = tasks.send_due_reminders()
    assert first["sent"] == missed_count > 0
    assert not Reminder.objects.filter(state=ReminderState.PENDING, send_after__lte=time_now()).exists()
    assert tasks.send_due_reminders()["claimed"] == 0
    assert all("Eligibility labs" not in m.body for m in mailoutbox)
    assert len({tuple(m.to) for m in mailoutbox}) == len(mailoutbox)


def time_now():
    from django.utils import timezone

    return timezone.now()


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    broker = settings.CELERY_BROKER_URL
    assert broker.startswith("redis://"), f"the end-to-end test needs Redis as the broker, not {broker}"
    from carclinic.celery import app

    app.control.purge()  # tasks left by an earlier, interrupted run must not be consumed by this worker
    mail_dir = tmp_path / "mail"
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "carclinic",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
                "-n",
                f"notif-e2e-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_env(
                CELERY_BROKER_URL=broker,
                EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                EMAIL_FILE_PATH=str(mail_dir),
            ),
        )
    try:
        yield {"mail_dir": mail_dir, "log": log_path, "process": worker}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=5)


def _wait_for(condition, *, seconds: float, worker) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        assert worker["process"].poll() is None, worker["log"].read_text()[-4000:]
        time.sleep(0.5)
    raise AssertionError("timed out; worker log:\n" + worker["log"].read_text()[-4000:])


def test_real_worker_on_real_redis_scans_sends_once_and_ignores_redelivered_tasks(start_journey, staff_team, celery_worker):
    journey = _overdue_journey(start_journey)
    nurse = staff_team["nurse"]
    tasks.scan_overdue.delay()

    def nurse_notified():
        return (
            Notification.objects.filter(recipient=nurse).exists()
            and not Reminder.objects.filter(recipient=nurse, kind=ReminderKind.OVERDUE).exclude(state=ReminderState.SENT).exists()
            and Reminder.objects.filter(recipient=nurse, kind=ReminderKind.OVERDUE).exists()
        )

    _wait_for(nurse_notified, seconds=60, worker=celery_worker)
    assert Step.objects.filter(journey=journey, overdue_since__isnull=False).count() >= 4
    mails = list(celery_worker["mail_dir"].glob("*.log"))
    assert any(nurse.email in path.read_text() and "overdue" in path.read_text() for path in mails)

    # The same tasks delivered again (a redelivery after a lost ack, a second beat): nothing new goes out.
    notifications, reminders, sent = (
        Notification.objects.count(),
        Reminder.objects.count(),
        Reminder.objects.filter(state=ReminderState.SENT).count(),
    )
    mail_bytes = sum(path.stat().st_size for path in celery_worker["mail_dir"].glob("*.log"))
    for _ in range(2):
        tasks.scan_overdue.delay()
        tasks.send_due_reminders.delay()
    _wait_for(lambda: ScanRun.objects.count() >= 3, seconds=60, worker=celery_worker)
    time.sleep(2)  # let the trailing send tasks finish
    assert Notification.objects.count() == notifications
    assert Reminder.objects.count() == reminders
    assert Reminder.objects.filter(state=ReminderState.SENT).count() == sent
    assert sum(path.stat().st_size for path in celery_worker["mail_dir"].glob("*.log")) == mail_bytes
    log = celery_worker["log"].read_text()
    assert "reminder sent id=" in log and journey.patient.family_name not in log and journey.patient.mrn not in log
    # The worker's own account of a reminder's life, for the closing note.
    print("\n".join(line for line in log.splitlines() if "carclinic.reminders" in line)[:4000])
