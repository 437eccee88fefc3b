"""Every write to a journey. One transaction each; the actor's role is checked first; every transition
writes a JourneyEvent and a history row in the same transaction.

Locking order, to keep two writers from deadlocking: the journey row first, then its steps.
"""

from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from carclinic.errors import InvalidInput, StaleVersion
from journeys import clock, records
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
from journeys.transitions import guard_journey, guard_stage_complete, guard_stage_start, guard_step
from patients.models import Patient
from staff.roles import Action, NotPermitted, Role, authorize, authorize_step_resolution

# A performed time a few minutes ahead of the server's clock is a ward clock running fast, not a
# prediction; more than that is a typing error.
PERFORMED_AT_TOLERANCE = timedelta(minutes=5)
# Eligibility work-up starts weeks before collection; a date earlier than this is a typing error.
EARLIEST_WORK_UP_DAYS = timedelta(days=90)
SCHEDULE_FIELDS = ["due_on", "window_opens_on", "window_closes_on", "overdue_after", "overdue_since", "version"]


def _event(journey: Journey, kind: str, *, actor, at: datetime, step: Step | None = None, stage_number=None,
           from_state: str = "", to_state: str = "", reason: str = "", detail: dict | None = None) -> JourneyEvent:
    return JourneyEvent.objects.create(
        journey=journey, step=step, stage_number=stage_number if stage_number is not None else (step.stage.number if step else None),
        kind=kind, from_state=from_state, to_state=to_state, reason=reason, detail=detail or {}, actor=actor, at=at,
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
def journey_start(*, actor, patient_id: int, protocol_id: int, leukapheresis_date: date,
                  day0_planned: date | None = None) -> Journey:
    """Put a patient on a protocol: create the five stages and every step with its dates; stage 1 starts."""
    authorize(actor, Action.START_JOURNEY)
    # Locking the patient serialises two coordinators starting a journey for the same patient.
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    if Journey.objects.filter(patient=patient, status__in=OPEN_JOURNEY_STATUSES).exists():
        raise JourneyAlreadyOpen("This patient already has an open journey; complete or withdraw it first.")
    try:
        protocol = ProtocolTemplate.objects.get(pk=protocol_id, is_active=True)
    except ProtocolTemplate.DoesNotExist:
        raise InvalidInput("Choose an active protocol.", field_errors={"protocol": ["Not an active protocol."]}) from None
    templates = list(protocol.step_templates.all())
    if not templates:
        raise InvalidInput("This protocol has no steps.", field_errors={"protocol": ["The protocol has no steps."]})
    day0 = day0_planned or leukapheresis_date + timedelta(days=protocol.planned_vein_to_vein_days)
    if day0 < leukapheresis_date:
        raise InvalidInput("Day 0 cannot come before leukapheresis.",
                           field_errors={"day0_planned": ["Day 0 must be on or after the leukapheresis date."]})

    now = timezone.now()
    journey = Journey(patient=patient, protocol=protocol, leukapheresis_date=leukapheresis_date, day0_planned=day0,
                      started_at=now, started_by=actor)
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
        steps.append(Step(journey=journey, stage=stage_by_number[template.stage], template=template,
                          due_on=dates.due_on, window_opens_on=dates.window_opens_on,
                          window_closes_on=dates.window_closes_on, overdue_after=dates.overdue_after))
    bulk_create_with_history(steps, Step, default_user=actor, default_date=now)
    _event(journey, EventKind.JOURNEY_STARTED, actor=actor, at=now, to_state=JourneyStatus.ACTIVE,
           detail={"protocol": str(protocol), "leukapheresis_date": leukapheresis_date.isoformat(), "day0_planned": day0.isoformat()})
    _stage_start(journey, stage_by_number[StageNumber.LEUKAPHERESIS], None, actor=actor, at=now)
    return journey


def _stage_start(journey: Journey, stage: Stage, previous: Stage | None, *, actor, at: datetime) -> None:
    guard_stage_start(journey, stage, previous)
    stage.status = StageStatus.IN_PROGRESS
    stage.started_at = at
    stage.save(update_fields=["status", "started_at"])
    journey.current_stage = stage.number
    _save_journey(journey, actor, reason=f"{stage.get_number_display()} started")
    _event(journey, EventKind.STAGE_STARTED, actor=actor, at=at, stage_number=stage.number,
           from_state=StageStatus.PENDING, to_state=StageStatus.IN_PROGRESS)


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
            if previous is not None and previous.status == StageStatus.COMPLETED:
                if number == StageNumber.LYMPHODEPLETION and journey.product_released_at is None:
                    return
                _stage_start(journey, stage, previous, actor=actor, at=at)
            else:
                return
        if stage.status != StageStatus.IN_PROGRESS:
            continue
        unresolved = list(stage.steps.filter(status=StepStatus.PENDING, template__required=True)
                          .values_list("template__name", flat=True))
        if unresolved:
            return
        _stage_complete(journey, stage, actor=actor, at=at)
    if journey.status == JourneyStatus.ACTIVE:
        guard_journey(journey, JourneyStatus.COMPLETED)
        journey.status = JourneyStatus.COMPLETED
        journey.ended_at = at
        _save_journey(journey, actor, reason="All five stages completed")
        _event(journey, EventKind.JOURNEY_COMPLETED, actor=actor, at=at,
               from_state=JourneyStatus.ACTIVE, to_state=JourneyStatus.COMPLETED)


def _stage_complete(journey: Journey, stage: Stage, *, actor, at: datetime) -> None:
    guard_stage_complete(stage, [])
    # Optional steps still open when their stage closes will never be done; marking them not
    # applicable keeps them out of the overdue lists instead of nagging for ever.
    _close_pending_steps(journey, stage.steps.filter(status=StepStatus.PENDING), actor=actor, at=at,
                         reason=f"{stage.get_number_display()} completed before this optional step")
    stage.status = StageStatus.COMPLETED
    stage.completed_at = at
    stage.save(update_fields=["status", "completed_at"])
    _event(journey, EventKind.STAGE_COMPLETED, actor=actor, at=at, stage_number=stage.number,
           from_state=StageStatus.IN_PROGRESS, to_state=StageStatus.COMPLETED)


def _close_pending_steps(journey: Journey, steps, *, actor, at: datetime, reason: str) -> int:
    steps = list(steps.select_related("stage"))
    for step in steps:
        step.status = StepStatus.NOT_APPLICABLE
        step.completed_at = at
        step.skip_reason = reason
        step.overdue_since = None
        step.version += 1
    if steps:
        bulk_update_with_history(steps, Step, ["status", "completed_at", "skip_reason", "overdue_since", "version"],
                                 default_user=actor, default_change_reason=reason, default_date=at)
        JourneyEvent.objects.bulk_create([
            JourneyEvent(journey=journey, step=step, stage_number=step.stage.number, kind=EventKind.STEP_NOT_APPLICABLE,
                         from_state=StepStatus.PENDING, to_state=StepStatus.NOT_APPLICABLE, reason=reason, actor=actor, at=at)
            for step in steps
        ])
    return len(steps)


def _lock_step(step_id: int) -> tuple[Journey, Step]:
    journey_id = Step.objects.values_list("journey_id", flat=True).get(pk=step_id)
    journey = _lock_journey(journey_id)
    step = (Step.objects.select_for_update(of=("self",))
            .select_related("stage", "template", "completed_by").get(pk=step_id))
    return journey, step


def _check_step_version(step: Step, expected_version: int | None) -> None:
    if expected_version is not None and step.version != expected_version:
        raise StaleVersion("step", expected_version, step.version)


@transaction.atomic
def step_complete(*, actor, step_id: int, performed_at: datetime | None = None, notes: str = "",
                  expected_version: int | None = None, signature_meaning: str = "performed",
                  record: dict | None = None, released_by_order: bool = False) -> Step:
    """Record a step as done, with the values its template asks for (`record`, checked against the template's
    `record_fields`). The second of two people recording the same step is told who was first.

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
    record = records.clean_record(step.template.record_fields, record)
    now = timezone.now()
    performed_at = performed_at or now
    if performed_at > now + PERFORMED_AT_TOLERANCE:
        raise InvalidInput("The time performed is in the future.", field_errors={"performed_at": ["Cannot be in the future."]})
    if timezone.localdate(performed_at) < journey.leukapheresis_date - EARLIEST_WORK_UP_DAYS:
        raise InvalidInput("The time performed is long before this journey began.",
                           field_errors={"performed_at": ["Too long before the leukapheresis date."]})
    was_overdue_since = step.overdue_since
    step.status = StepStatus.DONE
    step.performed_at = performed_at
    step.completed_at = now
    step.completed_by = actor
    step.signature_meaning = signature_meaning
    step.notes = notes
    step.record = record
    step.overdue_since = None
    step.version += 1
    step._history_user = actor
    step.save()
    _event(journey, EventKind.STEP_DONE, actor=actor, at=now, step=step, from_state=StepStatus.PENDING,
           to_state=StepStatus.DONE, detail={"performed_at": performed_at.isoformat(),
                                             "was_overdue_since": was_overdue_since.isoformat() if was_overdue_since else None,
                                             "record": record})
    _apply_milestone(journey, step, actor=actor, at=now)
    _advance(journey, actor=actor, at=now)
    return step


def _apply_milestone(journey: Journey, step: Step, *, actor, at: datetime) -> None:
    milestone = step.template.milestone
    performed_on = timezone.localdate(step.performed_at)
    if milestone == Milestone.COLLECTION and performed_on != journey.leukapheresis_date:
        if performed_on > journey.day0_planned:
            raise InvalidInput("Collection after the planned Day 0: reschedule Day 0 first.",
                               field_errors={"performed_at": ["After the planned Day 0."]})
        _move_anchor(journey, Anchor.LEUKAPHERESIS, performed_on, actor=actor, at=at,
                     reason="Leukapheresis performed on a different day than planned")
    elif milestone == Milestone.PRODUCT_RELEASED:
        journey.product_released_at = step.performed_at
        _save_journey(journey, actor, reason="Product released by QC")
        _event(journey, EventKind.PRODUCT_RELEASED, actor=actor, at=at, step=step)
    elif milestone == Milestone.INFUSION:
        planned = journey.day0_planned
        journey.day0_actual = performed_on
        _save_journey(journey, actor, reason="Cells infused")
        if performed_on != planned:
            _move_anchor(journey, Anchor.DAY0, performed_on, actor=actor, at=at, old_date=planned,
                         reason="Infusion performed on a different day than planned")


def _move_anchor(journey: Journey, anchor: str, new_date: date, *, actor, at: datetime, reason: str,
                 old_date: date | None = None) -> int:
    """Set an anchor date and move every pending step hung on it; returns how many steps moved."""
    old_date = old_date or journey.anchor_date(anchor)
    if anchor == Anchor.LEUKAPHERESIS:
        journey.leukapheresis_date = new_date
    elif journey.day0_actual is None:
        journey.day0_planned = new_date
    _save_journey(journey, actor, reason=reason)
    steps = list(journey.steps.select_for_update().select_related("template")
                 .filter(status=StepStatus.PENDING, template__anchor=anchor))
    for step in steps:
        dates = clock.dates_for_template(step.template, new_date)
        step.due_on, step.window_opens_on = dates.due_on, dates.window_opens_on
        step.window_closes_on, step.overdue_after = dates.window_closes_on, dates.overdue_after
        if step.overdue_since and step.overdue_after > at:
            step.overdue_since = None
        step.version += 1
    if steps:
        bulk_update_with_history(steps, Step, SCHEDULE_FIELDS, default_user=actor, default_change_reason=reason, default_date=at)
    _event(journey, EventKind.ANCHOR_MOVED, actor=actor, at=at, reason=reason,
           detail={"anchor": anchor, "from": old_date.isoformat(), "to": new_date.isoformat(), "steps_moved": len(steps)})
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
    step.status = StepStatus.SKIPPED
    step.completed_at = now
    step.completed_by = actor
    step.skip_reason = reason
    step.overdue_since = None
    step.version += 1
    step._history_user = actor
    step._change_reason = reason
    step.save()
    _event(journey, EventKind.STEP_SKIPPED, actor=actor, at=now, step=step, reason=reason,
           from_state=StepStatus.PENDING, to_state=StepStatus.SKIPPED)
    _advance(journey, actor=actor, at=now)
    return step


# Who may correct a record someone else signed: the nurse who recorded it, or a supervisor role.
_CORRECT_ANYONES = frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN})


def may_correct_step(actor, step: Step) -> bool:
    """Whether this user may correct this step's record: its role's rule, and a nurse only what she recorded."""
    try:
        authorize_step_resolution(actor, step.template.responsible_role, Action.CORRECT_STEP)
    except NotPermitted:
        return False
    return step.completed_by_id == actor.pk or bool(actor.roles & _CORRECT_ANYONES)


def authorize_step_correction(actor, step: Step) -> None:
    authorize_step_resolution(actor, step.template.responsible_role, Action.CORRECT_STEP)
    if not may_correct_step(actor, step):
        raise NotPermitted(Action.CORRECT_STEP, f"{step.completed_by} recorded this step; ask them, a coordinator "
                                                "or a physician to correct it.")


@transaction.atomic
def step_record_correct(*, actor, step_id: int, record: dict, notes: str, reason: str,
                        expected_version: int | None = None) -> Step:
    """Correct what a done step recorded (a value typed wrong), with a reason. The first record stays in
    the step's history and the correction's event holds both, so what was signed is never lost.

    The time performed is not corrected here: on a collection or an infusion it moves the schedule."""
    authorize(actor, Action.CORRECT_STEP)
    reason = _require_reason(reason)
    journey, step = _lock_step(step_id)
    authorize_step_correction(actor, step)
    if step.status != StepStatus.DONE:
        raise TransitionNotAllowed(f"Only a step recorded as done has values to correct; this one is "
                                   f"{step.get_status_display().lower()}.")
    _check_step_version(step, expected_version)
    corrected = records.clean_record(step.template.record_fields, record)
    notes = (notes or "").strip()
    before = {"record": step.record or {}, "notes": step.notes}
    after = {"record": corrected, "notes": notes}
    if before == after:
        raise InvalidInput("Nothing was changed.", field_errors={"__all__": ["Change a value to correct it."]})
    changed = sorted({name for name in {*before["record"], *corrected}
                      if before["record"].get(name) != corrected.get(name)} | ({"notes"} if before["notes"] != notes else set()))
    now = timezone.now()
    step.record, step.notes = corrected, notes
    step.version += 1
    step._history_user = actor
    step._change_reason = reason
    step.save()
    _event(journey, EventKind.STEP_CORRECTED, actor=actor, at=now, step=step, reason=reason,
           from_state=StepStatus.DONE, to_state=StepStatus.DONE,
           detail={"changed": changed, "before": before, "after": after})
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


@transaction.atomic
def day0_reschedule(*, actor, journey_id: int, new_day0: date, reason: str, expected_version: int | None = None) -> Journey:
    """Move the planned Day 0; every pending step anchored on it moves too, and the move is recorded with its reason."""
    authorize(actor, Action.RESCHEDULE_DAY0)
    reason = _require_reason(reason)
    journey = _lock_journey(journey_id, expected_version)
    if not journey.is_open:
        raise TransitionNotAllowed(f"This journey is {journey.get_status_display().lower()}; its schedule is final.")
    if journey.day0_actual is not None:
        raise TransitionNotAllowed("The cells were infused already; Day 0 is a fact now, not a plan.")
    errors = []
    if new_day0 == journey.day0_planned:
        errors.append("This is already the planned Day 0.")
    if new_day0 < journey.leukapheresis_date:
        errors.append("Day 0 cannot come before leukapheresis.")
    if new_day0 < timezone.localdate():
        errors.append("Day 0 cannot be moved into the past.")
    if errors:
        raise InvalidInput(errors[0], field_errors={"new_day0": errors})
    _move_anchor(journey, Anchor.DAY0, new_day0, actor=actor, at=timezone.now(), reason=reason)
    return journey


def _journey_change_status(*, actor, action: str, journey_id: int, to_status: str, reason: str, kind: str,
                           expected_version: int | None) -> Journey:
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
        _close_pending_steps(journey, journey.steps.filter(status=StepStatus.PENDING), actor=actor, at=now,
                             reason=f"Journey withdrawn: {reason}")
    _save_journey(journey, actor, reason=reason)
    _event(journey, kind, actor=actor, at=now, from_state=from_status, to_state=to_status, reason=reason)
    return journey


@transaction.atomic
def journey_hold(*, actor, journey_id: int, reason: str, expected_version: int | None = None) -> Journey:
    """Pause a journey (an infection, a late product): no steps are recorded or flagged overdue until resumed."""
    return _journey_change_status(actor=actor, action=Action.HOLD_JOURNEY, journey_id=journey_id,
                                  to_status=JourneyStatus.ON_HOLD, reason=reason, kind=EventKind.JOURNEY_HELD,
                                  expected_version=expected_version)


@transaction.atomic
def journey_resume(*, actor, journey_id: int, reason: str, expected_version: int | None = None) -> Journey:
    """Take a journey off hold."""
    return _journey_change_status(actor=actor, action=Action.HOLD_JOURNEY, journey_id=journey_id,
                                  to_status=JourneyStatus.ACTIVE, reason=reason, kind=EventKind.JOURNEY_RESUMED,
                                  expected_version=expected_version)


@transaction.atomic
def journey_withdraw(*, actor, journey_id: int, reason: str, expected_version: int | None = None) -> Journey:
    """End a journey early; its pending steps become not applicable and it accepts no more changes."""
    return _journey_change_status(actor=actor, action=Action.WITHDRAW_JOURNEY, journey_id=journey_id,
                                  to_status=JourneyStatus.WITHDRAWN, reason=reason, kind=EventKind.JOURNEY_WITHDRAWN,
                                  expected_version=expected_version)


@transaction.atomic
def protocol_new_version(*, actor, protocol_id: int) -> ProtocolTemplate:
    """Copy a protocol and its steps into the next version, editable until a journey uses it.
    The old version stays as it was, so journeys on it keep their schedule."""
    authorize(actor, Action.MANAGE_PROTOCOLS)
    source = ProtocolTemplate.objects.get(pk=protocol_id)
    latest = ProtocolTemplate.objects.filter(name=source.name).order_by("-version").values_list("version", flat=True).first()
    copy = ProtocolTemplate.objects.create(
        name=source.name, version=latest + 1, description=source.description, indication=source.indication,
        planned_vein_to_vein_days=source.planned_vein_to_vein_days, is_active=False,
    )
    templates = list(source.step_templates.all())
    for template in templates:
        template.pk = None
        template.protocol = copy
    StepTemplate.objects.bulk_create(templates)
    return copy
