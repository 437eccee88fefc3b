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


POUNDS_PER_KG = Decimal("2.20462")


def weight_change_percent(previous_kg: Number, new_kg: Number) -> Decimal:
    """The new weight's change from the previous one, in % of the previous (70 → 154 kg: +120 %)."""
    previous, new = positive(previous_kg, "previous weight"), positive(new_kg, "weight")
    return (new - previous) / previous * 100


def weight_change_needs_confirmation(
    previous_kg: Number, new_kg: Number, days_apart: int, *, percent: Number, within_days: int
) -> bool:
    """Whether a new weight differs from the previous one by more than `percent` within `within_days` days: too
    fast to be the body, more likely a typing slip (154 for 70 kg: pounds typed as kilograms), which would dose
    chemotherapy and cells. Both thresholds are the clinic's; a longer gap is left to the body."""
    if days_apart > within_days:
        return False
    return abs(weight_change_percent(previous_kg, new_kg)) > Decimal(str(percent))


def pounds_as_kg(pounds: Number) -> Decimal:
    """A weight typed in pounds, in kilograms to one decimal (154 lb → 69.9 kg)."""
    return rounded(positive(pounds, "weight") / POUNDS_PER_KG, 1)
