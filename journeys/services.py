"""Every write to a journey. One transaction each; the actor's role is checked first; every transition
writes a JourneyEvent and a history row in the same transaction.

Locking order, to keep two writers from deadlocking: the journey row first, then its steps.
"""

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from alerts.services import alert_raise
from carclinic.errors import Conflict, InvalidInput, NotPermitted, StaleVersion
from carclinic.plausible import check_schedulable
from clinical import dosing
from journeys import clock, protocol_files, records, selectors
from journeys.errors import JourneyAlreadyOpen, TransitionNotAllowed
from journeys.models import (
    OPEN_JOURNEY_STATUSES,
    Anchor,
    EventKind,
    Journey,
    JourneyEvent,
    JourneyStatus,
    Milestone,
    ProtocolTemplate,
    Stage,
    StageNumber,
    StageStatus,
    Step,
    StepStatus,
    StepTemplate,
)
from journeys.transitions import (
    guard_collection_day,
    guard_day0_reschedule,
    guard_discharge,
    guard_infusion,
    guard_journey,
    guard_journey_eligibility,
    guard_record_correction,
    guard_stage_complete,
    guard_stage_start,
    guard_step,
    guard_two_person,
    may_complete_stage,
    may_start_stage,
)
from patients.models import Consent, Patient
from staff.models import User
from staff.roles import Action, authorize, authorize_step_correction, authorize_step_resolution, can

# A performed time a few minutes ahead of the server's clock is a ward clock running fast, not a
# prediction; more than that is a typing error.
PERFORMED_AT_TOLERANCE = timedelta(minutes=5)
# Eligibility work-up starts weeks before collection; a date earlier than this is a typing error.
EARLIEST_WORK_UP_DAYS = timedelta(days=90)
SCHEDULE_FIELDS = ["due_on", "window_opens_on", "window_closes_on", "overdue_after", "overdue_since", "first_late_at", "version"]


def _event(
    journey: Journey,
    kind: str,
    *,
    actor,
    at: datetime,
    step: Step | None = None,
    stage_number=None,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    detail: dict | None = None,
) -> JourneyEvent:
    return JourneyEvent.objects.create(
        journey=journey,
        step=step,
        stage_number=stage_number if stage_number is not None else (step.stage.number if step else None),
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        detail=detail or {},
        actor=actor,
        at=at,
    )


def _save_journey(journey: Journey, actor, *, reason: str = "") -> None:
    journey.version += 1
    journey._history_user = actor
    journey._change_reason = reason or None
    journey.save()


def _require_reason(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("A reason is required.", field_errors={field: ["Give a reason; it goes into the audit trail."]})
    return reason


def _lock_journey(journey_id: int, expected_version: int | None = None) -> Journey:
    journey = Journey.objects.select_for_update().get(pk=journey_id)
    if expected_version is not None and journey.version != expected_version:
        raise StaleVersion("journey", expected_version, journey.version)
    return journey


@transaction.atomic
def journey_start(
    *, actor, patient_id: int, protocol_id: int, leukapheresis_date: date | None = None, day0_planned: date | None = None
) -> Journey:
    """Put a patient on a protocol: create the five stages and every step with its dates; stage 1 starts.

    A protocol without collection (an off-the-shelf product) takes no leukapheresis date: its steps hang on
    Day 0, and the journey keeps the day it started in `leukapheresis_date` as the work-up's reference."""
    authorize(actor, Action.START_JOURNEY)
    check_schedulable(leukapheresis_date, field="leukapheresis_date", today=timezone.localdate())
    check_schedulable(day0_planned, field="day0_planned", today=timezone.localdate())
    # Locking the patient serialises two coordinators starting a journey for the same patient.
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    if Journey.objects.filter(patient=patient, status__in=OPEN_JOURNEY_STATUSES).exists():
        raise JourneyAlreadyOpen("This patient already has an open journey; complete or withdraw it first.")
    try:
        protocol = ProtocolTemplate.objects.get(pk=protocol_id, is_active=True)
    except ProtocolTemplate.DoesNotExist:
        raise InvalidInput("Choose an active protocol.", field_errors={"protocol": ["Not an active protocol."]}) from None
    guard_journey_eligibility(
        protocol,
        patient,
        set(Consent.objects.filter(patient=patient, withdrawn_on=None).values_list("kind", flat=True)),
        timezone.localdate(),
    )
    templates = list(protocol.step_templates.all())
    if not templates:
        raise InvalidInput("This protocol has no steps.", field_errors={"protocol": ["The protocol has no steps."]})
    if protocol.collection and leukapheresis_date is None:
        raise InvalidInput(
            "Give the planned leukapheresis date.", field_errors={"leukapheresis_date": ["This protocol collects cells."]}
        )
    if not protocol.collection:
        if leukapheresis_date is not None:
            raise InvalidInput(
                "This protocol has no leukapheresis.",
                field_errors={"leukapheresis_date": ["An off-the-shelf product: no cells are collected; leave it empty."]},
            )
        leukapheresis_date = timezone.localdate()
    day0 = day0_planned or leukapheresis_date + timedelta(days=protocol.planned_vein_to_vein_days)
    if day0 < leukapheresis_date:
        raise InvalidInput(
            "Day 0 cannot come before leukapheresis.",
            field_errors={"day0_planned": ["Day 0 must be on or after the leukapheresis date."]},
        )

    now = timezone.now()
    journey = Journey(
        patient=patient,
        protocol=protocol,
        leukapheresis_date=leukapheresis_date,
        day0_planned=day0,
        started_at=now,
        started_by=actor,
    )
    journey._history_user = actor
    try:
        with transaction.atomic():
            journey.save()
    except IntegrityError:
        # The partial unique constraint caught a race the check above could not see.
        raise JourneyAlreadyOpen("This patient already has an open journey; complete or withdraw it first.") from None
    if protocol.locked_at is None:
        ProtocolTemplate.objects.filter(pk=protocol.pk, locked_at=None).update(locked_at=now)

    stages = Stage.objects.bulk_create(
        [Stage(journey=journey, number=number, status=StageStatus.PENDING) for number in StageNumber.values]
    )
    stage_by_number = {stage.number: stage for stage in stages}
    steps = []
    for template in templates:
        dates = clock.dates_for_template(template, journey.anchor_date(template.anchor))
        steps.append(
            Step(
                journey=journey,
                stage=stage_by_number[template.stage],
                template=template,
                due_on=dates.due_on,
                window_opens_on=dates.window_opens_on,
                window_closes_on=dates.window_closes_on,
                overdue_after=dates.overdue_after,
            )
        )
    bulk_create_with_history(steps, Step, default_user=actor, default_date=now)
    _event(
        journey,
        EventKind.JOURNEY_STARTED,
        actor=actor,
        at=now,
        to_state=JourneyStatus.ACTIVE,
        detail={
            "protocol": str(protocol),
            "leukapheresis_date": leukapheresis_date.isoformat() if protocol.collection else None,
            "day0_planned": day0.isoformat(),
        },
    )
    _stage_start(journey, stage_by_number[StageNumber.LEUKAPHERESIS], None, actor=actor, at=now)
    return journey


def _stage_start(journey: Journey, stage: Stage, previous: Stage | None, *, actor, at: datetime) -> None:
    guard_stage_start(journey, stage, previous)
    stage.status = StageStatus.IN_PROGRESS
    stage.started_at = at
    stage.save(update_fields=["status", "started_at"])
    journey.current_stage = stage.number
    _save_journey(journey, actor, reason=f"{stage.get_number_display()} started")
    _event(
        journey,
        EventKind.STAGE_STARTED,
        actor=actor,
        at=at,
        stage_number=stage.number,
        from_state=StageStatus.PENDING,
        to_state=StageStatus.IN_PROGRESS,
    )


def _advance(journey: Journey, *, actor, at: datetime) -> None:
    """Complete every in-progress stage whose required steps are resolved, and start the next one when its
    guard allows (lymphodepletion waits for the product's release)."""
    # Every step transition touches the journey, so that clients syncing "what changed since" see it.
    Journey.objects.filter(pk=journey.pk).update(updated_at=at)
    stages = {stage.number: stage for stage in journey.stages.select_for_update().order_by("number")}
    for number in StageNumber.values:
        stage = stages[number]
        if stage.status == StageStatus.PENDING:
            previous = stages.get(number - 1)
            if previous is None or not may_start_stage(journey, stage, previous):
                return
            _stage_start(journey, stage, previous, actor=actor, at=at)
        if stage.status != StageStatus.IN_PROGRESS:
            continue
        unresolved = list(
            stage.steps.filter(status=StepStatus.PENDING, template__required=True).values_list("template__name", flat=True)
        )
        if not may_complete_stage(stage, unresolved):
            return
        _stage_complete(journey, stage, unresolved, actor=actor, at=at)
    if journey.status == JourneyStatus.ACTIVE:
        guard_journey(journey, JourneyStatus.COMPLETED)
        journey.status = JourneyStatus.COMPLETED
        journey.ended_at = at
        _save_journey(journey, actor, reason="All five stages completed")
        _event(
            journey,
            EventKind.JOURNEY_COMPLETED,
            actor=actor,
            at=at,
            from_state=JourneyStatus.ACTIVE,
            to_state=JourneyStatus.COMPLETED,
        )


def _stage_complete(journey: Journey, stage: Stage, unresolved_required: list[str], *, actor, at: datetime) -> None:
    guard_stage_complete(stage, unresolved_required)
    # Optional steps still open when their stage closes will never be done; marking them not
    # applicable keeps them out of the overdue lists instead of nagging for ever.
    _close_pending_steps(
        journey,
        stage.steps.filter(status=StepStatus.PENDING),
        actor=actor,
        at=at,
        reason=f"{stage.get_number_display()} completed before this optional step",
    )
    stage.status = StageStatus.COMPLETED
    stage.completed_at = at
    stage.save(update_fields=["status", "completed_at"])
    _event(
        journey,
        EventKind.STAGE_COMPLETED,
        actor=actor,
        at=at,
        stage_number=stage.number,
        from_state=StageStatus.IN_PROGRESS,
        to_state=StageStatus.COMPLETED,
    )


def _close_pending_steps(journey: Journey, steps, *, actor, at: datetime, reason: str) -> int:
    steps = list(steps.select_related("stage"))
    for step in steps:
        _keep_lateness(journey, step, at)
        step.status = StepStatus.NOT_APPLICABLE
        step.completed_at = at
        step.skip_reason = reason
        step.overdue_since = None
        step.version += 1
    if steps:
        bulk_update_with_history(
            steps,
            Step,
            ["status", "completed_at", "skip_reason", "overdue_since", "first_late_at", "version"],
            default_user=actor,
            default_change_reason=reason,
            default_date=at,
        )
        JourneyEvent.objects.bulk_create(
            [
                JourneyEvent(
                    journey=journey,
                    step=step,
                    stage_number=step.stage.number,
                    kind=EventKind.STEP_NOT_APPLICABLE,
                    from_state=StepStatus.PENDING,
                    to_state=StepStatus.NOT_APPLICABLE,
                    reason=reason,
                    actor=actor,
                    at=at,
                )
                for step in steps
            ]
        )
    return len(steps)


def _lock_step(step_id: int) -> tuple[Journey, Step]:
    journey_id = Step.objects.values_list("journey_id", flat=True).get(pk=step_id)
    journey = _lock_journey(journey_id)
    step = Step.objects.select_for_update(of=("self",)).select_related("stage", "template", "completed_by").get(pk=step_id)
    step.journey = journey
    return journey, step


def _facts(journey: Journey, specs, performed_at: datetime | None, step_id: int | None = None):
    """The facts the computed fields of `specs` read (no query when the step computes nothing): the patient's,
    the done steps they name, and for the physician's review the grades of the monitoring days so far."""
    facts = selectors.record_facts(
        journey_id=journey.pk, patient_id=journey.patient_id, specs=specs, on=timezone.localdate(performed_at or timezone.now())
    )
    if facts is not None and records.reads_patient_facts(specs, ("crs_grades", "icans_grades")):
        crs, icans = selectors.monitoring_grades(journey_id=journey.id, besides_step_id=step_id)
        facts = dataclasses.replace(facts, crs_grades=crs, icans_grades=icans)
    return facts


def _second_signer(step: Step, username: str, password: str):
    """The second person of a two-person step, their password checked (None when the step has none or none
    was named). A wrong name or password is one message: it tells no one which names exist."""
    if not step.template.two_person or not (username or "").strip():
        return None
    second = User.objects.filter(username=username.strip(), is_active=True).first()
    if second is None or not password or not second.check_password(password):
        raise InvalidInput(
            "The second signature was refused.",
            field_errors={"second_signer_password": ["That user name and password do not match an active member of staff."]},
        )
    try:
        authorize_step_resolution(second, step.template.responsible_role)
    except NotPermitted as refused:
        raise InvalidInput(
            "The second signer may not sign this step.", field_errors={"second_signer_username": [f"{second}: {refused}"]}
        ) from None
    return second


def _authorize_overrides(actor, specs, record: dict, before: dict | None = None, second=None) -> list[dict]:
    """A value other than the computed one (a different CRS grade) is a physician's, with its reason; what was
    computed and what was recorded both go into the event, so the audit shows the overruling. A correction
    that leaves a physician's overruling as it was may be made by whoever may correct the step. On a
    two-person step the physician may be the second signer (a dose off its prescription confirmed at the bedside)."""
    changes = records.overrides(specs, record)
    if changes and (before is None or changes != records.overrides(specs, before)):
        if second is None or not can(second, Action.OVERRIDE_COMPUTED):
            authorize(actor, Action.OVERRIDE_COMPUTED)
    return [{key: change[key] for key in ("field", "computed", "recorded", "reason")} for change in changes]


def _keep_lateness(journey: Journey, step: Step, at: datetime) -> str | None:
    """Before a service clears what shows a step as late (its overdue flag, its dates, its pending status),
    keep when it first counted as late in `first_late_at`, which nothing clears: on-time figures count it.
    Returns that time (ISO) if the step is or was late, else None."""
    if step.first_late_at is None:
        step.journey = journey
        if step.overdue_since is not None:
            step.first_late_at = step.overdue_since
        elif step.is_overdue(at):
            # Late since its grace ran out, or since its stage started if it was blocked until then.
            step.first_late_at = max(step.overdue_after, step.stage.started_at or step.overdue_after)
    return step.first_late_at.isoformat() if step.first_late_at else None


def _check_step_version(step: Step, expected_version: int | None) -> None:
    if expected_version is not None and step.version != expected_version:
        raise StaleVersion("step", expected_version, step.version)


@transaction.atomic
def step_complete(
    *,
    actor,
    step_id: int,
    performed_at: datetime | None = None,
    notes: str = "",
    expected_version: int | None = None,
    signature_meaning: str = "performed",
    record: dict | None = None,
    released_by_order: bool = False,
    second_signer_username: str = "",
    second_signer_password: str = "",
) -> Step:
    """Record a step as done, with the values its template asks for (`record`, checked against the template's
    `record_fields`). The second of two people recording the same step is told who was first.

    A two-person step (the template's `two_person`) is signed also by a second, different person: their user
    name and password, verified here; both names go on the step and into the event.

    `released_by_order` is for manufacturing's release service only: it has authorised the release (a
    maker's API client may release) and is the one way to record the QC-release step of a journey whose
    product is made under a manufacturing order."""
    journey, step = _lock_step(step_id)
    if not released_by_order:
        authorize_step_resolution(actor, step.template.responsible_role)
    elif step.template.milestone != Milestone.PRODUCT_RELEASED:
        raise TransitionNotAllowed("Only the QC-release step is recorded by a manufacturing order.")
    guard_step(journey, step, StepStatus.DONE, released_by_order=released_by_order)
    _check_step_version(step, expected_version)
    now = timezone.now()
    performed_at = performed_at or now
    # The values first: a dose off its prescription is said (400, per field) before who may sign it.
    record = records.clean_record(
        step.template.record_fields, record, facts=_facts(journey, step.template.record_fields, performed_at, step.id)
    )
    second = _second_signer(step, second_signer_username, second_signer_password)
    guard_two_person(step, actor, second, actor_signed=not released_by_order)
    if step.template.milestone == Milestone.INFUSION:
        guard_infusion(
            journey,
            step,
            timezone.localdate(performed_at),
            journey.steps.filter(status=StepStatus.DONE).select_related("template", "stage"),
        )
    if step.template.milestone == Milestone.DISCHARGE:
        guard_discharge(journey, record, today=timezone.localdate())
    overridden = _authorize_overrides(actor, step.template.record_fields, record, second=second)
    overridden += _check_doses(journey, step, record, actor=actor, at=performed_at)
    if performed_at > now + PERFORMED_AT_TOLERANCE:
        raise InvalidInput("The time performed is in the future.", field_errors={"performed_at": ["Cannot be in the future."]})
    if timezone.localdate(performed_at) < journey.leukapheresis_date - EARLIEST_WORK_UP_DAYS:
        raise InvalidInput(
            "The time performed is long before this journey began.",
            field_errors={"performed_at": ["Too long before the leukapheresis date."]},
        )
    was_overdue_since = step.overdue_since
    _keep_lateness(journey, step, now)
    step.status = StepStatus.DONE
    step.performed_at = performed_at
    step.completed_at = now
    step.completed_by = actor
    step.signature_meaning = signature_meaning
    step.second_signed_by = second
    step.notes = notes
    step.record = record
    step.overdue_since = None
    step.version += 1
    step._history_user = actor
    step.save()
    _event(
        journey,
        EventKind.STEP_DONE,
        actor=actor,
        at=now,
        step=step,
        from_state=StepStatus.PENDING,
        to_state=StepStatus.DONE,
        detail={
            "performed_at": performed_at.isoformat(),
            "was_overdue_since": was_overdue_since.isoformat() if was_overdue_since else None,
            "record": record,
            **({"overrides": overridden} if overridden else {}),
            **({"second_signer": {"id": second.pk, "name": str(second)}} if second else {}),
        },
    )
    _raise_alerts(journey, step, record, actor=actor)
    _apply_milestone(journey, step, actor=actor, at=now)
    _advance(journey, actor=actor, at=now)
    return step


def _check_doses(journey: Journey, step: Step, record: dict, *, actor, at: datetime) -> list[dict]:
    """A weight-based dose with a schedule (tocilizumab) against the protocol's mg/kg and cap with the patient's
    weight on the day, and against the doses recorded before; outside it a physician confirms with a reason
    (returned for the event), anyone else is refused and nothing is written."""
    confirmed = []
    for spec in records.parse_specs(step.template.record_fields):
        check, given = spec.dose_check, record.get(spec.name)
        if check is None or not given:
            continue
        facts = selectors.patient_facts(patient_id=journey.patient_id, on=timezone.localdate(at))
        problems = []
        if facts.weight_kg is None:
            problems.append("No weight on file to check the dose against: weigh the patient first.")
        else:
            ceiling = dosing.weight_based_dose_max(facts.weight_kg, check.per_kg, check.cap)
            if Decimal(str(given)) > ceiling:
                problems.append(
                    f"{given} {spec.unit or ''} is above {check.per_kg}/kg × {facts.weight_kg} kg, at most "
                    f"{check.cap}: {ceiling.normalize():f} {spec.unit or ''}.".replace("  ", " ")
                )
        earlier = selectors.dose_times(journey_id=journey.id, field=spec.name, besides_step_id=step.id)
        problems += dosing.dose_schedule_problems(
            earlier,
            at,
            min_hours_apart=check.min_hours_apart,
            max_in_window=check.max_in_window,
            window_hours=check.window_hours,
            max_total=check.max_total,
        )
        if not problems:
            continue
        reason = (record.get(check.reason) or "").strip()
        if not reason:
            raise InvalidInput(
                "The dose is outside the protocol.",
                field_errors={records.error_key(spec.name): [*problems, "A physician may confirm it with a reason."]},
            )
        authorize(actor, Action.OVERRIDE_COMPUTED)
        confirmed.append({"field": spec.name, "computed": problems, "recorded": given, "reason": reason})
    return confirmed


def _raise_alerts(journey: Journey, step: Step, record: dict, *, actor, before: dict | None = None) -> None:
    """A finding the protocol alerts on (a computed CRS grade 2, any ICANS) raises its clinical alert in this
    transaction: the alert exists exactly when the record does. Keyed by step and value, so the same finding
    recorded twice raises once; a correction raises only a worse finding than the step held."""
    earlier = {
        finding["field"]: finding["value"] for finding in records.alert_findings(step.template.record_fields, before or {})
    }
    for finding in records.alert_findings(step.template.record_fields, record):
        if finding["value"] <= earlier.get(finding["field"], -1):
            continue
        alert_raise(
            patient_id=journey.patient_id,
            kind=finding["kind"],
            journey_id=journey.id,
            step_id=step.id,
            key=f"{finding['kind']}:{step.public_id}:{finding['value']}",
            raised_by=actor,
            escalate_after_minutes=finding["escalate_after_minutes"],
            summary=f"{finding['label']}: {finding['shown']}, recorded at {step.template.name}.",
            detail={"field": finding["field"], "value": finding["value"]},
        )


def _apply_milestone(journey: Journey, step: Step, *, actor, at: datetime) -> None:
    milestone = step.template.milestone
    performed_on = timezone.localdate(step.performed_at)
    if milestone == Milestone.COLLECTION and performed_on != journey.leukapheresis_date:
        guard_collection_day(journey, performed_on)
        _move_anchor(
            journey,
            Anchor.LEUKAPHERESIS,
            performed_on,
            actor=actor,
            at=at,
            reason="Leukapheresis performed on a different day than planned",
        )
    elif milestone == Milestone.PRODUCT_RELEASED:
        journey.product_released_at = step.performed_at
        _save_journey(journey, actor, reason="Product released by QC")
        _event(journey, EventKind.PRODUCT_RELEASED, actor=actor, at=at, step=step)
    elif milestone == Milestone.INFUSION:
        planned = journey.day0_planned
        journey.day0_actual = performed_on
        _save_journey(journey, actor, reason="Cells infused")
        if performed_on != planned:
            _move_anchor(
                journey,
                Anchor.DAY0,
                performed_on,
                actor=actor,
                at=at,
                old_date=planned,
                reason="Infusion performed on a different day than planned",
            )


def _move_anchor(
    journey: Journey, anchor: str, new_date: date, *, actor, at: datetime, reason: str, old_date: date | None = None
) -> int:
    """Set an anchor date and move every pending step hung on it; returns how many steps moved."""
    old_date = old_date or journey.anchor_date(anchor)
    if anchor == Anchor.LEUKAPHERESIS:
        journey.leukapheresis_date = new_date
    elif journey.day0_actual is None:
        journey.day0_planned = new_date
    _save_journey(journey, actor, reason=reason)
    steps = list(
        journey.steps.select_for_update(of=("self",))
        .select_related("template", "stage")
        .filter(status=StepStatus.PENDING, template__anchor=anchor)
    )
    late_steps = []
    for step in steps:
        # The move may put a late step back on time; the history keeps that it was late, here and in the event.
        late_since = _keep_lateness(journey, step, at)
        if late_since:
            late_steps.append({"step": str(step.public_id), "code": step.template.code, "late_since": late_since})
        dates = clock.dates_for_template(step.template, new_date)
        step.due_on, step.window_opens_on = dates.due_on, dates.window_opens_on
        step.window_closes_on, step.overdue_after = dates.window_closes_on, dates.overdue_after
        if step.overdue_since and step.overdue_after > at:
            step.overdue_since = None
        step.version += 1
    if steps:
        bulk_update_with_history(steps, Step, SCHEDULE_FIELDS, default_user=actor, default_change_reason=reason, default_date=at)
    _event(
        journey,
        EventKind.ANCHOR_MOVED,
        actor=actor,
        at=at,
        reason=reason,
        detail={
            "anchor": anchor,
            "from": old_date.isoformat(),
            "to": new_date.isoformat(),
            "steps_moved": len(steps),
            "late_steps": late_steps,
        },
    )
    return len(steps)


@transaction.atomic
def step_skip(*, actor, step_id: int, reason: str, expected_version: int | None = None) -> Step:
    """Skip a step with a reason (e.g. a visit the patient declined); required steps count as resolved."""
    authorize(actor, Action.SKIP_STEP)
    reason = _require_reason(reason)
    journey, step = _lock_step(step_id)
    authorize_step_resolution(actor, step.template.responsible_role, Action.SKIP_STEP)
    guard_step(journey, step, StepStatus.SKIPPED)
    _check_step_version(step, expected_version)
    now = timezone.now()
    _keep_lateness(journey, step, now)
    step.status = StepStatus.SKIPPED
    step.completed_at = now
    step.completed_by = actor
    step.skip_reason = reason
    step.overdue_since = None
    step.version += 1
    step._history_user = actor
    step._change_reason = reason
    step.save()
    _event(
        journey,
        EventKind.STEP_SKIPPED,
        actor=actor,
        at=now,
        step=step,
        reason=reason,
        from_state=StepStatus.PENDING,
        to_state=StepStatus.SKIPPED,
    )
    _advance(journey, actor=actor, at=now)
    return step


@transaction.atomic
def step_record_correct(
    *, actor, step_id: int, record: dict, notes: str, reason: str, expected_version: int | None = None
) -> Step:
    """Correct what a done step recorded (a value typed wrong), with a reason. The first record stays in
    the step's history and the correction's event holds both, so what was signed is never lost.

    The time performed is not corrected here: on a collection or an infusion it moves the schedule."""
    authorize(actor, Action.CORRECT_STEP)
    reason = _require_reason(reason)
    journey, step = _lock_step(step_id)
    authorize_step_correction(
        actor, responsible_role=step.template.responsible_role, recorded_by_id=step.completed_by_id, recorded_by=step.completed_by
    )
    guard_record_correction(step)
    _check_step_version(step, expected_version)
    # Computed fields are computed again from the corrected values and the patient as on the day performed.
    corrected = records.clean_record(
        step.template.record_fields, record, facts=_facts(journey, step.template.record_fields, step.performed_at, step.id)
    )
    overridden = _authorize_overrides(actor, step.template.record_fields, corrected, before=step.record or {})
    notes = (notes or "").strip()
    before = {"record": step.record or {}, "notes": step.notes}
    after = {"record": corrected, "notes": notes}
    if before == after:
        raise InvalidInput("Nothing was changed.", field_errors={"__all__": ["Change a value to correct it."]})
    changed = sorted(
        {name for name in {*before["record"], *corrected} if before["record"].get(name) != corrected.get(name)}
        | ({"notes"} if before["notes"] != notes else set())
    )
    now = timezone.now()
    step.record, step.notes = corrected, notes
    step.version += 1
    step._history_user = actor
    step._change_reason = reason
    step.save()
    _event(
        journey,
        EventKind.STEP_CORRECTED,
        actor=actor,
        at=now,
        step=step,
        reason=reason,
        from_state=StepStatus.DONE,
        to_state=StepStatus.DONE,
        detail={"changed": changed, "before": before, "after": after, **({"overrides": overridden} if overridden else {})},
    )
    _raise_alerts(journey, step, corrected, actor=actor, before=before["record"])
    return step


@transaction.atomic
def journey_hand_product_release_to_order(*, actor, journey_id: int, reason: str) -> Journey:
    """From now on the QC-release step is recorded by a manufacturing order's release, not by hand
    (manufacturing calls this when it creates the journey's first order)."""
    journey = _lock_journey(journey_id)
    if not journey.product_release_by_order:
        journey.product_release_by_order = True
        _save_journey(journey, actor, reason=reason)
    return journey


def journey_product_forecast(
    *, actor, journey_id: int, expected_release_on: date | None, out_of_specification: bool, reason: str
) -> Journey:
    """The plant's forecast for the journey's product (manufacturing calls this whenever an order's expected
    release or status changes): what the one "Day 0 at risk" rule reads besides the release itself."""
    journey = _lock_journey(journey_id)
    if (journey.product_expected_release_on, journey.product_out_of_specification) != (expected_release_on, out_of_specification):
        journey.product_expected_release_on = expected_release_on
        journey.product_out_of_specification = out_of_specification
        _save_journey(journey, actor, reason=reason)
    return journey


@transaction.atomic
def day0_reschedule(*, actor, journey_id: int, new_day0: date, reason: str, expected_version: int | None = None) -> Journey:
    """Move the planned Day 0; every pending step anchored on it moves too, and the move is recorded with its reason."""
    authorize(actor, Action.RESCHEDULE_DAY0)
    check_schedulable(new_day0, field="new_day0", today=timezone.localdate())
    reason = _require_reason(reason)
    journey = _lock_journey(journey_id, expected_version)
    guard_day0_reschedule(journey, new_day0, today=timezone.localdate())
    _move_anchor(journey, Anchor.DAY0, new_day0, actor=actor, at=timezone.now(), reason=reason)
    return journey


def _journey_change_status(
    *, actor, action: str, journey_id: int, to_status: str, reason: str, kind: str, expected_version: int | None
) -> Journey:
    authorize(actor, action)
    reason = _require_reason(reason)
    journey = _lock_journey(journey_id, expected_version)
    guard_journey(journey, to_status)
    now = timezone.now()
    from_status = journey.status
    journey.status = to_status
    journey.status_reason = reason
    if to_status == JourneyStatus.WITHDRAWN:
        journey.ended_at = now
        _close_pending_steps(
            journey, journey.steps.filter(status=StepStatus.PENDING), actor=actor, at=now, reason=f"Journey withdrawn: {reason}"
        )
    _save_journey(journey, actor, reason=reason)
    _event(journey, kind, actor=actor, at=now, from_state=from_status, to_state=to_status, reason=reason)
    return journey


@transaction.atomic
def journey_hold(*, actor, journey_id: int, reason: str, expected_version: int | None = None) -> Journey:
    """Pause a journey (an infection, a late product): no steps are recorded or flagged overdue until resumed."""
    return _journey_change_status(
        actor=actor,
        action=Action.HOLD_JOURNEY,
        journey_id=journey_id,
        to_status=JourneyStatus.ON_HOLD,
        reason=reason,
        kind=EventKind.JOURNEY_HELD,
        expected_version=expected_version,
    )


@transaction.atomic
def journey_resume(*, actor, journey_id: int, reason: str, expected_version: int | None = None) -> Journey:
    """Take a journey off hold."""
    return _journey_change_status(
        actor=actor,
        action=Action.HOLD_JOURNEY,
        journey_id=journey_id,
        to_status=JourneyStatus.ACTIVE,
        reason=reason,
        kind=EventKind.JOURNEY_RESUMED,
        expected_version=expected_version,
    )


@transaction.atomic
def journey_withdraw(*, actor, journey_id: int, reason: str, expected_version: int | None = None) -> Journey:
    """End a journey early; its pending steps become not applicable and it accepts no more changes."""
    return _journey_change_status(
        actor=actor,
        action=Action.WITHDRAW_JOURNEY,
        journey_id=journey_id,
        to_status=JourneyStatus.WITHDRAWN,
        reason=reason,
        kind=EventKind.JOURNEY_WITHDRAWN,
        expected_version=expected_version,
    )


@transaction.atomic
def protocol_new_version(*, actor, protocol_id: int) -> ProtocolTemplate:
    """Copy a protocol and its steps into the next version, editable until a journey uses it.
    The old version stays as it was, so journeys on it keep their schedule."""
    authorize(actor, Action.MANAGE_PROTOCOLS)
    source = ProtocolTemplate.objects.get(pk=protocol_id)
    latest = ProtocolTemplate.objects.filter(name=source.name).order_by("-version").values_list("version", flat=True).first()
    copy = ProtocolTemplate.objects.create(
        name=source.name,
        version=latest + 1,
        description=source.description,
        indication=source.indication,
        planned_vein_to_vein_days=source.planned_vein_to_vein_days,
        release_lead_days=source.release_lead_days,
        infusion_rest_days=source.infusion_rest_days,
        collection=source.collection,
        minimum_age_years=source.minimum_age_years,
        maximum_age_years=source.maximum_age_years,
        consents_required=list(source.consents_required),
        proximity_restriction_days=source.proximity_restriction_days,
        proximity_restriction_hours=source.proximity_restriction_hours,
        driving_restriction_days=source.driving_restriction_days,
        discharge_whom_to_call=source.discharge_whom_to_call,
        is_active=False,
        content_hash=source.content_hash,
    )
    templates = list(source.step_templates.all())
    for template in templates:
        template.pk = None
        template.protocol = copy
    StepTemplate.objects.bulk_create(templates)
    return copy


class _System:
    """The product acting on its own: `migrate` loading a shipped protocol, a command run on the server by
    whoever runs the server. Recorded as no user, like the overdue scan."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = _System()


def _protocol_editor(actor):
    """The user to record for a protocol change (None for the system), once the actor may make one."""
    if actor is SYSTEM:
        return None
    authorize(actor, Action.MANAGE_PROTOCOLS)
    return actor


def _protocol_create(*, user, document: dict, activate: bool | None, reason: str) -> ProtocolTemplate:
    name = document["name"]
    latest = ProtocolTemplate.objects.filter(name=name).order_by("-version").values_list("version", flat=True).first()
    # The first version of a protocol is the one to offer; a later one waits until an administrator
    # activates it, as a copy made in admin does, so that loading a file never changes what new journeys get.
    is_active = latest is None if activate is None else activate
    protocol = ProtocolTemplate(
        name=name,
        version=(latest or 0) + 1,
        is_active=is_active,
        content_hash=protocol_files.content_hash(document),
        **{field: value for field, value in document.items() if field not in ("name", "steps")},
    )
    protocol._history_user = user
    protocol._change_reason = reason
    try:
        with transaction.atomic():
            protocol.save()
    except IntegrityError:
        raise Conflict(f"Someone made version {protocol.version} of “{name}” at the same moment; load the file again.") from None
    templates = [StepTemplate(protocol=protocol, **step) for step in document["steps"]]
    bulk_create_with_history(
        templates, StepTemplate, default_user=user, default_change_reason=reason, default_date=protocol.created_at
    )
    return protocol


@transaction.atomic
def protocol_load(*, actor, text: str | bytes, source: str = "", activate: bool | None = None) -> ProtocolTemplate:
    """Make the next version of the protocol a file describes (journeys.protocol_files); no existing version
    is touched. An invalid file raises InvalidProtocolFile, listing each problem with its place and line."""
    user = _protocol_editor(actor)
    document = protocol_files.parse(text).model_dump(mode="json")
    return _protocol_create(user=user, document=document, activate=activate, reason=f"Loaded from {source or 'a protocol file'}")


@transaction.atomic
def protocol_load_shipped() -> list[ProtocolTemplate]:
    """Load each protocol file carclinic ships (journeys/protocols/) unless a version of that protocol already
    has its content; run on every `migrate`. A release that changes a shipped file adds a new inactive version."""
    created = []
    for path in protocol_files.shipped_files():
        document = protocol_files.parse(path.read_bytes()).model_dump(mode="json")
        digest = protocol_files.content_hash(document)
        versions = list(ProtocolTemplate.objects.select_for_update().filter(name=document["name"]))
        for version in versions:
            if not version.content_hash:
                # A version made before the hash existed (version 1 from the old data migrations): its hash is
                # computed from what it holds, so identical content is found and nothing new is made.
                version.content_hash = protocol_files.content_hash(selectors.protocol_document(version))
                ProtocolTemplate.objects.filter(pk=version.pk).update(content_hash=version.content_hash)
        if any(version.content_hash == digest for version in versions):
            continue
        created.append(
            _protocol_create(user=None, document=document, activate=None, reason=f"Shipped with carclinic ({path.name})")
        )
    return created


def protocol_rehash(*, protocol_id: int) -> str:
    """Recompute a version's content hash after its content changed (admin's editor of an unlocked version)."""
    protocol = ProtocolTemplate.objects.get(pk=protocol_id)
    digest = protocol_files.content_hash(selectors.protocol_document(protocol))
    ProtocolTemplate.objects.filter(pk=protocol_id).update(content_hash=digest)
    return digest
