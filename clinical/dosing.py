"""Doses: from body surface area, reduced by a percentage, checked against what was prescribed; the
tocilizumab ceiling and schedule; the expected number of CAR-T cells.

The rounding rule of chemotherapy doses: the BSA is rounded to two decimals first (`body.body_surface_area`),
then multiplied exactly, so the sheet's sum can be redone by hand — 1000 mg/m² × 1.82 m² = 1820 mg, not
the 1818 mg an unrounded BSA of 1.8181… m² would give. The result is rounded only when `places` is given
(half up), e.g. to the step of the field the dose is recorded in.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from clinical.numbers import Number, exact, positive, rounded


def dose_from_bsa(dose_per_m2: Number, bsa_m2: Number, *, places: int | None = None) -> Decimal:
    """mg/m² × m² = mg (25 mg/m² × 1.82 m² = 45.5 mg)."""
    dose = positive(dose_per_m2, "dose per m²") * positive(bsa_m2, "body surface area")
    return dose if places is None else rounded(dose, places)


def dose_reduced(dose: Number, reduction_percent: Number, *, places: int | None = None) -> Decimal:
    """The dose less a percentage (41.5 mg − 20 % = 33.2 mg). A reduction of 0 leaves the dose as it is."""
    percent = exact(reduction_percent, "reduction")
    if not 0 <= percent < 100:
        raise ValueError(f"A reduction is from 0 up to (not including) 100 %, not {reduction_percent!r}.")
    reduced = exact(dose, "dose") * (100 - percent) / 100
    return reduced if places is None else rounded(reduced, places)


def dose_at_percent(dose: Number, dose_percent: Number, *, places: int | None = None) -> Decimal:
    """The dose at a percentage of itself, as a renal band gives it (41.5 mg at 80 % = 33.2 mg; 100 %: unchanged)."""
    percent = exact(dose_percent, "dose percent")
    if not 0 < percent <= 100:
        raise ValueError(f"A dose percent is above 0 and at most 100, not {dose_percent!r}.")
    dosed = exact(dose, "dose") * percent / 100
    return dosed if places is None else rounded(dosed, places)


def deviation_percent(given: Number, prescribed: Number) -> Decimal:
    """How far the given dose is from the prescribed one, in % of the prescribed (91 vs 45.5 mg: +100 %)."""
    target = positive(prescribed, "prescribed dose")
    return (exact(given, "given dose") - target) / target * 100


def within_tolerance(given: Number, prescribed: Number, tolerance_percent: Number) -> bool:
    """True when the given dose is within ± tolerance % of the prescribed one, both ends included
    (a 5 % tolerance on 45.5 mg accepts 43.225 to 47.775 mg)."""
    tolerance = exact(tolerance_percent, "tolerance")
    if tolerance < 0:
        raise ValueError("A tolerance cannot be negative.")
    return abs(deviation_percent(given, prescribed)) <= tolerance


def weight_based_dose_max(weight_kg: Number, dose_per_kg: Number, cap: Number) -> Decimal:
    """The largest dose for this weight: dose/kg × kg, never above the cap (tocilizumab 8 mg/kg, at most
    800 mg per dose: 45 kg → 360 mg, 120 kg → 800 mg)."""
    return min(positive(weight_kg, "weight") * positive(dose_per_kg, "dose per kg"), positive(cap, "maximum dose"))


def dose_schedule_problems(
    given_at: Sequence[datetime],
    at: datetime,
    *,
    min_hours_apart: Number,
    max_in_window: int,
    window_hours: Number,
    max_total: int,
) -> list[str]:
    """What is wrong with giving one more dose at `at` after the doses given at `given_at` (empty: nothing).

    Tocilizumab under the US CAR-T labels: at least 8 h apart, at most 3 doses in 24 h, at most 4 in total.
    A dose exactly `min_hours_apart` after the last is on time; the window is the `window_hours` ending at
    `at`, the new dose included."""
    problems = []
    gap, window = timedelta(hours=float(exact(min_hours_apart))), timedelta(hours=float(exact(window_hours)))
    earlier = sorted(given_at)
    nearest = min((abs(at - previous) for previous in earlier), default=None)
    if nearest is not None and nearest < gap:
        hours = nearest.total_seconds() / 3600
        problems.append(f"Only {hours:.1f} h from another dose; at least {_plain(min_hours_apart)} h apart.")
    in_window = 1 + sum(1 for previous in earlier if at - window < previous <= at)
    if in_window > max_in_window:
        problems.append(f"This would be dose {in_window} within {_plain(window_hours)} h; at most {max_in_window}.")
    if len(earlier) + 1 > max_total:
        problems.append(f"This would be dose {len(earlier) + 1} in all; at most {max_total}.")
    return problems


def expected_total_cells(cells_per_kg: Number, weight_kg: Number) -> Decimal:
    """Target cells/kg × weight = the total the bag should hold (1 × 10⁶/kg × 70 kg = 70 × 10⁶). Units
    follow the caller: pass 10⁶ cells/kg and get 10⁶ cells."""
    return positive(cells_per_kg, "cells per kg") * positive(weight_kg, "weight")


def cells_per_kg(total_cells: Number, weight_kg: Number, *, places: int | None = None) -> Decimal:
    """The dose actually given per kg, from the bag's total (70 × 10⁶ for 70 kg → 1 × 10⁶/kg)."""
    dose = exact(total_cells, "total cells") / positive(weight_kg, "weight")
    return dose if places is None else rounded(dose, places)


def _plain(number: Number) -> str:
    value = exact(number)
    return str(value.to_integral_value()) if value == value.to_integral_value() else str(value.normalize())
