"""The overdue scan: flags what is late in one statement, un-flags what was resolved, plans reminders once."""

from datetime import date, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from journeys.models import Step, StepStatus
from journeys.services import day0_reschedule, journey_hold, journey_resume, step_complete
from notifications.models import Channel, Reminder, ReminderKind, ScanRun, StepReminderPolicy, UserNotificationPreference
from notifications.services import overdue_scan
from tests.factories import lymphodepletion_earlier, minimal_record, second_signer
from tests.notifications.conftest import LEUKAPHERESIS, local

# Eligibility labs (leukapheresis −7, window +5 days, grace 24 h) are overdue from 00:00 on 2 March.
LABS_OVERDUE_AT = local(date(2026, 3, 2))


# Eligibility sign-off (a physician's step: leukapheresis −2, window +1 day, grace 24 h): overdue from 00:00
# on 3 March, escalated from 00:00 on 4 March.
SIGNOFF_ESCALATED_AT = local(date(2026, 3, 4))


def _step(journey, code):
    return Step.objects.get(journey=journey, template__code=code)


def _finish_stage_1(journey, physician):
    """Record every step of stage 1, so that stage 2 (manufacturing) starts (a physician may record any step)."""
    while step := (Step.objects.filter(journey=journey, stage__number=1, status=StepStatus.PENDING).order_by("id").first()):
        step_complete(
            actor=physician, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )


def test_scan_flags_exactly_the_steps_past_window_and_grace(start_journey):
    journey = start_journey()
    overdue_scan(now=LABS_OVERDUE_AT - timedelta(seconds=1))
    assert not Step.objects.filter(overdue_since__isnull=False).exists()

    result = overdue_scan(now=LABS_OVERDUE_AT)
    assert result.flagged == 1
    assert _step(journey, "eligibility-labs").overdue_since == LABS_OVERDUE_AT
    # A second scan finds nothing new: the flag's time is when it was first noticed.
    assert overdue_scan(now=LABS_OVERDUE_AT + timedelta(minutes=1)).flagged == 0
    assert _step(journey, "eligibility-labs").overdue_since == LABS_OVERDUE_AT


def test_overdue_reminder_goes_to_the_patients_own_nurse_and_the_escalation_to_the_coordinator(
    start_journey, staff_team, make_user
):
    journey = start_journey()
    make_user("nurse")  # another nurse on the ward: not this patient's
    overdue_scan(now=LABS_OVERDUE_AT)
    overdue = Reminder.objects.filter(kind=ReminderKind.OVERDUE, step=_step(journey, "eligibility-labs"))
    assert {(r.recipient, r.channel) for r in overdue} == {
        (staff_team["nurse"], Channel.IN_APP),
        (staff_team["nurse"], Channel.EMAIL),
    }
    assert not Reminder.objects.filter(kind=ReminderKind.ESCALATION).exists()

    overdue_scan(now=LABS_OVERDUE_AT + timedelta(hours=24))
    # A nurse's step still late a day later goes up to the person who runs the schedule, not to a physician.
    escalation = Reminder.objects.filter(kind=ReminderKind.ESCALATION, step=_step(journey, "eligibility-labs"))
    assert {r.recipient for r in escalation} == {staff_team["coordinator"]}


def test_physicians_are_escalated_only_their_own_patients_physician_steps(start_journey, staff_team, make_user):
    treating = make_user("physician")
    journey = start_journey()
    journey.patient.physician = treating
    journey.patient.save()
    overdue_scan(now=SIGNOFF_ESCALATED_AT)
    escalated = set(Reminder.objects.filter(kind=ReminderKind.ESCALATION).values_list("step__template__code", "recipient"))
    # The sign-off is the treating physician's; the late labs (a nurse's) go to the coordinator. The other
    # physician on the ward (staff_team's) hears of neither.
    assert escalated == {("eligibility-signoff", treating.id), ("eligibility-labs", staff_team["coordinator"].id)}
    assert not Reminder.objects.filter(recipient=staff_team["physician"]).exclude(kind=ReminderKind.DIGEST).exists()


def test_a_physicians_step_without_a_treating_physician_here_is_escalated_to_the_coordinator(
    start_journey, staff_team, make_user
):
    departed = make_user("physician", is_active=False)
    journey = start_journey()
    journey.patient.physician = departed
    journey.patient.save()
    overdue_scan(now=SIGNOFF_ESCALATED_AT)
    escalation = Reminder.objects.filter(kind=ReminderKind.ESCALATION, step=_step(journey, "eligibility-signoff"))
    assert {r.recipient for r in escalation} == {staff_team["coordinator"]}


def test_a_step_whose_stage_has_not_started_is_blocked_not_overdue(start_journey, staff_team):
    # Day 0 on 23 March: QC release (stage 2, Day 0 −7, window +2, grace 12 h) is past its time from
    # 19 March 12:00, but stage 1 is not finished: manufacturing has not started, the step cannot be done.
    journey = start_journey(day0_planned=date(2026, 3, 23))
    release = _step(journey, "qc-release")
    assert release.is_blocked
    result = overdue_scan(now=local(date(2026, 3, 21), 12))  # two days later: escalation time too
    assert _step(journey, "qc-release").overdue_since is None
    assert not Reminder.objects.filter(step=release, kind__in=[ReminderKind.OVERDUE, ReminderKind.ESCALATION]).exists()
    # What is late is the gate in front of it: stage 1's steps are flagged and escalated.
    assert result.flagged == Step.objects.filter(journey=journey, stage__number=1).count()
    assert not Reminder.objects.filter(kind=ReminderKind.ESCALATION, recipient=staff_team["nurse"]).exists()


def test_unassigned_patient_falls_back_to_everyone_with_the_role(start_journey, staff_team, make_user):
    other_nurse = make_user("nurse")
    journey = start_journey(assigned=False)
    overdue_scan(now=LABS_OVERDUE_AT)
    recipients = set(
        Reminder.objects.filter(kind=ReminderKind.OVERDUE, step=_step(journey, "eligibility-labs")).values_list(
            "recipient", flat=True
        )
    )
    assert recipients == {staff_team["nurse"].id, other_nurse.id}


def test_a_scan_that_was_down_catches_up_and_skips_what_was_done_meanwhile(start_journey, nurse, physician):
    journey = start_journey()
    # Nobody scanned for two days; meanwhile the nurse drew the labs.
    step_complete(actor=nurse, step_id=_step(journey, "eligibility-labs").id)
    result = overdue_scan(now=local(date(2026, 3, 4), 13))
    flagged = set(Step.objects.filter(overdue_since__isnull=False).values_list("template__code", flat=True))
    # Sign-off (L−2, +1 day, 24 h grace) overdue from 3 Mar 00:00; leukapheresis (12 h grace) from 3 Mar 12:00.
    assert flagged == {"eligibility-signoff", "leukapheresis"}
    assert result.flagged == 2
    assert not Reminder.objects.filter(step=_step(journey, "eligibility-labs")).exclude(kind=ReminderKind.UPCOMING).exists()
    # The sign-off has been late for 37 h by now: the escalation is not postponed by the outage.
    assert Reminder.objects.filter(kind=ReminderKind.ESCALATION, step=_step(journey, "eligibility-signoff")).exists()


def test_completed_step_is_unflagged_and_its_scheduled_reminders_cancelled(start_journey, nurse):
    journey = start_journey()
    overdue_scan(now=LABS_OVERDUE_AT)
    labs = _step(journey, "eligibility-labs")
    assert Reminder.objects.filter(step=labs, state="pending").exists()
    # Completion clears the flag itself; the scan also cancels what was planned and not yet sent.
    step_complete(actor=nurse, step_id=labs.id)
    result = overdue_scan(now=LABS_OVERDUE_AT + timedelta(minutes=1))
    assert result.cancelled >= 2
    assert not Reminder.objects.filter(step=labs, state="pending").exists()
    assert set(Reminder.objects.filter(step=labs).values_list("cancel_reason", flat=True)) == {
        "The step was resolved before the reminder went out."
    }


def test_step_flag_is_cleared_when_its_overdue_time_moves_into_the_future(start_journey, coordinator, staff_team, time_machine):
    # Journey with Day 0 far ahead; a Day 0 step is flagged, then Day 0 moves later and the flag goes.
    journey = start_journey(leukapheresis_date=date(2026, 3, 2), day0_planned=date(2026, 3, 23))
    time_machine.move_to(local(LEUKAPHERESIS, 10), tick=False)  # recorded on the day of the collection
    _finish_stage_1(journey, staff_team["physician"])  # manufacturing has started: the release can be late
    step = _step(journey, "qc-release")  # Day 0 −7, window +2, grace 12 h: overdue from 19 Mar 12:00
    overdue_scan(now=local(date(2026, 3, 19), 12))
    assert _step(journey, "qc-release").overdue_since is not None
    time_machine.move_to(local(date(2026, 3, 19), 13), tick=False)
    day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=date(2026, 4, 6), reason="Product late")
    # Django's service already cleared the flag for the moved step; the scan agrees and cancels old-date reminders.
    result = overdue_scan(now=local(date(2026, 3, 19), 13))
    assert _step(journey, "qc-release").overdue_since is None
    assert not Reminder.objects.filter(step=step, state="pending", for_day=date(2026, 3, 16)).exists()
    assert result.cancelled >= 1


def test_held_journey_is_not_flagged(start_journey, coordinator, time_machine):
    journey = start_journey()
    journey_hold(actor=coordinator, journey_id=journey.id, reason="Infection")
    assert overdue_scan(now=LABS_OVERDUE_AT).flagged == 0


def test_overdue_reminder_cancelled_by_a_hold_goes_out_again_after_resume(start_journey, coordinator, staff_team):
    journey = start_journey()
    labs = _step(journey, "eligibility-labs")
    overdue_scan(now=LABS_OVERDUE_AT)
    reminder = Reminder.objects.get(step=labs, kind=ReminderKind.OVERDUE, channel=Channel.IN_APP)
    assert reminder.state == "pending"

    journey_hold(actor=coordinator, journey_id=journey.id, reason="Infection")
    overdue_scan(now=LABS_OVERDUE_AT + timedelta(minutes=1))
    reminder.refresh_from_db()
    assert reminder.state == "cancelled"

    journey_resume(actor=coordinator, journey_id=journey.id, reason="Infection treated")
    resumed_at = LABS_OVERDUE_AT + timedelta(hours=2)
    overdue_scan(now=resumed_at)
    reminder.refresh_from_db()
    assert (reminder.state, reminder.send_after, reminder.cancel_reason) == ("pending", resumed_at, "")
    # Still one row per step, kind, person and channel: revived, not duplicated.
    assert Reminder.objects.filter(step=labs, kind=ReminderKind.OVERDUE, channel=Channel.IN_APP).count() == 1


def test_upcoming_reminders_are_planned_ahead_on_the_clinic_clock(start_journey, staff_team):
    journey = start_journey()
    overdue_scan(now=local(date(2026, 2, 24), 9))
    leuk = _step(journey, "leukapheresis")  # due 2 March
    upcoming = Reminder.objects.get(step=leuk, kind=ReminderKind.UPCOMING, channel=Channel.IN_APP)
    on_the_day = Reminder.objects.get(step=leuk, kind=ReminderKind.DUE_TODAY, channel=Channel.IN_APP)
    assert upcoming.due_at == local(date(2026, 2, 28), 7)  # 48 h before 07:00 on the day
    assert on_the_day.due_at == local(date(2026, 3, 2), 7)
    assert upcoming.recipient == staff_team["nurse"]
    assert upcoming.state == on_the_day.state == "pending"


def test_step_template_policy_and_email_preference_are_respected(start_journey, staff_team):
    journey = start_journey()
    leuk = _step(journey, "leukapheresis")
    StepReminderPolicy.objects.create(step_template=leuk.template, upcoming_lead_hours=24, remind_on_the_day=False)
    UserNotificationPreference.objects.create(user=staff_team["nurse"], kind=ReminderKind.UPCOMING, email=False)
    overdue_scan(now=local(date(2026, 2, 24), 9))
    rows = Reminder.objects.filter(step=leuk)
    assert {(r.kind, r.channel) for r in rows} == {(ReminderKind.UPCOMING, Channel.IN_APP)}
    assert rows.get().due_at == local(date(2026, 3, 1), 7)


def test_digest_is_planned_once_per_coordinator_per_day_at_the_local_time(start_journey, staff_team):
    start_journey()
    overdue_scan(now=local(date(2026, 3, 4), 7, 29))
    assert not Reminder.objects.filter(kind=ReminderKind.DIGEST).exists()
    overdue_scan(now=local(date(2026, 3, 4), 7, 30))
    overdue_scan(now=local(date(2026, 3, 4), 7, 31))
    digests = Reminder.objects.filter(kind=ReminderKind.DIGEST)
    assert {(r.recipient, r.channel, r.for_day) for r in digests} == {
        (staff_team["coordinator"], Channel.IN_APP, date(2026, 3, 4)),
        (staff_team["coordinator"], Channel.EMAIL, date(2026, 3, 4)),
    }


def test_scan_statement_count_is_constant_whatever_the_clinic_size(start_journey):
    start_journey()
    with CaptureQueriesContext(connection) as small:
        overdue_scan(now=local(date(2026, 3, 4), 8))
    for _ in range(5):
        start_journey(leukapheresis_date=LEUKAPHERESIS + timedelta(days=1))
    with CaptureQueriesContext(connection) as large:
        result = overdue_scan(now=local(date(2026, 3, 5), 8))
    assert result.created > 20
    assert len(large.captured_queries) == len(small.captured_queries)
    assert ScanRun.objects.count() == 2


def test_scan_runs_within_a_fixed_query_budget(start_journey, django_assert_max_num_queries):
    for _ in range(4):
        start_journey()
    with django_assert_max_num_queries(20):
        overdue_scan(now=local(date(2026, 3, 4), 8))
    assert (
        Step.objects.filter(status=StepStatus.PENDING, overdue_since__isnull=False).count() == 4 * 3
    )  # labs, sign-off, leukapheresis


def test_a_long_lead_time_set_on_a_template_is_planned_in_time(start_journey):
    journey = start_journey()
    leuk = _step(journey, "leukapheresis")  # due 2 March
    StepReminderPolicy.objects.create(step_template=leuk.template, upcoming_lead_hours=10 * 24)
    overdue_scan(now=local(date(2026, 2, 19), 9))
    assert Reminder.objects.get(step=leuk, kind=ReminderKind.UPCOMING, channel=Channel.IN_APP).due_at == local(
        date(2026, 2, 20), 7
    )


def test_a_scan_after_a_recent_one_reads_only_what_changed_and_still_catches_the_clock(start_journey, staff_team, nurse):
    journey = start_journey()
    leukapheresis_escalated_at = local(date(2026, 3, 4), 12)  # late from 3 March 12:00 (12 h grace), +24 h
    first = overdue_scan(now=leukapheresis_escalated_at - timedelta(minutes=30))  # a sweep: the first scan
    assert first.flagged == 3
    leukapheresis = _step(journey, "leukapheresis")
    assert not Reminder.objects.filter(kind=ReminderKind.ESCALATION, step=leukapheresis).exists()
    # Half an hour later the clock, not a write, makes the escalation due.
    overdue_scan(now=leukapheresis_escalated_at)
    assert Reminder.objects.filter(kind=ReminderKind.ESCALATION, step=leukapheresis, recipient=staff_team["coordinator"]).exists()
    # A write between two scans (the labs drawn) is a journey event: the next minute's scan cancels.
    step_complete(actor=nurse, step_id=_step(journey, "eligibility-labs").id)
    result = overdue_scan(now=leukapheresis_escalated_at + timedelta(minutes=1))
    assert result.cancelled >= 2
    assert not Reminder.objects.filter(step=_step(journey, "eligibility-labs"), state="pending").exists()
    assert list(ScanRun.objects.order_by("started_at").values_list("full", flat=True)) == [True, False, False]
    # At least hourly, a sweep over everything catches what no event records.
    overdue_scan(now=leukapheresis_escalated_at + timedelta(minutes=30))
    assert ScanRun.objects.order_by("-started_at").first().full


def test_an_idle_minute_reads_neither_the_staff_nor_the_digest_nor_prunes(start_journey, time_machine):
    # The journey's events are written at the pinned wall clock, so that the next minutes really are idle.
    time_machine.move_to(local(date(2026, 3, 4), 8), tick=False)
    start_journey()
    sweep = overdue_scan(now=local(date(2026, 3, 4), 9))
    assert sweep.created > 0  # the sweep planned what was owed, the digest included
    time_machine.move_to(local(date(2026, 3, 4), 9, 30), tick=False)  # past the 10-minute settling margin
    with CaptureQueriesContext(connection) as idle:
        result = overdue_scan(now=local(date(2026, 3, 4), 9, 30))
    assert (result.flagged, result.unflagged, result.cancelled, result.created) == (0, 0, 0, 0)
    statements = [" ".join(query["sql"].split()) for query in idle.captured_queries if "SAVEPOINT" not in query["sql"]]
    # The previous scan, the previous sweep, the journeys changed since, one read of the pending steps'
    # overdue index (did the clock move anything?), and the run's own row: nothing else is planned or read.
    assert [sql.split(" WHERE ")[0].split(" (")[0] for sql in statements] == [
        'SELECT "notifications_scanrun"."started_at" AS "started_at" FROM "notifications_scanrun"',
        'SELECT "notifications_scanrun"."started_at" AS "started_at" FROM "notifications_scanrun"',
        'SELECT DISTINCT "journeys_journeyevent"."journey_id" AS "journey_id" FROM "journeys_journeyevent"',
        'SELECT 1 AS "a" FROM "journeys_step"',
        'INSERT INTO "notifications_scanrun"',
    ]
    assert not [sql for sql in statements if "JOIN" in sql]  # the rule's joins cost more to plan than to run


def test_a_coordinator_who_joins_after_the_digest_time_gets_it_from_the_next_sweep(start_journey, staff_team, make_user):
    start_journey()
    overdue_scan(now=local(date(2026, 3, 4), 7, 45))
    assert Reminder.objects.filter(kind=ReminderKind.DIGEST, recipient=staff_team["coordinator"]).exists()
    newcomer = make_user("coordinator")
    overdue_scan(now=local(date(2026, 3, 4), 7, 46))  # an ordinary minute does not look for digests again
    assert not Reminder.objects.filter(kind=ReminderKind.DIGEST, recipient=newcomer).exists()
    overdue_scan(now=local(date(2026, 3, 4), 8, 46))  # the hourly sweep does
    assert Reminder.objects.filter(kind=ReminderKind.DIGEST, recipient=newcomer, for_day=date(2026, 3, 4)).exists()


def test_in_an_idle_minute_the_clock_alone_still_flags_and_escalates(start_journey, staff_team, time_machine):
    # Leukapheresis (2 March) is late from 12:00 on 3 March and escalated from 12:00 on 4 March: mid-day, so
    # the scans around those times are ordinary minutes (not a new day's sweep), with no journey event.
    time_machine.move_to(local(date(2026, 3, 3), 11), tick=False)
    leukapheresis = _step(start_journey(), "leukapheresis")
    for day in (date(2026, 3, 3), date(2026, 3, 4)):
        time_machine.move_to(local(day, 11, 50), tick=False)
        overdue_scan(now=local(day, 11, 50))  # the first scan of the day: a sweep
        time_machine.move_to(local(day, 12, 1), tick=False)
        overdue_scan(now=local(day, 12, 1))
        assert ScanRun.objects.order_by("-started_at").first().full is False  # an ordinary minute did it
    leukapheresis.refresh_from_db()
    assert leukapheresis.overdue_since == local(date(2026, 3, 3), 12, 1)
    assert Reminder.objects.filter(kind=ReminderKind.OVERDUE, step=leukapheresis, recipient=staff_team["nurse"]).exists()
    escalation = Reminder.objects.get(
        kind=ReminderKind.ESCALATION, step=leukapheresis, recipient=staff_team["coordinator"], channel=Channel.IN_APP
    )
    assert escalation.due_at == local(date(2026, 3, 4), 12, 1)
