"""Where a patient stands against an outcome-based contract: the payer pays in full only if remission holds
for a set time after the infusion (two years in the article behind domain.md, "Outcome-based contract").

Everything a contract decides is an argument: which remission states count (DORIS alone, or DORIS or LLDAS),
how many months from Day 0 the milestone falls. The assessments are what the remission visits recorded;
which visit is overdue is journeys' one rule, decided before this is called.

The rule, in the clinic's words:
- **failed**: the remission the contract counts was reached and then lost (an assessment of active disease,
  or a remission the contract does not count) on or before the milestone date; or the journey was withdrawn
  after the infusion and before the milestone; or at the milestone the latest assessment does not show the
  contract's remission. The milestone day itself still belongs to the period.
- **met**: the milestone date has come, nothing failed, the latest assessment shows the contract's remission
  and every remission visit due by the milestone has been recorded.
- **at risk**: before a decision, one of: a remission visit is overdue (remission unknown), the disease score
  rose from one assessment to the next (a flare announcing itself), or remission is not reached yet.
- **on track**: none of those: in remission at the latest assessment, or no assessment due yet.
"""

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ON_TRACK = "on_track"
AT_RISK = "at_risk"
MET = "met"
FAILED = "failed"
AWAITING_INFUSION = "awaiting_infusion"

# The remission values a remission visit records (journeys' protocol file, field `remission`).
DORIS = "doris"
LLDAS = "lldas"
ACTIVE = "active"
NOT_ASSESSABLE = "not_assessable"

# A contract's remission definition: the recorded states that count as remission under it.
REMISSION_COUNTED = {
    "doris": frozenset({DORIS}),
    "doris_or_lldas": frozenset({DORIS, LLDAS}),
}


@dataclass(frozen=True)
class RemissionAssessment:
    """What one remission visit recorded: the state and, if scored, the disease-activity score."""

    on: date
    remission: str
    disease_activity: Decimal | None = None


@dataclass(frozen=True)
class PendingVisit:
    """A remission visit not yet recorded: when it is due, and since when it is overdue (None: not overdue)."""

    due_on: date
    overdue_since: date | None = None


@dataclass(frozen=True)
class ContractStanding:
    status: str
    milestone_on: date | None
    since: date | None
    reason: str


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later; a day the month lacks falls back to its last day
    (29 February + 24 months is 28 February: the payer's two years, not a day more)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def contract_status(
    *,
    infusion_on: date | None,
    milestone_months: int,
    remission_definition: str,
    assessments: Sequence[RemissionAssessment],
    pending_visits: Sequence[PendingVisit] = (),
    withdrawn_on: date | None = None,
    today: date,
) -> ContractStanding:
    """The contract status of one treated patient on `today`, with the milestone date and the day the
    status's evidence dates from."""
    if remission_definition not in REMISSION_COUNTED:
        raise ValueError(f"Unknown remission definition {remission_definition!r}.")
    if milestone_months < 1:
        raise ValueError("The milestone is at least one month after the infusion.")
    if infusion_on is None:
        return ContractStanding(AWAITING_INFUSION, None, None, "Not infused yet.")
    counted = REMISSION_COUNTED[remission_definition]
    milestone_on = add_months(infusion_on, milestone_months)

    # Only what happened from Day 0 to the milestone (inclusive) and is known today decides the contract.
    period = sorted(
        (a for a in assessments if infusion_on <= a.on <= min(milestone_on, today) and a.remission != NOT_ASSESSABLE),
        key=lambda a: a.on,
    )
    reached = next((a for a in period if a.remission in counted), None)
    if reached is not None:
        lost = next((a for a in period if a.on >= reached.on and a.remission not in counted), None)
        if lost is not None:
            return ContractStanding(FAILED, milestone_on, lost.on, "Remission lost before the milestone.")
    if withdrawn_on is not None and infusion_on <= withdrawn_on <= milestone_on and withdrawn_on <= today:
        return ContractStanding(FAILED, milestone_on, withdrawn_on, "Withdrawn after the infusion, before the milestone.")

    latest = period[-1] if period else None
    overdue = sorted(
        v.overdue_since
        for v in pending_visits
        if v.overdue_since is not None and v.overdue_since <= today and (today < milestone_on or v.due_on <= milestone_on)
    )
    if today >= milestone_on:
        unrecorded = [v for v in pending_visits if v.due_on <= milestone_on]
        if not unrecorded:
            if latest is None or latest.remission not in counted:
                return ContractStanding(FAILED, milestone_on, milestone_on, "Not in remission at the milestone.")
            return ContractStanding(MET, milestone_on, milestone_on, "Remission held through the milestone.")
    if overdue:
        return ContractStanding(AT_RISK, milestone_on, overdue[0], "A remission visit is overdue: remission unknown.")
    scored = [a for a in period if a.disease_activity is not None]
    if len(scored) >= 2 and scored[-1].disease_activity > scored[-2].disease_activity:
        return ContractStanding(AT_RISK, milestone_on, scored[-1].on, "The disease score rose.")
    if latest is not None and latest.remission not in counted:
        return ContractStanding(AT_RISK, milestone_on, latest.on, "Not in the contract's remission yet.")
    if today >= milestone_on:
        return ContractStanding(ON_TRACK, milestone_on, latest.on if latest else infusion_on, "Awaiting the milestone visit.")
    return ContractStanding(ON_TRACK, milestone_on, latest.on if latest else infusion_on, "In remission, nothing overdue.")


def amount_at_stake(*, price: Decimal, rebate_kind: str, rebate_value: Decimal) -> Decimal:
    """What the payer gets back if the contract fails: a percentage of the price, or a fixed amount (never more
    than the price), rounded to the cent."""
    if rebate_kind == "percent":
        amount = price * rebate_value / Decimal(100)
    elif rebate_kind == "amount":
        amount = min(rebate_value, price)
    else:
        raise ValueError(f"Unknown rebate kind {rebate_kind!r}.")
    return amount.quantize(Decimal("0.01"))
