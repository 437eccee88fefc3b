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

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from journeys.models import JourneyEvent, Step, StepStatus
from notifications.models import ScanRun

FULL_SWEEP_EVERY = timedelta(hours=1)
SETTLE = timedelta(minutes=10)


@dataclass(frozen=True)
class Scope:
    """`since` None: everything. Else the previous scan's time, the journeys with an event since, and
    whether the clock made a pending step late, or ripe for escalation, since (`clock`)."""

    since: datetime | None = None
    journeys: tuple[int, ...] = ()
    clock: bool = True

    @property
    def everything(self) -> bool:
        return self.since is None


EVERYTHING = Scope()


def scan_scope(now: datetime) -> Scope:
    """Three or four small indexed reads: the previous scan, the previous sweep, the journeys changed since,
    and, when none did, whether the clock moved anything."""
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
    journeys = tuple(
        sorted(JourneyEvent.objects.filter(at__gte=previous - SETTLE).order_by().values_list("journey_id", flat=True).distinct())
    )
    return Scope(since=previous, journeys=journeys, clock=bool(journeys) or clock_moved(since=previous, now=now))


def clock_moved(*, since: datetime, now: datetime) -> bool:
    """Did a pending step become late, or ripe for escalation, between two scans? One read of the pending
    steps' partial index on their overdue time, without the joins of the rule itself: the statements that
    apply the rule cost more to plan than to run, so an idle minute asks this first and skips them."""
    escalate_after = timedelta(hours=settings.REMINDER_ESCALATION_AFTER_HOURS)
    return (
        Step.objects.filter(status=StepStatus.PENDING)
        .filter(
            Q(overdue_after__gt=since, overdue_after__lte=now)
            | Q(overdue_after__gt=since - escalate_after, overdue_after__lte=now - escalate_after)
        )
        .exists()
    )
