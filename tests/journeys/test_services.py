"""Every transition rule of the journey, through the services that enforce it.

The clock is pinned to 3 March 2026, 09:00 in Berlin; leukapheresis is that day and Day 0 is planned
21 days later, on 24 March (the default protocol's vein-to-vein time).
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from carclinic.errors import InvalidInput, StaleVersion
from journeys.errors import JourneyAlreadyOpen, JourneyClosed, StageOrderViolation, StepAlreadyCompleted, TransitionNotAllowed
from journeys.models import (
    EventKind,
    Journey,
    JourneyEvent,
    JourneyStatus,
    StageStatus,
    Step,
    StepStatus,
)
from journeys.services import (
    day0_reschedule,
    journey_hold,
    journey_resume,
    journey_start,
    journey_withdraw,
    step_complete,
    step_skip,
)
from journeys.transitions import guard_stage_start
from tests.factories import PatientFactory, lymphodepletion_earlier, make_protocol, minimal_record, second_signer

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
LEUKAPHERESIS = date(2026, 3, 3)
DAY0 = date(2026, 3, 24)


# --- helpers -----------------------------------------------------------------------------------


def step_of(journey, code: str) -> Step:
    return Step.objects.select_related("template", "stage", "completed_by").get(journey=journey, template__code=code)


def fresh(journey) -> Journey:
    return Journey.objects.get(pk=journey.pk)


def stage_statuses(journey) -> list[str]:
    return list(journey.stages.order_by("number").values_list("status", flat=True))


def complete_stage(journey, number: int, actor, *, except_codes=()) -> None:
    """Record every pending step of stage `number` (a physician may record any step)."""
    # One at a time: completing the last required step closes the stage and its optional leftovers.
    while step := (
        Step.objects.filter(journey=journey, stage__number=number, status=StepStatus.PENDING)
        .exclude(template__code__in=except_codes)
        .order_by("id")
        .first()
    ):
        step_complete(
            actor=actor, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )


def advance_to(journey, number: int, actor) -> None:
    for earlier in range(1, number):
        complete_stage(journey, earlier, actor)
    assert fresh(journey).current_stage == number


def table_counts() -> dict[str, int]:
    """Rows of everything a journey service may write, to prove a refused call wrote nothing."""
    return {
        "journeys": Journey.objects.count(),
        "journey_history": Journey.history.count(),
        "events": JourneyEvent.objects.count(),
        "step_history": Step.history.count(),
        "pending_steps": Step.objects.filter(status=StepStatus.PENDING).count(),
        "stages_in_progress": Journey.objects.filter(stages__status=StageStatus.IN_PROGRESS).count(),
    }


@pytest.fixture
def clinic_morning(at_clinic):
    return at_clinic(2026, 3, 3, 9, 0)


@pytest.fixture
def journey(clinic_morning, coordinator, patient, protocol):
    return journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS)


# --- starting a journey ----------------------------------------------------------------------------


def test_start_lays_out_five_stages_and_every_step_pending_with_its_dates(journey, protocol, coordinator):
    assert journey.day0_planned == DAY0
    assert journey.current_stage == 1
    assert stage_statuses(journey) == ["in_progress", "pending", "pending", "pending", "pending"]
    steps = Step.objects.filter(journey=journey)
    assert steps.count() == protocol.step_templates.count()
    assert set(steps.values_list("status", flat=True)) == {StepStatus.PENDING}

    ld_day_5 = step_of(journey, "ld-day-5")
    assert ld_day_5.due_on == DAY0 - timedelta(days=5) == date(2026, 3, 19)
    assert (ld_day_5.window_opens_on, ld_day_5.window_closes_on) == (date(2026, 3, 19), date(2026, 3, 19))
    # Local midnight after the window's last day, plus 6 hours' grace.
    assert ld_day_5.overdue_after == datetime(2026, 3, 20, 6, 0, tzinfo=BERLIN)

    labs = step_of(journey, "eligibility-labs")  # leukapheresis −7, window −7/+5, grace 24 h
    assert labs.due_on == date(2026, 2, 24)
    assert (labs.window_opens_on, labs.window_closes_on) == (date(2026, 2, 17), date(2026, 3, 1))
    assert labs.overdue_after == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)

    release = step_of(journey, "qc-release")  # Day 0 −7, window −5/+2, grace 12 h
    assert (release.due_on, release.window_opens_on, release.window_closes_on) == (
        date(2026, 3, 17),
        date(2026, 3, 12),
        date(2026, 3, 19),
    )
    assert release.overdue_after == datetime(2026, 3, 20, 12, 0, tzinfo=BERLIN)

    assert step_of(journey, "visit-day-28").due_on == date(2026, 4, 21)
    assert JourneyEvent.objects.filter(journey=journey, kind=EventKind.JOURNEY_STARTED, actor=coordinator).count() == 1
    assert JourneyEvent.objects.filter(journey=journey, kind=EventKind.STAGE_STARTED, stage_number=1).count() == 1
    protocol.refresh_from_db()
    assert protocol.locked_at is not None


def test_a_second_open_journey_for_the_same_patient_is_refused(journey, coordinator, protocol):
    before = table_counts()
    with pytest.raises(JourneyAlreadyOpen):
        journey_start(actor=coordinator, patient_id=journey.patient_id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS)
    assert table_counts() == before


def test_the_database_itself_refuses_a_second_open_journey(journey, protocol):
    with pytest.raises(IntegrityError), transaction.atomic():
        Journey.objects.create(
            patient=journey.patient,
            protocol=protocol,
            status=JourneyStatus.ON_HOLD,
            leukapheresis_date=LEUKAPHERESIS,
            day0_planned=DAY0,
            started_at=timezone.now(),
        )


def test_a_new_journey_may_start_once_the_old_one_is_withdrawn(journey, coordinator, protocol):
    journey_withdraw(actor=coordinator, journey_id=journey.id, reason="Infection; restart later")
    second = journey_start(
        actor=coordinator, patient_id=journey.patient_id, protocol_id=protocol.id, leukapheresis_date=date(2026, 4, 1)
    )
    assert second.status == JourneyStatus.ACTIVE
    assert Journey.objects.filter(patient=journey.patient).count() == 2


def test_start_with_day0_before_leukapheresis_or_inactive_protocol_writes_nothing(clinic_morning, coordinator, patient, protocol):
    before = table_counts()
    with pytest.raises(InvalidInput) as refused:
        journey_start(
            actor=coordinator,
            patient_id=patient.id,
            protocol_id=protocol.id,
            leukapheresis_date=LEUKAPHERESIS,
            day0_planned=LEUKAPHERESIS - timedelta(days=1),
        )
    assert "day0_planned" in refused.value.field_errors
    protocol.is_active = False
    protocol.save()
    with pytest.raises(InvalidInput) as refused:
        journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS)
    assert "protocol" in refused.value.field_errors
    assert table_counts() == before


# --- stage order ---------------------------------------------------------------------------------------


def test_a_step_of_a_stage_not_yet_started_is_refused(journey, nurse, coordinator):
    before = table_counts()
    with pytest.raises(StageOrderViolation):
        step_complete(actor=nurse, step_id=step_of(journey, "plant-receipt").id)
    with pytest.raises(StageOrderViolation):
        step_skip(actor=coordinator, step_id=step_of(journey, "visit-day-14").id, reason="Patient abroad")
    assert table_counts() == before


def test_completing_the_required_steps_completes_the_stage_and_starts_the_next(journey, physician):
    complete_stage(journey, 1, physician, except_codes=["shipment"])
    assert stage_statuses(journey)[:2] == ["in_progress", "pending"]
    step_complete(actor=physician, step_id=step_of(journey, "shipment").id)
    assert stage_statuses(journey)[:2] == ["completed", "in_progress"]
    assert fresh(journey).current_stage == 2
    kinds = set(JourneyEvent.objects.filter(journey=journey).values_list("kind", "stage_number"))
    assert {(EventKind.STAGE_COMPLETED, 1), (EventKind.STAGE_STARTED, 2)} <= kinds


def test_optional_steps_left_open_become_not_applicable_when_the_stage_completes(clinic_morning, coordinator, nurse):
    protocol = make_protocol()
    patient = PatientFactory()
    journey = journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS)
    step_complete(actor=nurse, step_id=step_of(journey, "labs").id)
    step_complete(actor=nurse, step_id=step_of(journey, "collect").id)
    leftover = step_of(journey, "extra-photo")
    assert leftover.status == StepStatus.NOT_APPLICABLE
    assert leftover.completed_at is not None and leftover.completed_by is None
    assert stage_statuses(journey)[:2] == ["completed", "in_progress"]
    assert JourneyEvent.objects.filter(step=leftover, kind=EventKind.STEP_NOT_APPLICABLE).count() == 1


def test_lymphodepletion_waits_for_the_product_release(journey, physician):
    advance_to(journey, 2, physician)
    complete_stage(journey, 2, physician, except_codes=["qc-release"])
    assert stage_statuses(journey)[1:3] == ["in_progress", "pending"]
    with pytest.raises(StageOrderViolation):
        step_complete(actor=physician, step_id=step_of(journey, "ld-day-5").id)
    step_complete(
        actor=physician, step_id=step_of(journey, "qc-release").id, record=minimal_record(step_of(journey, "qc-release"))
    )
    journey = fresh(journey)
    assert journey.product_released_at == datetime(2026, 3, 3, 9, 0, tzinfo=BERLIN)
    assert journey.current_stage == 3
    assert stage_statuses(journey)[1:3] == ["completed", "in_progress"]


def test_stage_two_finishing_without_a_release_leaves_lymphodepletion_pending(clinic_morning, coordinator, nurse):
    # A protocol whose release step is optional: stage 2 may close, but stage 3 must still wait.
    protocol = make_protocol(
        steps=[
            dict(
                stage=1, code="collect", anchor="leukapheresis", offset_days=0, responsible_role="nurse", milestone="collection"
            ),
            dict(stage=2, code="receipt", anchor="leukapheresis", offset_days=2, responsible_role="nurse"),
            dict(
                stage=2,
                code="release",
                anchor="day0",
                offset_days=-7,
                responsible_role="nurse",
                milestone="product_released",
                required=False,
            ),
            dict(stage=3, code="ld", anchor="day0", offset_days=-5, responsible_role="nurse"),
        ]
    )
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
    )
    step_complete(actor=nurse, step_id=step_of(journey, "collect").id)
    step_complete(actor=nurse, step_id=step_of(journey, "receipt").id)
    journey = fresh(journey)
    assert stage_statuses(journey)[:3] == ["completed", "completed", "pending"]
    assert journey.current_stage == 2 and journey.product_released_at is None
    with pytest.raises(StageOrderViolation):
        step_complete(actor=nurse, step_id=step_of(journey, "ld").id)


def test_guard_stage_start_refuses_lymphodepletion_before_release(journey):
    stages = {stage.number: stage for stage in journey.stages.all()}
    stages[2].status = StageStatus.COMPLETED
    with pytest.raises(StageOrderViolation, match="released"):
        guard_stage_start(journey, stages[3], stages[2])
    with pytest.raises(StageOrderViolation):
        guard_stage_start(journey, stages[4], stages[3])  # stage 3 still pending
    journey.product_released_at = timezone.now()
    guard_stage_start(journey, stages[3], stages[2])  # now allowed
    with pytest.raises(TransitionNotAllowed):
        guard_stage_start(journey, stages[1], None)  # already in progress


# --- milestones and skipping -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "stage"), [("leukapheresis", 1), ("qc-release", 2), ("infusion", 4)])
def test_milestone_steps_cannot_be_skipped(journey, physician, code, stage):
    advance_to(journey, stage, physician)
    before = table_counts()
    with pytest.raises(TransitionNotAllowed, match="cannot be skipped") as refused:
        step_skip(actor=physician, step_id=step_of(journey, code).id, reason="Not needed")
    assert type(refused.value) is TransitionNotAllowed
    assert table_counts() == before


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_skip_needs_a_reason(journey, coordinator, reason):
    before = table_counts()
    with pytest.raises(InvalidInput) as refused:
        step_skip(actor=coordinator, step_id=step_of(journey, "eligibility-labs").id, reason=reason)
    assert refused.value.field_errors["reason"]
    assert table_counts() == before


def test_a_skipped_required_step_counts_as_resolved(journey, coordinator, physician):
    complete_stage(journey, 1, physician, except_codes=["eligibility-labs"])
    step = step_skip(actor=coordinator, step_id=step_of(journey, "eligibility-labs").id, reason="  Labs from referring site  ")
    assert (step.status, step.skip_reason, step.completed_by) == (StepStatus.SKIPPED, "Labs from referring site", coordinator)
    assert fresh(journey).current_stage == 2


# --- nothing twice ------------------------------------------------------------------------------------------


def test_nothing_completes_twice_and_the_second_is_told_who_and_when(journey, nurse, coordinator, at_clinic):
    step_id = step_of(journey, "eligibility-labs").id
    step_complete(actor=nurse, step_id=step_id)
    at_clinic(2026, 3, 3, 11, 30)
    before = table_counts()
    with pytest.raises(StepAlreadyCompleted) as second:
        step_complete(actor=coordinator, step_id=step_id)
    assert "Nina Nurse" in second.value.message and "03 Mar 2026 09:00" in second.value.message
    assert second.value.by == "Nina Nurse"
    with pytest.raises(StepAlreadyCompleted):
        step_skip(actor=coordinator, step_id=step_id, reason="Duplicate")
    assert table_counts() == before
    assert step_of(journey, "eligibility-labs").completed_by == nurse


# --- hold, resume, withdraw --------------------------------------------------------------------------------


def test_a_withdrawn_journey_accepts_no_steps_and_its_pending_steps_become_not_applicable(journey, coordinator, nurse):
    step_complete(actor=nurse, step_id=step_of(journey, "eligibility-labs").id)
    journey_withdraw(actor=coordinator, journey_id=journey.id, reason="Patient declined further treatment")
    journey = fresh(journey)
    assert journey.status == JourneyStatus.WITHDRAWN and journey.ended_at is not None
    assert journey.status_reason == "Patient declined further treatment"
    statuses = set(Step.objects.filter(journey=journey).values_list("status", flat=True))
    assert statuses == {StepStatus.DONE, StepStatus.NOT_APPLICABLE}
    assert step_of(journey, "eligibility-labs").status == StepStatus.DONE
    before = table_counts()
    with pytest.raises(JourneyClosed):
        step_complete(actor=nurse, step_id=step_of(journey, "leukapheresis").id)
    with pytest.raises(JourneyClosed):
        step_skip(actor=coordinator, step_id=step_of(journey, "shipment").id, reason="x")
    for change in (journey_resume, journey_hold, journey_withdraw):
        with pytest.raises(JourneyClosed):
            change(actor=coordinator, journey_id=journey.id, reason="again")
    with pytest.raises(TransitionNotAllowed):
        day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 4, 1), reason="later")
    assert table_counts() == before


def test_an_on_hold_journey_refuses_steps_until_resumed(journey, coordinator, nurse):
    step_id = step_of(journey, "eligibility-labs").id
    journey_hold(actor=coordinator, journey_id=journey.id, reason="Active infection")
    with pytest.raises(JourneyClosed, match="on hold"):
        step_complete(actor=nurse, step_id=step_id)
    with pytest.raises(TransitionNotAllowed):
        journey_hold(actor=coordinator, journey_id=journey.id, reason="twice")
    journey_resume(actor=coordinator, journey_id=journey.id, reason="Infection cleared")
    assert step_complete(actor=nurse, step_id=step_id).status == StepStatus.DONE
    with pytest.raises(TransitionNotAllowed):
        journey_resume(actor=coordinator, journey_id=journey.id, reason="not on hold")
    kinds = list(
        JourneyEvent.objects.filter(journey=journey, kind__in=[EventKind.JOURNEY_HELD, EventKind.JOURNEY_RESUMED])
        .order_by("id")
        .values_list("kind", "reason")
    )
    assert kinds == [(EventKind.JOURNEY_HELD, "Active infection"), (EventKind.JOURNEY_RESUMED, "Infection cleared")]


def test_a_completed_journey_cannot_be_resumed_held_or_withdrawn(clinic_morning, coordinator, physician):
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=make_protocol().id, leukapheresis_date=LEUKAPHERESIS
    )
    for number in range(1, 6):
        complete_stage(journey, number, physician)
    journey = fresh(journey)
    assert journey.status == JourneyStatus.COMPLETED and journey.ended_at is not None
    assert stage_statuses(journey) == ["completed"] * 5
    assert journey.current_stage == 5
    assert not Step.objects.filter(journey=journey, status=StepStatus.PENDING).exists()
    for change in (journey_resume, journey_hold, journey_withdraw):
        with pytest.raises(JourneyClosed):
            change(actor=coordinator, journey_id=journey.id, reason="try")


# --- bad input ------------------------------------------------------------------------------------------------


def test_performed_at_in_the_future_is_refused(journey, nurse):
    step_id = step_of(journey, "eligibility-labs").id
    before = table_counts()
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step_id, performed_at=timezone.now() + timedelta(hours=1))
    assert refused.value.field_errors["performed_at"]
    assert table_counts() == before
    # A ward clock a few minutes fast is tolerated.
    assert step_complete(actor=nurse, step_id=step_id, performed_at=timezone.now() + timedelta(minutes=4)).status == "done"


def test_performed_long_before_the_journey_is_refused(journey, nurse):
    with pytest.raises(InvalidInput) as refused:
        step_complete(
            actor=nurse, step_id=step_of(journey, "eligibility-labs").id, performed_at=timezone.now() - timedelta(days=400)
        )
    assert "performed_at" in refused.value.field_errors


def test_a_stale_expected_version_is_refused(journey, nurse, coordinator):
    step = step_of(journey, "eligibility-labs")
    before = table_counts()
    with pytest.raises(StaleVersion):
        step_complete(actor=nurse, step_id=step.id, expected_version=step.version + 1)
    with pytest.raises(StaleVersion):
        step_skip(actor=coordinator, step_id=step.id, reason="r", expected_version=step.version - 1)
    version = fresh(journey).version
    with pytest.raises(StaleVersion):
        day0_reschedule(
            actor=coordinator, journey_id=journey.id, new_day0=date(2026, 4, 1), reason="slot", expected_version=version + 1
        )
    with pytest.raises(StaleVersion):
        journey_hold(actor=coordinator, journey_id=journey.id, reason="r", expected_version=version + 1)
    assert table_counts() == before
    assert step_complete(actor=nurse, step_id=step.id, expected_version=step.version).version == step.version + 1
    journey_hold(actor=coordinator, journey_id=journey.id, reason="r", expected_version=version)


# --- Day 0 ----------------------------------------------------------------------------------------------------


def test_rescheduling_day0_moves_pending_day0_steps_only(journey, coordinator, physician):
    advance_to(journey, 2, physician)
    step_complete(
        actor=physician, step_id=step_of(journey, "qc-release").id, record=minimal_record(step_of(journey, "qc-release"))
    )  # a done Day-0 step
    before = {s.template.code: s for s in Step.objects.filter(journey=journey).select_related("template")}
    day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 3, 31), reason="Plant slot moved")
    after = {s.template.code: s for s in Step.objects.filter(journey=journey).select_related("template")}
    week = timedelta(days=7)
    moved = [code for code in after if after[code].due_on != before[code].due_on]
    for code, step in after.items():
        old = before[code]
        if old.status == StepStatus.PENDING and step.template.anchor == "day0":
            assert step.due_on == old.due_on + week, code
            assert step.window_opens_on == old.window_opens_on + week
            assert step.window_closes_on == old.window_closes_on + week
            assert step.version == old.version + 1
        else:
            assert (step.due_on, step.overdue_after, step.version) == (old.due_on, old.overdue_after, old.version), code
    assert "qc-release" not in moved and "plant-receipt" not in moved and "ld-day-5" in moved
    journey = fresh(journey)
    assert journey.day0_planned == date(2026, 3, 31)
    event = JourneyEvent.objects.get(journey=journey, kind=EventKind.ANCHOR_MOVED)
    assert event.reason == "Plant slot moved" and event.actor == coordinator
    assert event.detail["from"] == "2026-03-24" and event.detail["to"] == "2026-03-31"
    assert event.detail["steps_moved"] == len(moved)


def test_day0_reschedule_needs_a_reason_and_a_future_date(journey, coordinator):
    before = table_counts()
    with pytest.raises(InvalidInput) as refused:
        day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 4, 1), reason=" ")
    assert refused.value.field_errors["reason"]
    for bad in (date(2026, 3, 2), DAY0):  # yesterday; the same day
        with pytest.raises(InvalidInput) as refused:
            day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=bad, reason="slot")
        assert refused.value.field_errors["new_day0"]
    assert table_counts() == before
    day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 3, 3), reason="today is allowed")


def test_infusion_on_another_day_reanchors_day0_and_then_day0_is_fixed(journey, coordinator, physician):
    advance_to(journey, 4, physician)
    step_complete(actor=physician, step_id=step_of(journey, "admission").id)
    monitoring = step_of(journey, "monitoring-day-1")
    assert monitoring.due_on == date(2026, 3, 25)
    for code in ("coi-check", "infusion"):  # today, 3 March, not 24 March
        step_complete(
            actor=physician,
            step_id=step_of(journey, code).id,
            record=minimal_record(step_of(journey, code)),
            **second_signer(step_of(journey, code)),
        )
    journey = fresh(journey)
    assert (journey.day0_planned, journey.day0_actual, journey.day0) == (DAY0, date(2026, 3, 3), date(2026, 3, 3))
    monitoring = step_of(journey, "monitoring-day-1")
    assert monitoring.due_on == date(2026, 3, 4)
    assert monitoring.overdue_after == datetime(2026, 3, 5, 6, 0, tzinfo=BERLIN)
    assert step_of(journey, "visit-day-28").due_on == date(2026, 3, 31)
    assert step_of(journey, "qc-release").due_on == date(2026, 3, 17)  # done before: stays
    event = JourneyEvent.objects.get(journey=journey, kind=EventKind.ANCHOR_MOVED)
    assert (event.detail["from"], event.detail["to"]) == ("2026-03-24", "2026-03-03")
    with pytest.raises(TransitionNotAllowed, match="infused"):
        day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 3, 10), reason="late")


def test_day0_moved_across_the_spring_daylight_saving_change(journey, coordinator):
    # Clocks go forward at 02:00 on Sunday 29 March 2026: that local day has 23 hours.
    day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 3, 31), reason="Slot")
    ld_day_3 = step_of(journey, "ld-day-3")  # Day −3 = Saturday 28 March, grace 6 h
    assert ld_day_3.due_on == date(2026, 3, 28)
    midnight = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)
    assert midnight.utcoffset() == timedelta(hours=1)
    # Six real hours after local midnight: 05:00 UTC, which the ward clock shows as 07:00 summer time.
    assert ld_day_3.overdue_after == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    assert ld_day_3.overdue_after - midnight == timedelta(hours=6)
    admission = step_of(journey, "admission")  # Day −1 = Monday 30 March (summer time), grace 12 h
    assert admission.overdue_after == datetime(2026, 3, 31, 12, 0, tzinfo=BERLIN)


def test_day0_moved_across_the_autumn_daylight_saving_change(at_clinic, coordinator, protocol):
    at_clinic(2026, 10, 1, 9, 0)
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=date(2026, 10, 1)
    )
    # Clocks go back at 03:00 on Sunday 25 October 2026: that local day has 25 hours.
    day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 10, 28), reason="Slot")
    ld_day_4 = step_of(journey, "ld-day-4")  # Day −4 = Saturday 24 October, grace 6 h
    assert ld_day_4.due_on == date(2026, 10, 24)
    midnight = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)
    assert midnight.utcoffset() == timedelta(hours=2)
    assert ld_day_4.overdue_after == datetime(2026, 10, 25, 4, 0, tzinfo=UTC)  # 05:00 winter time
    assert ld_day_4.overdue_after - midnight == timedelta(hours=6)
