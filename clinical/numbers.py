"""Turning what a caller hands over into exact decimals, and rounding the way a dosing sheet does."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

Number = int | float | Decimal | str


def exact(value: Number, what: str = "value") -> Decimal:
    """A Decimal of `value`; a float through its shortest text form (0.1 stays 0.1, not 0.1000000000000000055…)."""
    if isinstance(value, bool):
        raise ValueError(f"The {what} must be a number, not {value!r}.")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, TypeError):
        raise ValueError(f"The {what} must be a number, not {value!r}.") from None
    if not number.is_finite():
        raise ValueError(f"The {what} must be a finite number, not {value!r}.")
    return number


def rounded(value: Decimal, places: int) -> Decimal:
    """Half up, as people round on paper (1.825 → 1.83), never to the even neighbour."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def positive(value: Number, what: str) -> Decimal:
    number = exact(value, what)
    if number <= 0:
        raise ValueError(f"The {what} must be greater than zero, not {value!r}.")
    return number
