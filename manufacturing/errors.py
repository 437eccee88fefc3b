"""What the product's road says when it says no."""

from carclinic.errors import Conflict, DomainError


class OrderTransitionNotAllowed(DomainError):
    """The order is not in a state that allows this change."""


class OutOfSpecification(DomainError):
    """A product outside its release specification cannot be released except by an exceptional release."""


class CustodyOutOfOrder(DomainError):
    """A hand-off recorded before the one that must come first, or twice."""


class MaterialQuarantined(DomainError):
    """The material had an excursion; nothing moves until a physician decides."""


class ChainOfIdentityInvalid(DomainError):
    """A chain-of-identity id whose check character does not fit: mistyped or misread."""


class BedsideMismatchUnresolved(DomainError):
    """A bedside mismatch blocks the infusion until a physician resolves it."""


class SlotTaken(Conflict):
    """Someone else changed the booking first."""


class MismatchAlreadyResolved(Conflict):
    """Another physician resolved the bedside mismatch first."""
