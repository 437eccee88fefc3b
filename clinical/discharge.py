"""After the infusion: the length of stay and the days the restrictions hold.

US CAR-T labels since June 2025 (FDA class labelling change, REMS removed): stay within 2 hours of the treating
centre for 2 weeks after the infusion (was 4) and do not drive for 2 weeks (was 8). The day counts are the
protocol's, passed in."""

from dataclasses import dataclass
from datetime import date, timedelta


def length_of_stay_days(infused_on: date, discharged_on: date) -> int:
    """Days from the infusion (Day 0) to the discharge: infused 1 March, discharged 9 March → 8."""
    if discharged_on < infused_on:
        raise ValueError("The discharge is before the infusion.")
    return (discharged_on - infused_on).days


def restriction_ends_on(day0: date, days: int) -> date:
    """The last day a restriction holds, counted from Day 0: Day 0 on 1 March, 14 days → 15 March (Day +14)."""
    if days < 0:
        raise ValueError("A restriction lasts zero or more days.")
    return day0 + timedelta(days=days)


@dataclass(frozen=True)
class Restriction:
    what: str
    until: date
    day_number: int


def discharge_restrictions(day0: date, *, proximity_days: int, proximity_hours: int, driving_days: int) -> list[Restriction]:
    """The restrictions in words, each with the last day it holds; a restriction of 0 days is left out."""
    restrictions = []
    if proximity_days:
        restrictions.append(
            Restriction(
                f"Stay within {proximity_hours} hours of the treating centre",
                restriction_ends_on(day0, proximity_days),
                proximity_days,
            )
        )
    if driving_days:
        restrictions.append(
            Restriction(
                "Do not drive or operate heavy or dangerous machinery",
                restriction_ends_on(day0, driving_days),
                driving_days,
            )
        )
    return restrictions
