"""The one table of allowed journey, stage and step transitions, and the guards that apply it.

Services call these guards before they change anything; nothing else decides whether a change is
allowed. A guard raises the error the person at the screen should read; where a service only needs to
know (does the next stage start now?), it asks the predicate beside the guard, which applies the same rule.
"""

from datetime import date, timedelta

from django.utils import timezone

from carclinic.errors import DomainError, InvalidInput, NotPermitted
from journeys.errors import JourneyClosed, StageOrderViolation, StepAlreadyCompleted, TransitionNotAllowed
from journeys.models import JourneyStatus, Milestone, StageNumber, StageStatus, StepStatus
from patients.models import ConsentKind

JOURNEY_TRANSITIONS: dict[str, frozenset[str]] = {
    JourneyStatus.ACTIVE: frozenset({JourneyStatus.ON_HOLD, JourneyStatus.WITHDRAWN, JourneyStatus.COMPLETED}),
    JourneyStatus.ON_HOLD: frozenset({JourneyStatus.ACTIVE, JourneyStatus.WITHDRAWN}),
    JourneyStatus.COMPLETED: frozenset(),
    JourneyStatus.WITHDRAWN: frozenset(),
}

STAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    StageStatus.PENDING: frozenset({StageStatus.IN_PROGRESS}),
    StageStatus.IN_PROGRESS: frozenset({StageStatus.COMPLETED}),
    StageStatus.COMPLETED: frozenset(),
}

STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    StepStatus.PENDING: frozenset({StepStatus.DONE, StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE}),
    StepStatus.DONE: frozenset(),
    StepStatus.SKIPPED: frozenset(),
    StepStatus.NOT_APPLICABLE: frozenset(),
}

# These steps carry a fact the rest of the journey depends on (the collection date, the QC release,
# Day 0): they happen or the journey cannot go on, so they can be done but never skipped.
UNSKIPPABLE_MILESTONES = frozenset({Milestone.COLLECTION, Milestone.PRODUCT_RELEASED, Milestone.INFUSION})


def guard_journey(journey, to_status: str) -> None:
    if to_status not in JOURNEY_TRANSITIONS[journey.status]:
        if journey.status in (JourneyStatus.WITHDRAWN, JourneyStatus.COMPLETED):
            raise JourneyClosed(f"This journey is {journey.get_status_display().lower()}; it cannot change any more.")
        raise TransitionNotAllowed(
            f"A journey that is {journey.get_status_display().lower()} cannot become {JourneyStatus(to_status).label.lower()}."
        )


def guard_journey_eligibility(protocol, patient, consent_kinds_on_file: set[str], on: date) -> None:
    """May this patient start a journey on this protocol on `on`? Their age then within the protocol's limits,
    and every consent the protocol requires on file and not withdrawn (issue 13: a 10-year-old enrolled and a
    journey started with no consent on file). `consent_kinds_on_file`: the kinds signed and not withdrawn."""
    errors = []
    age = patient.age_on(on)
    if age < protocol.minimum_age_years:
        errors.append(f"The patient is {age}; this protocol treats patients from {protocol.minimum_age_years} years of age.")
    elif protocol.maximum_age_years is not None and age > protocol.maximum_age_years:
        errors.append(f"The patient is {age}; this protocol treats patients up to {protocol.maximum_age_years} years of age.")
    labels = dict(ConsentKind.choices)
    missing = [kind for kind in protocol.consents_required if kind not in consent_kinds_on_file]
    if missing:
        errors.append(
            "No consent on file (signed and not withdrawn) for: "
            + ", ".join(labels.get(kind, kind) for kind in missing)
            + ". Record the signed consent on the patient's page first."
        )
    if errors:
        raise InvalidInput("The patient cannot start this protocol.", field_errors={"patient": errors})


def _needs_release(stage_number: int) -> bool:
    # Conditioning chemotherapy before the cells pass QC would leave the patient lymphodepleted with
    # nothing to infuse.
    return stage_number == StageNumber.LYMPHODEPLETION


def _stage_start_refusal(journey, stage, previous_stage) -> DomainError | None:
    if StageStatus.IN_PROGRESS not in STAGE_TRANSITIONS[stage.status]:
        return TransitionNotAllowed(f"{stage.get_number_display()} has already started.")
    if previous_stage is not None and previous_stage.status != StageStatus.COMPLETED:
        return StageOrderViolation(
            f"{stage.get_number_display()} cannot start before {previous_stage.get_number_display()} is complete."
        )
    if _needs_release(stage.number) and journey.product_released_at is None:
        return StageOrderViolation("Lymphodepletion cannot start before the product is released by QC.")
    return None


def may_start_stage(journey, stage, previous_stage) -> bool:
    """Whether `stage` may start now (`guard_stage_start` without the error)."""
    return _stage_start_refusal(journey, stage, previous_stage) is None


def guard_stage_start(journey, stage, previous_stage) -> None:
    refusal = _stage_start_refusal(journey, stage, previous_stage)
    if refusal is not None:
        raise refusal


def stage_waits_for(journey, stage_number: int) -> str:
    """What keeps a stage that has not started from starting, in the clinic's words: the gate whose own
    step is the late one while this stage's steps are blocked."""
    if stage_number >= StageNumber.LYMPHODEPLETION and journey.product_released_at is None:
        return "QC release"
    return StageNumber(stage_number - 1).label


def _stage_complete_refusal(stage, unresolved_required: list[str]) -> DomainError | None:
    if StageStatus.COMPLETED not in STAGE_TRANSITIONS[stage.status]:
        return TransitionNotAllowed(f"{stage.get_number_display()} is not in progress.")
    if unresolved_required:
        return TransitionNotAllowed(
            f"{stage.get_number_display()} still has required steps: {', '.join(unresolved_required)}. "
            "Record them as done, or skip them with a reason."
        )
    return None


def may_complete_stage(stage, unresolved_required: list[str]) -> bool:
    """Whether `stage` may complete now: it is under way and no required step is left pending."""
    return _stage_complete_refusal(stage, unresolved_required) is None


def guard_stage_complete(stage, unresolved_required: list[str]) -> None:
    refusal = _stage_complete_refusal(stage, unresolved_required)
    if refusal is not None:
        raise refusal


def guard_record_correction(step) -> None:
    """Only what a step recorded as done can be corrected; a skipped or pending step has nothing signed."""
    if step.status != StepStatus.DONE:
        raise TransitionNotAllowed(
            f"Only a step recorded as done has values to correct; this one is {step.get_status_display().lower()}."
        )


def guard_day0_reschedule(journey, new_day0: date, *, today: date) -> None:
    """May the planned Day 0 move to `new_day0`? Only on an open journey, before the cells are infused,
    to another day that is neither before leukapheresis nor in the past."""
    if not journey.is_open:
        raise TransitionNotAllowed(f"This journey is {journey.get_status_display().lower()}; its schedule is final.")
    if journey.day0_actual is not None:
        raise TransitionNotAllowed("The cells were infused already; Day 0 is a fact now, not a plan.")
    errors = []
    if new_day0 == journey.day0_planned:
        errors.append("This is already the planned Day 0.")
    if new_day0 < journey.leukapheresis_date:
        errors.append("Day 0 cannot come before leukapheresis.")
    if new_day0 < today:
        errors.append("Day 0 cannot be moved into the past.")
    if errors:
        raise InvalidInput(errors[0], field_errors={"new_day0": errors})


def guard_collection_day(journey, performed_on: date) -> None:
    """A collection recorded on another day than planned moves the leukapheresis date, but never past the
    planned Day 0: the schedule would run backwards."""
    if performed_on > journey.day0_planned:
        raise InvalidInput(
            "Collection after the planned Day 0: reschedule Day 0 first.",
            field_errors={"performed_at": ["After the planned Day 0."]},
        )


def guard_infusion(journey, step, performed_on: date, done_steps) -> None:
    """The cells go in only after their collection, their QC release and the lymphodepletion days plus the
    protocol's rest days (issue 13: an infusion dated before the release, before the LD days, even before the
    leukapheresis was accepted, and Day 0 moved there). `done_steps`: the journey's done steps. An off-the-shelf
    product's protocol has no collection (`protocol.collection` false): only its release is asked for."""
    if step.template.milestone != Milestone.INFUSION:
        return
    problems = []
    by_milestone = {s.template.milestone: s for s in done_steps if s.template.milestone}
    needed = [(Milestone.COLLECTION, "the collection (leukapheresis)")] if journey.protocol.collection else []
    needed.append((Milestone.PRODUCT_RELEASED, "the product's QC release"))
    for milestone, what in needed:
        earlier = by_milestone.get(milestone)
        if earlier is None:
            problems.append(f"{what[0].upper()}{what[1:]} is not recorded yet: no infusion before it.")
        elif performed_on < timezone.localdate(earlier.performed_at):
            problems.append(f"Before {what} on {timezone.localdate(earlier.performed_at):%d %b %Y}.")
    lymphodepletion = [timezone.localdate(s.performed_at) for s in done_steps if s.stage.number == StageNumber.LYMPHODEPLETION]
    if lymphodepletion:
        rest, last = journey.protocol.infusion_rest_days, max(lymphodepletion)
        if (performed_on - last).days <= rest:
            problems.append(
                f"The last lymphodepletion day was {last:%d %b %Y}; the protocol asks for {rest} days of "
                f"rest, so the earliest infusion is {last + timedelta(days=rest + 1):%d %b %Y}."
            )
    if problems:
        raise InvalidInput("The infusion cannot be recorded on this day.", field_errors={"performed_at": problems})


def guard_discharge(journey, record: dict, *, today: date) -> None:
    """A discharge comes after the cells went in, on a day that has come (issue 13: a discharge 5 days before
    the infusion was accepted). The step waits for the infusion (done_after), so Day 0 is known."""
    discharged = record.get("discharge_date")
    if not discharged or journey.day0_actual is None:
        return
    discharged = date.fromisoformat(discharged)
    if discharged < journey.day0_actual:
        raise InvalidInput(
            "The discharge cannot come before the infusion.",
            field_errors={"record.discharge_date": [f"Before the infusion on {journey.day0_actual:%d %b %Y} (Day 0)."]},
        )
    if discharged > today:
        raise InvalidInput(
            "The discharge date is in the future.", field_errors={"record.discharge_date": ["Cannot be in the future."]}
        )


def guard_two_person(step, actor, second, *, actor_signed: bool) -> None:
    """A two-person step (chemotherapy, the COI check, the infusion) is signed by two different people who
    each entered their password: an API key has no person behind it, and one nurse twice is one check."""
    if not step.template.two_person:
        return
    if not actor_signed or not actor.has_usable_password():
        raise NotPermitted(
            "complete_step",
            f"'{step.template.name}' is signed by two people at the bedside, each "
            "with their password, on the page: an API key cannot record it.",
        )
    if second is None:
        raise InvalidInput(
            "A second person signs this step.",
            field_errors={"second_signer_username": ["A second person signs this step: their user name and password."]},
        )
    if second.pk == actor.pk:
        raise InvalidInput(
            "The second signer is you.",
            field_errors={"second_signer_username": ["A second, different person signs: not the one recording it."]},
        )


def guard_step(journey, step, to_status: str, *, released_by_order: bool = False) -> None:
    """May this step move to `to_status` now? Raises the error the user should read if not.

    `released_by_order`: the call comes from a manufacturing order's QC release (see step_complete)."""
    # The journey first: withdrawing closes its pending steps, and the person at the screen must read
    # "this journey is withdrawn", not "already recorded as not applicable by the system" (a 409).
    if journey.status in (JourneyStatus.WITHDRAWN, JourneyStatus.COMPLETED):
        raise JourneyClosed(f"This journey is {journey.get_status_display().lower()}; it accepts no more steps.")
    if journey.status == JourneyStatus.ON_HOLD:
        raise JourneyClosed("This journey is on hold; resume it before recording steps.")
    if step.status != StepStatus.PENDING:
        by = str(step.completed_by) if step.completed_by_id else "the system"
        raise StepAlreadyCompleted(step, by=by, at=step.completed_at)
    if to_status not in STEP_TRANSITIONS[step.status]:
        raise TransitionNotAllowed(f"A step cannot become {StepStatus(to_status).label.lower()}.")
    if step.stage.status == StageStatus.PENDING:
        raise StageOrderViolation(f"{step.stage.get_number_display()} has not started yet; finish the stage before it first.")
    if to_status == StepStatus.DONE and step.template.done_after:
        earlier = journey.steps.select_related("template").filter(template__code=step.template.done_after).first()
        if earlier is not None and earlier.status != StepStatus.DONE:
            raise TransitionNotAllowed(
                f"Record '{earlier.template.name}' as done first: '{step.template.name}' may only follow it."
            )
    if step.template.milestone == Milestone.PRODUCT_RELEASED and journey.product_release_by_order and not released_by_order:
        # The order's results are judged against the product's specification; a hand-typed release
        # would bypass it (an OOS product would open lymphodepletion).
        raise TransitionNotAllowed(f"'{step.template.name}' is recorded by the manufacturing order's QC release, not by hand.")
    if to_status == StepStatus.SKIPPED and step.template.milestone in UNSKIPPABLE_MILESTONES:
        raise TransitionNotAllowed(
            f"'{step.template.name}' records {Milestone(step.template.milestone).label.split(':')[0].lower()} "
            "and cannot be skipped. If the journey cannot go on, withdraw it."
        )
