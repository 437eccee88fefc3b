"""Domain errors every app raises. Pages turn them into messages; the API into 400, 403 or 409."""


class DomainError(Exception):
    """A rule of the clinic said no. The message is written for the person at the screen."""

    http_status = 400

    def __init__(self, message: str, *, field_errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}


class InvalidInput(DomainError):
    """The request's values are wrong; `field_errors` says which, per field."""


class Conflict(DomainError):
    """Someone else changed the record first; the caller is told, never silently overwritten."""

    http_status = 409


class NotPermitted(DomainError):
    """The user's role does not allow this action (`staff/roles.py` decides; this is only the answer)."""

    http_status = 403

    def __init__(self, action: str, message: str | None = None):
        self.action = action
        # An `Action` member carries its label ("Record a step as done"); a bare name is shown as it is.
        label = str(getattr(action, "label", action))
        super().__init__(message or f"Your role does not allow this: {label.lower()}.")


class StaleVersion(Conflict):
    def __init__(self, what: str, expected: int, current: int):
        super().__init__(
            f"This {what} was changed by someone else (your version {expected}, now {current}). Reload to see the current state."
        )
        self.expected = expected
        self.current = current


def check_model(instance, *, exclude: list[str] | None = None) -> None:
    """Run the model's own validation and raise InvalidInput with per-field messages."""
    from django.core.exceptions import ValidationError

    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as error:
        fields = {
            (name if name != "__all__" else "non_field_errors"): [str(m) for m in messages]
            for name, messages in error.message_dict.items()
        }
        raise InvalidInput("Some values need correcting.", field_errors=fields) from error
