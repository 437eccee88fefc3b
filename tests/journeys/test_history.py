"""Step completion and Day 0 moves leave history rows with who made them and what changed."""

from datetime import timedelta

from django.utils import timezone

from journeys.models import Journey, Step
from journeys.services import day0_reschedule, step_complete


def test_step_complete_writes_a_history_row_with_the_nurse_and_the_fields(journey, nurse):
    step = Step.objects.get(journey=journey, template__code="eligibility-labs")
    step_complete(actor=nurse, step_id=step.id, notes="Drawn at 08:10")
    created, changed = step.history.order_by("history_id")
    assert created.history_user != nurse  # laid out by the coordinator who started the journey
    assert (changed.history_type, changed.history_user) == ("~", nurse)
    delta = changed.diff_against(created)
    assert {"status", "completed_by", "completed_at", "performed_at", "notes", "version"} <= set(delta.changed_fields)
    by_field = {change.field: (change.old, change.new) for change in delta.changes}
    assert by_field["status"] == ("pending", "done")
    assert by_field["notes"] == ("", "Drawn at 08:10")


def test_day0_reschedule_writes_history_for_the_journey_and_every_moved_step(journey, physician):
    moved = Step.objects.get(journey=journey, template__code="ld-day-5")
    old_day0 = journey.day0_planned
    new_day0 = max(old_day0 + timedelta(days=5), timezone.localdate())
    day0_reschedule(actor=physician, journey_id=journey.id, new_day0=new_day0, reason="Plant slot moved")

    journey_rows = Journey.history.filter(id=journey.id).order_by("history_id")
    last = journey_rows.last()
    assert (last.history_user, last.history_change_reason) == (physician, "Plant slot moved")
    delta = last.diff_against(journey_rows[len(journey_rows) - 2])
    assert {change.field: (change.old, change.new) for change in delta.changes}["day0_planned"] == (old_day0, new_day0)

    step_rows = moved.history.order_by("history_id")
    assert step_rows.count() == 2
    latest = step_rows.last()
    assert (latest.history_user, latest.history_change_reason) == (physician, "Plant slot moved")
    delta = latest.diff_against(step_rows.first())
    assert {"due_on", "window_opens_on", "window_closes_on", "overdue_after", "version"} <= set(delta.changed_fields)
    unmoved = Step.objects.get(journey=journey, template__code="eligibility-labs")  # anchored on leukapheresis
    assert unmoved.history.count() == 1
