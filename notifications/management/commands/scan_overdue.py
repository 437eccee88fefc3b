"""`manage.py scan_overdue --once`: the overdue scan and the sending of due reminders, without Celery.

For cron, for tests, and for a clinic that runs no worker. Without --once it loops every N seconds
(healthchecks' `sendalerts` does the same)."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications import services


class Command(BaseCommand):
    help = "Flag overdue steps, plan reminders and send the due ones."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one scan and one send, then exit.")
        parser.add_argument("--no-send", action="store_true", help="Scan and plan only; leave sending to the workers.")
        parser.add_argument("--interval", type=int, default=settings.REMINDER_SCAN_INTERVAL_SECONDS)

    def handle(self, *args, once=False, no_send=False, interval=60, **options):
        while True:
            scan = services.overdue_scan()
            line = f"scan: flagged={scan.flagged} unflagged={scan.unflagged} created={scan.created} cancelled={scan.cancelled}"
            if not no_send:
                sent = services.reminders_send_due()
                line += f" | send: claimed={sent.claimed} sent={sent.sent} messages={sent.messages} retrying={sent.retrying} failed={sent.failed}"
            self.stdout.write(line)
            if once:
                return
            time.sleep(interval)
