"""The patient's body: surface area and age."""

from datetime import date
from decimal import Decimal

from clinical.numbers import Number, positive, rounded

BSA_PLACES = 2  # m² to two decimals, as the LD dosing sheet prints it and the double-checker redoes it


def body_surface_area(height_cm: Number, weight_kg: Number) -> Decimal:
    """Mosteller (N Engl J Med 1987;317:1098): √(height cm × weight kg / 3600), in m², rounded half up to
    two decimals. Doses are computed from this rounded value (see `dosing.dose_from_bsa`)."""
    height, weight = positive(height_cm, "height"), positive(weight_kg, "weight")
    return rounded((height * weight / 3600).sqrt(), BSA_PLACES)


def age_in_years(born: date, on: date) -> int:
    """Whole years completed on the day `on` (a birthday counts from its own day; 29 February from 1 March
    in a common year)."""
    if on < born:
        raise ValueError("The day is before the date of birth.")
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
