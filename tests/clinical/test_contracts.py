"""Outcome-contract status (clinical/contracts.py) at each boundary. Source of the rule: domain.md, "Outcome-based
contract" (the payer pays in full only if remission holds two years; on track, at risk — a flare, a rising
score, a missed visit that leaves it unknown —, met, with the milestone date) and issue 11's tests section."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from clinical.contracts import (
    AT_RISK,
    AWAITING_INFUSION,
    FAILED,
    MET,
    ON_TRACK,
    PendingVisit,
    RemissionAssessment,
    add_months,
    amount_at_stake,
    contract_status,
)

DAY0 = date(2026, 1, 10)
MILESTONE = date(2028, 1, 10)  # 24 calendar months; 730 days after Day 0 (no 29 February between)


def doris(day: int, score="0") -> RemissionAssessment:
    return RemissionAssessment(on=DAY0 + timedelta(days=day), remission="doris", disease_activity=Decimal(score))


def state(day: int, remission: str, score=None) -> RemissionAssessment:
    return RemissionAssessment(on=DAY0 + timedelta(days=day), remission=remission, disease_activity=score)


def status(*, today, assessments=(), pending=(), definition="doris", months=24, withdrawn_on=None, infusion_on=DAY0):
    return contract_status(
        infusion_on=infusion_on,
        milestone_months=months,
        remission_definition=definition,
        assessments=assessments,
        pending_visits=pending,
        withdrawn_on=withdrawn_on,
        today=today,
    )


@pytest.mark.parametrize(
    "start, months, milestone, why",
    [
        (date(2026, 1, 10), 24, date(2028, 1, 10), "two calendar years"),
        (date(2028, 2, 29), 24, date(2030, 2, 28), "leap day: 2030 has no 29 February, the last day of February"),
        (date(2028, 2, 29), 48, date(2032, 2, 29), "leap day to leap day"),
        (date(2026, 8, 31), 6, date(2027, 2, 28), "31 August + 6 months: end of February"),
        (date(2026, 11, 30), 3, date(2027, 2, 28), "across the year end"),
    ],
)
def test_milestone_dates(start, months, milestone, why):
    assert add_months(start, months) == milestone, why


# (today, assessments, pending visits, definition, expected status, expected since, why)
CASES = [
    (DAY0 - timedelta(days=1), (), (), "doris", ON_TRACK, DAY0, "infused, nothing due yet"),
    (DAY0 + timedelta(days=100), (doris(90),), (), "doris", ON_TRACK, DAY0 + timedelta(days=90), "DORIS at month 3"),
    (
        add_months(DAY0, 23),
        (doris(90), doris(365)),
        (PendingVisit(due_on=DAY0 + timedelta(days=730)),),
        "doris",
        ON_TRACK,
        DAY0 + timedelta(days=365),
        "month 23: in remission, the milestone visit not due yet",
    ),
    (
        add_months(DAY0, 24),
        (doris(90), doris(365), doris(729)),
        (),
        "doris",
        MET,
        MILESTONE,
        "month 24: remission held through the milestone date",
    ),
    (
        MILESTONE - timedelta(days=1),
        (doris(90), doris(365), doris(729)),
        (),
        "doris",
        ON_TRACK,
        DAY0 + timedelta(days=729),
        "the day before the milestone: not met yet",
    ),
    (
        MILESTONE,
        (doris(90), doris(365), state(729, "active", Decimal(8))),
        (),
        "doris",
        FAILED,
        DAY0 + timedelta(days=729),
        "a flare on day 729 of a 730-day milestone: failed",
    ),
    (
        MILESTONE + timedelta(days=5),
        (doris(90), doris(365), doris(730), state(731, "active", Decimal(8))),
        (),
        "doris",
        MET,
        MILESTONE,
        "a flare the day after the milestone does not undo it",
    ),
    (
        MILESTONE + timedelta(days=10),
        (doris(90), doris(365)),
        (PendingVisit(due_on=DAY0 + timedelta(days=730), overdue_since=MILESTONE + timedelta(days=4)),),
        "doris",
        AT_RISK,
        MILESTONE + timedelta(days=4),
        "the milestone visit overdue: remission at the milestone unknown, not met",
    ),
    (
        MILESTONE + timedelta(days=2),
        (doris(90), doris(365)),
        (PendingVisit(due_on=DAY0 + timedelta(days=730)),),
        "doris",
        ON_TRACK,
        DAY0 + timedelta(days=365),
        "the milestone visit in its window: awaiting it",
    ),
    (
        DAY0 + timedelta(days=200),
        (doris(90),),
        (PendingVisit(due_on=DAY0 + timedelta(days=180), overdue_since=DAY0 + timedelta(days=190)),),
        "doris",
        AT_RISK,
        DAY0 + timedelta(days=190),
        "a remission visit overdue before the milestone",
    ),
    (
        DAY0 + timedelta(days=400),
        (doris(90, "0"), doris(365, "2")),
        (),
        "doris",
        AT_RISK,
        DAY0 + timedelta(days=365),
        "still DORIS but the score rose 0 → 2",
    ),
    (
        DAY0 + timedelta(days=100),
        (state(90, "lldas", Decimal(4)),),
        (),
        "doris",
        AT_RISK,
        DAY0 + timedelta(days=90),
        "LLDAS under a DORIS contract: not in the contract's remission yet",
    ),
    (
        DAY0 + timedelta(days=100),
        (state(90, "lldas", Decimal(4)),),
        (),
        "doris_or_lldas",
        ON_TRACK,
        DAY0 + timedelta(days=90),
        "LLDAS counts under a DORIS-or-LLDAS contract",
    ),
    (
        DAY0 + timedelta(days=400),
        (doris(90), state(365, "lldas", Decimal(0))),
        (),
        "doris",
        FAILED,
        DAY0 + timedelta(days=365),
        "DORIS lost to LLDAS under a DORIS contract",
    ),
    (
        DAY0 + timedelta(days=400),
        (doris(90), state(200, "not_assessable"), doris(365)),
        (),
        "doris",
        ON_TRACK,
        DAY0 + timedelta(days=365),
        "a visit that could not assess remission neither breaks nor proves it",
    ),
    (
        MILESTONE,
        (state(90, "active", Decimal(10)), state(365, "lldas", Decimal(4)), state(729, "lldas", Decimal(4))),
        (),
        "doris",
        FAILED,
        MILESTONE,
        "never in DORIS remission by the milestone",
    ),
]


@pytest.mark.parametrize("today, assessments, pending, definition, expected, since, why", CASES)
def test_contract_status_table(today, assessments, pending, definition, expected, since, why):
    result = status(today=today, assessments=assessments, pending=pending, definition=definition)
    assert (result.status, result.since) == (expected, since), why
    assert result.milestone_on == MILESTONE


def test_leap_day_infusion_meets_on_28_february():
    day0 = date(2028, 2, 29)
    assessed = [RemissionAssessment(on=day0 + timedelta(days=d), remission="doris") for d in (90, 365, 729)]
    before = status(today=date(2030, 2, 27), assessments=assessed, infusion_on=day0)
    on = status(today=date(2030, 2, 28), assessments=assessed, infusion_on=day0)
    assert (before.status, on.status, on.milestone_on) == (ON_TRACK, MET, date(2030, 2, 28))


def test_withdrawn_after_infusion_fails_and_before_infusion_awaits():
    withdrawn = status(today=DAY0 + timedelta(days=300), assessments=(doris(90),), withdrawn_on=DAY0 + timedelta(days=200))
    assert (withdrawn.status, withdrawn.since) == (FAILED, DAY0 + timedelta(days=200))
    assert status(today=DAY0, infusion_on=None).status == AWAITING_INFUSION
    after = status(
        today=MILESTONE + timedelta(days=60), assessments=(doris(90), doris(730)), withdrawn_on=MILESTONE + timedelta(days=30)
    )
    assert after.status == MET  # withdrawn after the milestone was met


def test_bad_definitions_are_refused():
    with pytest.raises(ValueError):
        status(today=DAY0, definition="sledai")
    with pytest.raises(ValueError):
        status(today=DAY0, months=0)


@pytest.mark.parametrize(
    "price, kind, value, stake",
    [
        (Decimal("350000.00"), "percent", Decimal("50"), Decimal("175000.00")),
        (Decimal("350000.00"), "amount", Decimal("100000"), Decimal("100000.00")),
        (Decimal("350000.00"), "amount", Decimal("400000"), Decimal("350000.00")),  # never more than the price
        (Decimal("99999.99"), "percent", Decimal("33.33"), Decimal("33330.00")),
    ],
)
def test_amount_at_stake(price, kind, value, stake):
    assert amount_at_stake(price=price, rebate_kind=kind, rebate_value=value) == stake
