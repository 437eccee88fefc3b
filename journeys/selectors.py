"""Every read the pages, the API and the workers share. Each returns a queryset (or a small dict) with its
joins already applied, so a list costs the same number of queries for 10 patients or 10,000."""

from datetime import date, datetime

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from journeys.models import Journey, JourneyEvent, JourneyStatus, StageNumber, Step, StepStatus


def steps_with_context() -> QuerySet[Step]:
    return Step.objects.select_related("template", "stage", "journey", "journey__patient", "completed_by")


def overdue_steps(*, now: datetime | None = None) -> QuerySet[Step]:
    """Pending steps of active journeys whose window and grace have passed, the latest first by lateness."""
    now = now or timezone.now()
    return (
        steps_with_context()
        .filter(status=StepStatus.PENDING, overdue_after__lte=now, journey__status=JourneyStatus.ACTIVE)
        .order_by("overdue_after", "id")
    )


def steps_due_between(*, first_day: date, last_day: date) -> QuerySet[Step]:
    """Pending steps of active journeys due from `first_day` to `last_day`, inclusive."""
    return (
        steps_with_context()
        .filter(status=StepStatus.PENDING, due_on__gte=first_day, due_on__lte=last_day,
                journey__status=JourneyStatus.ACTIVE)
        .order_by("due_on", "template__position", "id")
    )


def patients_per_stage() -> dict[int, int]:
    """How many patients with an open journey stand in each of the five stages (zeros included)."""
    counts = dict.fromkeys(StageNumber.values, 0)
    rows = (
        Journey.objects.filter(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
        .values("current_stage")
        .annotate(patients=Count("id"))
    )
    for row in rows:
        counts[row["current_stage"]] = row["patients"]
    return counts


def open_journey_for_patient(*, patient_id: int) -> Journey | None:
    return (
        Journey.objects.select_related("patient", "protocol")
        .filter(patient_id=patient_id, status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
        .first()
    )


def journey_steps(*, journey_id: int) -> QuerySet[Step]:
    return (
        Step.objects.filter(journey_id=journey_id)
        .select_related("template", "stage", "completed_by")
        .order_by("due_on", "template__position", "id")
    )


def journey_events(*, journey_id: int) -> QuerySet[JourneyEvent]:
    return JourneyEvent.objects.filter(journey_id=journey_id).select_related("actor", "step__template")


def stage_step_counts(*, journey_id: int) -> QuerySet:
    """Per stage: how many steps, how many resolved, how many overdue now."""
    now = timezone.now()
    return (
        Step.objects.filter(journey_id=journey_id)
        .values("stage__number")
        .annotate(
            total=Count("id"),
            resolved=Count("id", filter=~Q(status=StepStatus.PENDING)),
            overdue=Count("id", filter=Q(status=StepStatus.PENDING, overdue_after__lte=now)),
        )
        .order_by("stage__number")
    )
