"""The one table of allowed journey, stage and step transitions, and the guards that apply it.

Services call these guards before they change anything; nothing else decides whether a change is
allowed.
"""

from journeys.errors import JourneyClosed, StageOrderViolation, StepAlreadyCompleted, TransitionNotAllowed
from journeys.models import JourneyStatus, Milestone, StageNumber, StageStatus, StepStatus

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
            f"A journey that is {journey.get_status_display().lower()} cannot become "
            f"{JourneyStatus(to_status).label.lower()}."
        )


def guard_stage_start(journey, stage, previous_stage) -> None:
    if StageStatus.IN_PROGRESS not in STAGE_TRANSITIONS[stage.status]:
        raise TransitionNotAllowed(f"{stage.get_number_display()} has already started.")
    if previous_stage is not None and previous_stage.status != StageStatus.COMPLETED:
        raise StageOrderViolation(
            f"{stage.get_number_display()} cannot start before {previous_stage.get_number_display()} is complete."
        )
    if stage.number == StageNumber.LYMPHODEPLETION and journey.product_released_at is None:
        # Conditioning chemotherapy before the cells pass QC would leave the patient lymphodepleted
        # with nothing to infuse.
        raise StageOrderViolation("Lymphodepletion cannot start before the product is released by QC.")


def guard_stage_complete(stage, unresolved_required: list[str]) -> None:
    if StageStatus.COMPLETED not in STAGE_TRANSITIONS[stage.status]:
        raise TransitionNotAllowed(f"{stage.get_number_display()} is not in progress.")
    if unresolved_required:
        raise TransitionNotAllowed(
            f"{stage.get_number_display()} still has required steps: {', '.join(unresolved_required)}. "
            "Record them as done, or skip them with a reason."
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
        raise StageOrderViolation(
            f"{step.stage.get_number_display()} has not started yet; finish the stage before it first."
        )
    if to_status == StepStatus.DONE and step.template.done_after:
        earlier = journey.steps.select_related("template").filter(template__code=step.template.done_after).first()
        if earlier is not None and earlier.status != StepStatus.DONE:
            raise TransitionNotAllowed(
                f"Record '{earlier.template.name}' as done first: '{step.template.name}' may only follow it."
            )
    if (step.template.milestone == Milestone.PRODUCT_RELEASED and journey.product_release_by_order
            and not released_by_order):
        # The order's results are judged against the product's specification; a hand-typed release
        # would bypass it (an OOS product would open lymphodepletion).
        raise TransitionNotAllowed(
            f"'{step.template.name}' is recorded by the manufacturing order's QC release, not by hand."
        )
    if to_status == StepStatus.SKIPPED and step.template.milestone in UNSKIPPABLE_MILESTONES:
        raise TransitionNotAllowed(
            f"'{step.template.name}' records {Milestone(step.template.milestone).label.split(':')[0].lower()} "
            "and cannot be skipped. If the journey cannot go on, withdraw it."
        )
