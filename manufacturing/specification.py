"""The release specification's arithmetic, once: is one QC result within its limit? Pure, no Django.

The limits are product data (`ReleaseCriterion`); this only says how a limit is read. Source for the
criteria and their directions: ../shared/domain.md, "QC release specification" (sterility no growth,
mycoplasma negative, endotoxin below a limit, viability ≥ a limit, CAR expression ≥ a limit, vector
copy number ≤ 5 copies/cell).
"""

from decimal import Decimal, InvalidOperation

AT_LEAST = "at_least"  # viability ≥ 70 %: 70 passes, 69.9 fails
AT_MOST = "at_most"  # vector copy number ≤ 5: 5 passes, 5.01 fails
BELOW = "below"  # endotoxin < 5 EU/mL: 4.99 passes, 5 fails
MUST_READ = "must_read"  # sterility "no growth", mycoplasma "negative": anything else fails


def qc_result_within_specification(comparison: str, limit, result) -> bool:
    """Whether one QC result meets its criterion's limit. A number that cannot be read fails: an unreadable
    result is never a pass."""
    if comparison == MUST_READ:
        return str(result).strip().casefold() == str(limit).strip().casefold()
    try:
        value = Decimal(str(result).strip())
        bound = Decimal(str(limit))
    except (InvalidOperation, ValueError):
        return False
    if not value.is_finite():
        return False
    if comparison == AT_LEAST:
        return value >= bound
    if comparison == AT_MOST:
        return value <= bound
    if comparison == BELOW:
        return value < bound
    raise ValueError(f"Unknown comparison {comparison!r}")
