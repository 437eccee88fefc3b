"""`manage.py reminders_health`: last scan, pending reminders, oldest pending age. Exit 1 when unhealthy,
so a monitor can call it."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications.selectors import reminder_health


class Command(BaseCommand):
    help = "Show when the overdue scan last ran and how many reminders wait to be sent."

    def handle(self, *args, **options):
        health = reminder_health()
        last = health["last_scan_at"]
        self.stdout.write(
            f"last scan:            {last.isoformat() if last else 'never'}"
            + (f" ({health['last_scan_age_seconds']:.0f} s ago)" if last else "")
        )
        self.stdout.write(f"pending (due now):    {health['pending_due']}")
        self.stdout.write(f"oldest pending age:   {health['oldest_pending_age_seconds']:.0f} s")
        self.stdout.write(f"failed in last 24 h:  {health['failed_last_24h']}")
        late_after = 5 * settings.REMINDER_SCAN_INTERVAL_SECONDS
        problems = []
        if last is None or health["last_scan_age_seconds"] > late_after:
            problems.append(f"the scan has not run in the last {late_after} s")
        if health["oldest_pending_age_seconds"] > late_after:
            problems.append("reminders wait longer than they should (is a worker running?)")
        if problems:
            raise CommandError("UNHEALTHY: " + "; ".join(problems))
        self.stdout.write("OK")
