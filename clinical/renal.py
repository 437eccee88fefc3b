"""Renal function and what it does to a renally cleared drug's dose (fludarabine)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from clinical.numbers import Number, exact, positive, rounded

UMOL_PER_MG_DL = Decimal("88.4")  # creatinine: 1 mg/dL = 88.4 µmol/L
CLEARANCE_PLACES = 1  # mL/min to one decimal, as the sheet shows it (47.2 mL/min)


def creatinine_mg_dl(creatinine: Number, unit: str) -> Decimal:
    """Serum creatinine in mg/dL from "mg/dL" or "µmol/L" (÷ 88.4)."""
    value = positive(creatinine, "creatinine")
    if unit == "mg/dL":
        return value
    if unit in ("µmol/L", "umol/L"):
        return value / UMOL_PER_MG_DL
    raise ValueError(f"Creatinine is in mg/dL or µmol/L, not {unit!r}.")


def creatinine_clearance(
    age_years: int, weight_kg: Number, creatinine: Number, female: bool, *, creatinine_unit: str = "mg/dL"
) -> Decimal:
    """Cockcroft–Gault (Nephron 1976;16:31): (140 − age) × weight kg / (72 × creatinine mg/dL), × 0.85 for
    women, in mL/min rounded half up to one decimal (woman, 60 y, 60 kg, 1.2 mg/dL → 47.2 mL/min).
    The band is looked up from this rounded value, the one the sheet shows."""
    if isinstance(age_years, bool) or not isinstance(age_years, int) or not 0 <= age_years < 140:
        raise ValueError(f"The age is a whole number of years below 140, not {age_years!r}.")
    clearance = (140 - age_years) * positive(weight_kg, "weight") / (72 * creatinine_mg_dl(creatinine, creatinine_unit))
    if female:
        clearance *= Decimal("0.85")
    return rounded(clearance, CLEARANCE_PLACES)


@dataclass(frozen=True)
class RenalBand:
    """One band of a protocol's renal dosing table. `dose_percent` None: no dose by rule, a physician decides."""

    label: str
    lower: Decimal
    lower_included: bool
    dose_percent: Decimal | None

    @property
    def physician_decides(self) -> bool:
        return self.dose_percent is None

    @property
    def reduction_percent(self) -> Decimal | None:
        return None if self.dose_percent is None else 100 - self.dose_percent


def renal_bands(table: Sequence[Mapping]) -> list[RenalBand]:
    """A protocol's table as bands, lowest first. Each row has `at_least` (lower bound included) or `above`
    (excluded), `dose_percent` (a number, or null for "physician decides") and `label`; the lowest row
    starts at 0. The fludarabine package insert: at_least 0 → null ("below 30: not recommended"),
    at_least 30 → 80 (−20 % at 30–70), above 70 → 100."""
    bands = []
    for row in table:
        if ("at_least" in row) == ("above" in row):
            raise ValueError(f"A renal band has either at_least or above: {dict(row)!r}.")
        lower = exact(row["at_least"] if "at_least" in row else row["above"], "band bound")
        percent = row.get("dose_percent")
        percent = None if percent is None else exact(percent, "dose percent")
        if percent is not None and not 0 < percent <= 100:
            raise ValueError(f"A band's dose is above 0 and at most 100 %, not {percent}.")
        bands.append(
            RenalBand(label=str(row.get("label", "")), lower=lower, lower_included="at_least" in row, dose_percent=percent)
        )
    if not bands:
        raise ValueError("A renal dosing table needs at least one band.")
    keys = [(band.lower, not band.lower_included) for band in bands]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        raise ValueError("Renal bands go from the lowest clearance up, each starting where it says.")
    if keys[0] != (0, False):
        raise ValueError("The lowest renal band starts at 0 (at_least 0).")
    return bands


def renal_band(clearance_ml_min: Number, table: Sequence[Mapping]) -> RenalBand:
    """The band of `table` (see `renal_bands`) that a creatinine clearance falls in."""
    clearance = exact(clearance_ml_min, "creatinine clearance")
    if clearance < 0:
        raise ValueError("A creatinine clearance cannot be negative.")
    found = None
    for band in renal_bands(table):
        if clearance > band.lower or (band.lower_included and clearance == band.lower):
            found = band
    return found
