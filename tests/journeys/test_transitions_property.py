"""Random sequences of what the ward may do (or try to do) to a journey; after every action the journey's
invariants must hold in the database. Only domain errors are expected: anything else is a bug."""

import itertools
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db.models import Count
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from carclinic.errors import DomainError
from journeys.models import (
    RESOLVED_STEP_STATUSES,
    Journey,
    JourneyStatus,
    Milestone,
    ProtocolTemplate,
    Stage,
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
from journeys.transitions import UNSKIPPABLE_MILESTONES
from tests.factories import PatientFactory, UserFactory, make_protocol, minimal_record

_mrns = itertools.count()
ROLES = ["coordinator", "nurse", "physician", "viewer"]


def _record(step_id: int) -> dict:
    # The walk is about transitions, not records: every step carries what its template requires.
    return minimal_record(Step.objects.select_related("template").get(pk=step_id))


def pick(data, queryset):
    ids = list(queryset.order_by("id").values_list("id", flat=True))
    return data.draw(st.sampled_from(ids)) if ids else None


class JourneyMachine(RuleBasedStateMachine):
    """One fresh patient and journey per example; the users are made once per test run."""

    users: dict[str, object] = {}
    protocol_ids: list[int] = []

    @initialize(which=st.sampled_from([0, 1]))
    def start(self, which):
        self.protocol_id = self.protocol_ids[which]
        self.patient = PatientFactory(mrn=f"PROP{next(_mrns):07d}")
        self.journey = journey_start(
            actor=self.users["coordinator"],
            patient_id=self.patient.id,
            protocol_id=self.protocol_id,
            leukapheresis_date=timezone.localdate(),
        )
        self.closed_snapshot = None

    def attempt(self, call, **kwargs):
        try:
            call(**kwargs)
        except DomainError:
            pass  # the rule said no; the invariants below say whether it said no correctly

    # --- what people do -------------------------------------------------------------------------

    @rule(data=st.data(), role=st.sampled_from(ROLES), in_current_stage=st.booleans())
    def complete_a_pending_step(self, data, role, in_current_stage):
        steps = Step.objects.filter(journey=self.journey, status=StepStatus.PENDING)
        if in_current_stage:
            steps = steps.filter(stage__status=StageStatus.IN_PROGRESS)
        if step_id := pick(data, steps):
            was_active = Journey.objects.get(pk=self.journey.pk).status == JourneyStatus.ACTIVE
            self.attempt(step_complete, actor=self.users[role], step_id=step_id, record=_record(step_id))
            if not was_active:  # on hold, withdrawn or completed: no step may be recorded
                assert Step.objects.get(pk=step_id).status != StepStatus.DONE

    @rule()
    def finish_the_current_stage(self):
        # Walks a whole stage at once so that twenty actions can reach the later stages.
        for step_id in Step.objects.filter(
            journey=self.journey, status=StepStatus.PENDING, stage__status=StageStatus.IN_PROGRESS
        ).values_list("id", flat=True):
            self.attempt(step_complete, actor=self.users["physician"], step_id=step_id, record=_record(step_id))

    @rule(
        data=st.data(),
        reason=st.sampled_from(["", "Patient declined the visit", "Done at the referring site"]),
        in_current_stage=st.booleans(),
    )
    def skip_a_pending_step(self, data, reason, in_current_stage):
        steps = Step.objects.filter(journey=self.journey, status=StepStatus.PENDING)
        if in_current_stage:
            steps = steps.filter(stage__status=StageStatus.IN_PROGRESS)
        if step_id := pick(data, steps):
            self.attempt(step_skip, actor=self.users["coordinator"], step_id=step_id, reason=reason)

    @rule(data=st.data(), role=st.sampled_from(ROLES))
    def record_a_resolved_step_again(self, data, role):
        if step_id := pick(data, Step.objects.filter(journey=self.journey).exclude(status=StepStatus.PENDING)):
            before = Step.objects.values("status", "completed_by", "completed_at", "version").get(pk=step_id)
            self.attempt(step_complete, actor=self.users[role], step_id=step_id, record=_record(step_id))
            assert Step.objects.values("status", "completed_by", "completed_at", "version").get(pk=step_id) == before

    @rule(days=st.integers(min_value=-10, max_value=30), reason=st.sampled_from(["", "Plant slot moved"]))
    def reschedule_day0(self, days, reason):
        journey = Journey.objects.get(pk=self.journey.pk)
        self.attempt(
            day0_reschedule,
            actor=self.users["physician"],
            journey_id=journey.id,
            new_day0=journey.day0_planned + timedelta(days=days),
            reason=reason,
        )

    @rule(role=st.sampled_from(ROLES))
    def hold(self, role):
        self.attempt(journey_hold, actor=self.users[role], journey_id=self.journey.id, reason="Infection")

    @rule(role=st.sampled_from(ROLES))
    def resume(self, role):
        self.attempt(journey_resume, actor=self.users[role], journey_id=self.journey.id, reason="Cleared")

    @rule(role=st.sampled_from(ROLES))
    def withdraw(self, role):
        self.attempt(journey_withdraw, actor=self.users[role], journey_id=self.journey.id, reason="Declined")

    @rule()
    def start_a_second_journey(self):
        self.attempt(
            journey_start,
            actor=self.users["coordinator"],
            patient_id=self.patient.id,
            protocol_id=self.protocol_id,
            leukapheresis_date=timezone.localdate(),
        )

    # --- what must always be true --------------------------------------------------------------------

    @invariant()
    def stages_run_in_order(self):
        journey = Journey.objects.get(pk=self.journey.pk)
        statuses = list(Stage.objects.filter(journey=journey).order_by("number").values_list("status", flat=True))
        assert len(statuses) == 5
        running = [n for n, status in enumerate(statuses, start=1) if status == StageStatus.IN_PROGRESS]
        assert len(running) <= 1, statuses
        if running:
            current = running[0]
        else:
            done = [n for n, status in enumerate(statuses, start=1) if status == StageStatus.COMPLETED]
            current = max(done)  # stage 1 starts with the journey, so something is completed
        assert journey.current_stage == current, (journey.current_stage, statuses)
        assert all(status == StageStatus.COMPLETED for status in statuses[: current - 1]), statuses
        assert all(status == StageStatus.PENDING for status in statuses[current:]), statuses
        if journey.status == JourneyStatus.COMPLETED:
            assert statuses == [StageStatus.COMPLETED] * 5
        if statuses[2] != StageStatus.PENDING:
            assert journey.product_released_at is not None

    @invariant()
    def steps_are_consistent(self):
        journey = Journey.objects.get(pk=self.journey.pk)
        steps = Step.objects.filter(journey=journey)
        assert not steps.filter(status__in=RESOLVED_STEP_STATUSES, completed_at=None).exists()
        assert not steps.filter(status=StepStatus.DONE, completed_by=None).exists()
        assert not steps.filter(status=StepStatus.SKIPPED, skip_reason="").exists()
        # Nobody records or skips a step of a stage that has not started; only withdrawal closes them.
        assert not steps.filter(stage__status=StageStatus.PENDING, status__in=[StepStatus.DONE, StepStatus.SKIPPED]).exists()
        if journey.status != JourneyStatus.WITHDRAWN:
            assert not steps.filter(stage__status=StageStatus.PENDING).exclude(status=StepStatus.PENDING).exists()
        else:
            assert not steps.filter(status=StepStatus.PENDING).exists()
        # Collection, QC release and infusion carry facts the journey needs: done, never skipped.
        assert not steps.filter(template__milestone__in=UNSKIPPABLE_MILESTONES, status=StepStatus.SKIPPED).exists()
        infused = steps.filter(template__milestone=Milestone.INFUSION, status=StepStatus.DONE).exists()
        assert infused == (journey.day0_actual is not None)
        if steps.filter(template__milestone=Milestone.PRODUCT_RELEASED, status=StepStatus.DONE).exists():
            assert journey.product_released_at is not None
        # A completed stage leaves no step pending.
        assert not steps.filter(stage__status=StageStatus.COMPLETED, status=StepStatus.PENDING).exists()
        for step in steps.select_related("template").filter(status=StepStatus.PENDING):
            anchor = journey.anchor_date(step.template.anchor)
            assert step.due_on == anchor + timedelta(days=step.template.offset_days)

    @invariant()
    def closed_journeys_never_change(self):
        journey = Journey.objects.get(pk=self.journey.pk)
        if journey.status not in (JourneyStatus.WITHDRAWN, JourneyStatus.COMPLETED):
            return
        snapshot = (
            journey.status,
            journey.version,
            journey.day0_planned,
            journey.day0_actual,
            journey.current_stage,
            list(Step.objects.filter(journey=journey).order_by("id").values_list("status", "version", "due_on")),
            list(Stage.objects.filter(journey=journey).order_by("number").values_list("status", flat=True)),
        )
        if self.closed_snapshot is None:
            self.closed_snapshot = snapshot
        assert snapshot == self.closed_snapshot

    @invariant()
    def one_open_journey_per_patient(self):
        crowded = (
            Journey.objects.filter(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
            .values("patient")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not crowded.exists()


@pytest.mark.django_db
def test_random_sequences_of_actions_keep_the_journey_invariants():
    # Users once per run, not per example: fewer rows, and roles are what is drawn, not users.
    JourneyMachine.users = {}
    for role in ROLES:
        user = UserFactory(first_name=role.title(), last_name="Prop")
        user.groups.add(Group.objects.get(name=role))
        JourneyMachine.users[role] = user
    # The shipped protocol, and a short one whose release step is optional: there stage 2 can close
    # without a release, which is what the lymphodepletion guard is for.
    short = make_protocol(
        name="Short, optional release",
        steps=[
            dict(
                stage=1, code="collect", anchor="leukapheresis", offset_days=0, responsible_role="nurse", milestone="collection"
            ),
            dict(stage=1, code="photo", anchor="leukapheresis", offset_days=0, responsible_role="nurse", required=False),
            dict(stage=2, code="receipt", anchor="leukapheresis", offset_days=2, responsible_role="coordinator"),
            dict(
                stage=2,
                code="release",
                anchor="day0",
                offset_days=-7,
                window_before_days=5,
                responsible_role="coordinator",
                milestone="product_released",
                required=False,
            ),
            dict(stage=3, code="ld", anchor="day0", offset_days=-5, responsible_role="nurse"),
            dict(stage=4, code="infuse", anchor="day0", offset_days=0, responsible_role="nurse", milestone="infusion"),
            dict(stage=4, code="review", anchor="day0", offset_days=3, responsible_role="physician"),
            dict(stage=5, code="visit", anchor="day0", offset_days=28, responsible_role="nurse"),
        ],
    )
    JourneyMachine.protocol_ids = [ProtocolTemplate.objects.get(version=1, name__startswith="CD19").id, short.id]
    run_state_machine_as_test(
        JourneyMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
