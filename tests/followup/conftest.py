"""A journey years after Day 0 on the shipped protocol: stages 1–4 done, stage 5 under way, visits recorded."""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from journeys.models import Stage, StageStatus, Step, StepStatus


@pytest.fixture(autouse=True)
def _plain_static(settings):
    # Pages link {% static %} files; the manifest storage would need collectstatic first.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture
def in_follow_up(journey):
    """The `journey` fixture moved on to stage 5 with Day 0 six years ago; `record(code, day, **values)` marks a
    step done on Day +day with those values."""
    today = timezone.localdate()
    day0 = today - timedelta(days=6 * 365 + 30)
    journey.day0_actual = day0
    journey.current_stage = 5
    journey.save(update_fields=["day0_actual", "current_stage"])
    Stage.objects.filter(journey=journey, number__lt=5).update(status=StageStatus.COMPLETED, completed_at=timezone.now())
    Stage.objects.filter(journey=journey, number=5).update(status=StageStatus.IN_PROGRESS, started_at=timezone.now())
    Step.objects.filter(journey=journey, stage__number__lt=5).update(status=StepStatus.DONE, completed_at=timezone.now())

    # The year-6 contact's window is open today (its dates were planned from the original Day 0).
    Step.objects.filter(journey=journey, template__code="ltfu-year-6").update(
        window_opens_on=today - timedelta(days=30), due_on=today, window_closes_on=today + timedelta(days=30)
    )

    def record(code: str, day: int, **values):
        at = timezone.make_aware(datetime.combine(day0 + timedelta(days=day), time(10)))
        Step.objects.filter(journey=journey, template__code=code).update(
            status=StepStatus.DONE, performed_at=at, completed_at=at, record=values
        )

    journey.record = record
    journey.refresh_from_db()
    return journey


@pytest.fixture
def users(coordinator, nurse, physician, viewer, make_user):
    return {
        "coordinator": coordinator,
        "nurse": nurse,
        "physician": physician,
        "viewer": viewer,
        "admin": make_user("admin", first_name="Ada", last_name="Admin"),
    }
