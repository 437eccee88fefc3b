"""What an overdue scan must look at, so that an idle minute costs what changed, not what exists.

Late, due and coming-up are decided by the clock and by the journey's writes. The clock part is a range:
steps whose overdue time passed since the previous scan. The write part is the journeys that changed:
every write that can make a step late, not late, blocked, rescheduled or resolved (completion, skip,
stage start, hold, resume, withdrawal, Day 0 moved) records a `JourneyEvent` in the same transaction, so
the journeys with an event since the previous scan are the only others to re-read.

An event's time is taken when it is written, and its transaction commits a moment later, so events are
read back from SETTLE before the previous scan. What no event records (an admin editing a row behind
the services, a new nurse, a changed reminder policy or preference, a new clinic day's horizon) is caught
by a sweep over everything: on the first scan, after an outage, on a new clinic day, and at least
hourly (FULL_SWEEP_EVERY).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from journeys.models import JourneyEvent
from notifications.models import ScanRun

FULL_SWEEP_EVERY = timedelta(hours=1)
SETTLE = timedelta(minutes=10)


@dataclass(frozen=True)
class Scope:
    """`since` None: everything. Else the previous scan's time, and the journeys with an event since."""

    since: datetime | None = None
    journeys: tuple[int, ...] = ()

    @property
    def everything(self) -> bool:
        return self.since is None


EVERYTHING = Scope()


def scan_scope(now: datetime) -> Scope:
    """Three small indexed reads: the previous scan, the previous sweep, the journeys changed since."""
    previous = ScanRun.objects.filter(started_at__lte=now).order_by("-started_at").values_list("started_at", flat=True).first()
    swept = (
        ScanRun.objects.filter(started_at__lte=now, full=True)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    if (
        previous is None
        or swept is None
        or now - swept >= FULL_SWEEP_EVERY
        or timezone.localdate(previous) != timezone.localdate(now)
    ):
        return EVERYTHING
    journeys = JourneyEvent.objects.filter(at__gte=previous - SETTLE).order_by().values_list("journey_id", flat=True).distinct()
    return Scope(since=previous, journeys=tuple(sorted(journeys)))
