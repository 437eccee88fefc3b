"""What the journey's rules say when they say no."""

from carclinic.errors import Conflict, DomainError


class TransitionNotAllowed(DomainError):
    """The journey, stage or step is not in a state that allows this change."""


class StageOrderViolation(TransitionNotAllowed):
    """A stage (or a step in it) was touched before the stages before it were finished."""


class JourneyClosed(TransitionNotAllowed):
    """A withdrawn or completed journey accepts no more changes; one on hold, no steps."""


class JourneyAlreadyOpen(Conflict):
    """The patient already walks an open journey."""


class StepAlreadyCompleted(Conflict):
    """Two people recorded the same step; the second is told who was first."""

    def __init__(self, step, *, by: str, at):
        from django.utils import timezone

        local = timezone.localtime(at)
        super().__init__(
            f"This step was already recorded as {step.get_status_display().lower()} by {by} "
            f"at {local:%d %b %Y %H:%M}. Nothing was changed."
        )
        self.by = by
        self.at = at
