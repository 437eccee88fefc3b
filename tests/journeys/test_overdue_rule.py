"""One overdue rule, "blocked" apart from "overdue", "Day 0 at risk", and lateness that a Day 0 move cannot hide.

The clock is pinned in Berlin. Leukapheresis on 3 March 2026, Day 0 planned on 24 March (21 days, the
default protocol's vein-to-vein time). The default protocol puts the QC release on Day −7 (17 March,
window to 19 March, 12 h grace: late from 20 March 12:00), the creatinine clearance and dose review (the
first step of lymphodepletion) on Day −6 (18 March: late from 19 March 12:00) and the first fludarabine
day on Day −5 (19 March: late from 20 March 06:00).
"""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from journeys import selectors
from journeys.models import Day0Risk, EventKind, Journey, JourneyEvent, ProtocolTemplate, Step, StepStatus
from journeys.services import day0_reschedule, journey_hold, journey_product_forecast, journey_start, step_complete
from journeys.transitions import may_complete_stage, may_start_stage, stage_waits_for
from tests.factories import PatientFactory, lymphodepletion_earlier, minimal_record, second_signer

BERLIN = ZoneInfo("Europe/Berlin")
LEUKAPHERESIS = date(2026, 3, 3)
STAGE_3_CODES = {"renal-dose-review", "ld-day-5", "ld-day-4", "ld-day-3"}


def step_of(journey, code: str) -> Step:
    return Step.objects.select_related("template", "stage", "journey").get(journey=journey, template__code=code)


def complete_stage(journey, number: int, actor, *, except_codes=()) -> None:
    while step := (
        Step.objects.filter(journey=journey, stage__number=number, status=StepStatus.PENDING)
        .exclude(template__code__in=except_codes)
        .order_by("id")
        .first()
    ):
        step_complete(
            actor=actor, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )


def overdue_codes(journey, now) -> set[str]:
    return set(Step.objects.overdue(now).filter(journey=journey).values_list("template__code", flat=True))


@pytest.fixture
def waiting_for_release(at_clinic, coordinator, physician, protocol):
    """A journey whose cells are at the plant: stage 1 done, stage 2 done but for the QC release."""
    at_clinic(2026, 3, 3, 9, 0)
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
    )
    complete_stage(journey, 1, physician)
    complete_stage(journey, 2, physician, except_codes=("qc-release",))
    journey.refresh_from_db()
    assert journey.current_stage == 2 and journey.product_released_at is None
    return journey


# --- blocked, not overdue ----------------------------------------------------------------------------


def test_lymphodepletion_days_before_the_release_are_blocked_and_the_qc_release_is_the_late_one(at_clinic, waiting_for_release):
    journey = waiting_for_release
    # 20 March 07:00: the renal review (from 19 March 12:00) and the first fludarabine day (from 20 March
    # 06:00) are past their time, but their stage cannot start: blocked. The QC release is not late until noon.
    now = at_clinic(2026, 3, 20, 7, 0)
    ld_day_5 = step_of(journey, "ld-day-5")
    assert ld_day_5.overdue_after <= now
    assert ld_day_5.is_blocked and not ld_day_5.is_overdue(now)
    assert overdue_codes(journey, now) == set()
    assert STAGE_3_CODES <= set(Step.objects.blocked().filter(journey=journey).values_list("template__code", flat=True))

    now = at_clinic(2026, 3, 20, 12, 0)
    release = step_of(journey, "qc-release")
    assert release.is_overdue(now) and not release.is_blocked
    assert overdue_codes(journey, now) == {"qc-release"}
    # Every list that says "late" reads the same rule.
    assert [s.template.code for s in selectors.overdue_steps(now=now)] == ["qc-release"]
    assert [s.template.code for s in selectors.dashboard_overdue(now=now)] == ["qc-release"]
    assert [s.template.code for s in selectors.steps_overdue_filter(Step.objects.filter(journey=journey), True, now)] == [
        "qc-release"
    ]
    assert "ld-day-5" in set(
        selectors.steps_overdue_filter(Step.objects.filter(journey=journey), False, now).values_list("template__code", flat=True)
    )
    counts = {row["stage__number"]: row["overdue"] for row in selectors.stage_step_counts(journey_id=journey.id)}
    assert counts == {1: 0, 2: 1, 3: 0, 4: 0, 5: 0}
    patient = selectors.patients_for_api(patients=journey.patient.__class__.objects.filter(pk=journey.patient_id), now=now).get()
    assert patient.overdue_count == 1


def test_once_released_the_lymphodepletion_days_past_their_time_are_late(at_clinic, waiting_for_release, coordinator):
    journey = waiting_for_release
    at_clinic(2026, 3, 20, 13, 0)
    step_complete(
        actor=coordinator, step_id=step_of(journey, "qc-release").id, record=minimal_record(step_of(journey, "qc-release"))
    )
    now = at_clinic(2026, 3, 20, 13, 1)
    # Now they could be done and were not: late, and the release itself is done.
    assert overdue_codes(journey, now) == {"renal-dose-review", "ld-day-5"}
    assert not step_of(journey, "ld-day-4").is_blocked


def test_a_held_journey_has_nothing_overdue(at_clinic, waiting_for_release, coordinator):
    at_clinic(2026, 3, 20, 9, 0)
    journey_hold(actor=coordinator, journey_id=waiting_for_release.id, reason="Infection")
    now = at_clinic(2026, 3, 21, 9, 0)
    assert overdue_codes(waiting_for_release, now) == set()
    assert not step_of(waiting_for_release, "qc-release").is_overdue(now)


def test_a_blocked_step_waits_for_the_gate_in_front_of_it(waiting_for_release):
    journey = Journey.objects.get(pk=waiting_for_release.pk)
    assert stage_waits_for(journey, 3) == "QC release"
    assert stage_waits_for(journey, 5) == "QC release"
    journey.product_released_at = datetime(2026, 3, 17, 10, 0, tzinfo=BERLIN)
    assert stage_waits_for(journey, 4) == "Lymphodepletion"
    assert stage_waits_for(journey, 2) == "Leukapheresis"


def test_the_stage_predicates_say_what_the_guards_say(waiting_for_release):
    journey = Journey.objects.get(pk=waiting_for_release.pk)
    stages = {stage.number: stage for stage in journey.stages.all()}
    # Re-engineering is under way with its release pending: neither may it complete nor lymphodepletion start.
    assert not may_complete_stage(stages[2], ["QC release"])
    assert may_complete_stage(stages[2], [])
    assert not may_start_stage(journey, stages[3], stages[2])
    stages[2].status = "completed"
    assert not may_start_stage(journey, stages[3], stages[2])  # completed, but not released
    journey.product_released_at = datetime(2026, 3, 17, 10, 0, tzinfo=BERLIN)
    assert may_start_stage(journey, stages[3], stages[2])
    assert not may_start_stage(journey, stages[1], None)  # already under way


# --- Day 0 at risk ---------------------------------------------------------------------------------


def at_risk(journey, today: date) -> tuple[bool, bool, list[int]]:
    """The rule three ways: the queryset, the loaded journey, the dashboard's list."""
    loaded = Journey.objects.with_release_needed_by().get(pk=journey.pk)
    return (
        Journey.objects.day0_at_risk(today).filter(pk=journey.pk).exists(),
        loaded.is_day0_at_risk(today),
        [j.pk for j in selectors.dashboard_day0_at_risk(today=today)],
    )


def test_day0_is_at_risk_once_the_release_is_later_than_the_protocols_lead_time(at_clinic, waiting_for_release, coordinator):
    journey = waiting_for_release
    # Lymphodepletion's first step is on 18 March; the shipped protocol wants the product one day before.
    loaded = Journey.objects.with_release_needed_by().get(pk=journey.pk)
    assert loaded.protocol.release_lead_days == 1
    assert loaded.release_needed_by == date(2026, 3, 17)
    at_clinic(2026, 3, 17, 23, 59)
    assert at_risk(journey, date(2026, 3, 17)) == (False, False, [])
    at_clinic(2026, 3, 18, 0, 0)
    assert at_risk(journey, date(2026, 3, 18)) == (True, True, [journey.pk])

    # Released: no longer at risk, though late.
    at_clinic(2026, 3, 18, 10, 0)
    release = step_of(journey, "qc-release")
    step_complete(
        actor=coordinator,
        step_id=release.id,
        record=minimal_record(release),
        **second_signer(release),
        **lymphodepletion_earlier(release),
    )
    assert at_risk(journey, date(2026, 3, 18)) == (False, False, [])


@pytest.mark.parametrize(
    ("expected_release_on", "out_of_specification", "on_day", "risk"),
    [
        # Needed by 17 March (lymphodepletion from 18 March, lead time 1 day); the plant's forecast decides before.
        (None, False, date(2026, 3, 10), None),
        (date(2026, 3, 17), False, date(2026, 3, 10), None),  # on the day it is needed: in time
        (date(2026, 3, 18), False, date(2026, 3, 10), Day0Risk.RELEASE_EXPECTED_LATE),  # one day after it
        (date(2026, 3, 12), True, date(2026, 3, 10), Day0Risk.OUT_OF_SPECIFICATION),  # failed QC, whatever the date
        (date(2026, 3, 12), False, date(2026, 3, 18), Day0Risk.RELEASE_OVERDUE),  # forecast in time, but the day passed
    ],
)
def test_the_plants_forecast_puts_day0_at_risk_before_the_day_passes(
    at_clinic, waiting_for_release, coordinator, expected_release_on, out_of_specification, on_day, risk
):
    journey = journey_product_forecast(
        actor=coordinator,
        journey_id=waiting_for_release.id,
        expected_release_on=expected_release_on,
        out_of_specification=out_of_specification,
        reason="Plant forecast",
    )
    loaded = Journey.objects.with_release_needed_by().get(pk=journey.pk)
    assert loaded.day0_risk(on_day) == risk
    assert at_risk(journey, on_day) == (risk is not None, risk is not None, [journey.pk] if risk else [])


def test_a_forecast_that_does_not_change_writes_nothing(waiting_for_release, coordinator):
    forecast = dict(expected_release_on=date(2026, 3, 16), out_of_specification=False, reason="Plant forecast")
    first = journey_product_forecast(actor=coordinator, journey_id=waiting_for_release.id, **forecast)
    again = journey_product_forecast(actor=coordinator, journey_id=waiting_for_release.id, **forecast)
    assert again.version == first.version == waiting_for_release.version + 1
    assert first.history.first().history_change_reason == "Plant forecast"


def test_the_lead_time_is_protocol_data(at_clinic, waiting_for_release):
    ProtocolTemplate.objects.filter(pk=waiting_for_release.protocol_id).update(release_lead_days=3)
    assert Journey.objects.with_release_needed_by().get(pk=waiting_for_release.pk).release_needed_by == date(2026, 3, 15)
    assert at_risk(waiting_for_release, date(2026, 3, 15))[0] is False
    assert at_risk(waiting_for_release, date(2026, 3, 16)) == (True, True, [waiting_for_release.pk])


def test_moving_day0_moves_the_day_the_product_is_needed_by(at_clinic, waiting_for_release, coordinator):
    at_clinic(2026, 3, 18, 9, 0)
    assert at_risk(waiting_for_release, date(2026, 3, 18))[0]
    day0_reschedule(
        actor=coordinator, journey_id=waiting_for_release.id, new_day0=date(2026, 3, 31), reason="Plant reports a late release"
    )
    loaded = Journey.objects.with_release_needed_by().get(pk=waiting_for_release.pk)
    assert loaded.release_needed_by == date(2026, 3, 24)
    assert at_risk(waiting_for_release, date(2026, 3, 18)) == (False, False, [])


def test_a_held_journey_is_not_shown_at_risk(at_clinic, waiting_for_release, coordinator):
    at_clinic(2026, 3, 18, 9, 0)
    journey_hold(actor=coordinator, journey_id=waiting_for_release.id, reason="Infection")
    assert at_risk(waiting_for_release, date(2026, 3, 18)) == (False, False, [])


def test_the_dashboard_list_costs_one_query_however_many_journeys(at_clinic, coordinator, protocol, django_assert_num_queries):
    at_clinic(2026, 2, 1, 9, 0)
    for _ in range(3):
        journey_start(
            actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
        )
    with django_assert_num_queries(1):
        few = [
            (j.patient.mrn, j.protocol.name, j.release_needed_by)
            for j in selectors.dashboard_day0_at_risk(today=date(2026, 3, 20))
        ]
    for _ in range(30):
        journey_start(
            actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
        )
    with django_assert_num_queries(1):
        many = [
            (j.patient.mrn, j.protocol.name, j.release_needed_by)
            for j in selectors.dashboard_day0_at_risk(today=date(2026, 3, 20))
        ]
    assert len(few) == 3 and len(many) == 33


# --- lateness survives a Day 0 move ------------------------------------------------------------------


def test_moving_day0_keeps_that_the_release_was_late(at_clinic, waiting_for_release, coordinator):
    journey = waiting_for_release
    flagged = at_clinic(2026, 3, 20, 12, 1)
    Step.objects.filter(journey=journey, template__code="qc-release").update(overdue_since=flagged)  # as the scan does
    at_clinic(2026, 3, 20, 15, 0)
    day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 3, 31), reason="Plant reports a late release")
    now = at_clinic(2026, 3, 20, 15, 1)

    release = step_of(journey, "qc-release")
    assert not release.is_overdue(now) and release.overdue_since is None  # on time again by the new plan
    assert release.first_late_at == flagged  # but it was late, and that stays
    moved = JourneyEvent.objects.get(journey=journey, kind=EventKind.ANCHOR_MOVED)
    [late] = moved.detail["late_steps"]
    assert (late["step"], late["code"]) == (str(release.public_id), "qc-release")
    assert datetime.fromisoformat(late["late_since"]) == flagged
    # The history keeps it too, and completing it later does not clear it.
    assert release.history.first().first_late_at == flagged
    step_complete(
        actor=coordinator,
        step_id=release.id,
        record=minimal_record(release),
        **second_signer(release),
        **lymphodepletion_earlier(release),
    )
    assert step_of(journey, "qc-release").first_late_at == flagged


def test_a_late_step_the_scan_has_not_flagged_yet_is_kept_as_late_from_its_time(at_clinic, waiting_for_release, coordinator):
    journey = waiting_for_release
    at_clinic(2026, 3, 20, 12, 30)  # late since 12:00, no scan ran
    day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 3, 31), reason="Late release")
    release = step_of(journey, "qc-release")
    assert release.first_late_at == datetime(2026, 3, 20, 12, 0, tzinfo=BERLIN)
    # The blocked lymphodepletion days were never late: they could not be done.
    assert all(step_of(journey, code).first_late_at is None for code in STAGE_3_CODES)
    moved = JourneyEvent.objects.get(journey=journey, kind=EventKind.ANCHOR_MOVED)
    assert [late["code"] for late in moved.detail["late_steps"]] == ["qc-release"]


def test_a_step_done_late_keeps_when_it_became_late_and_one_done_on_time_has_none(at_clinic, coordinator, physician, protocol):
    at_clinic(2026, 3, 3, 9, 0)
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
    )
    # The eligibility labs' window closed 1 March (late from 3 March 00:00 Berlin), before the journey began:
    # late from the moment their stage started, 09:00.
    at_clinic(2026, 3, 3, 10, 0)
    labs = step_of(journey, "eligibility-labs")
    step_complete(
        actor=physician, step_id=labs.id, record=minimal_record(labs), **second_signer(labs), **lymphodepletion_earlier(labs)
    )
    assert labs.overdue_after < datetime(2026, 3, 3, 9, 0, tzinfo=BERLIN)
    assert step_of(journey, "eligibility-labs").first_late_at == datetime(2026, 3, 3, 9, 0, tzinfo=BERLIN)
    signoff = step_of(journey, "eligibility-signoff")  # the collection waits for it
    step_complete(actor=physician, step_id=signoff.id, record=minimal_record(signoff))
    collection = step_of(journey, "leukapheresis")  # due today
    step_complete(
        actor=physician,
        step_id=collection.id,
        record=minimal_record(collection),
        **second_signer(collection),
        **lymphodepletion_earlier(collection),
    )
    assert step_of(journey, "leukapheresis").first_late_at is None
