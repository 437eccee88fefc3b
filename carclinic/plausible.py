"""Plausibility limits on dates people type (issue 12, finding 6): a slip of the keyboard (0001-01-01,
9999-12-31) is refused with a message by the field, never carried into date arithmetic that overflows.

These are limits of the product, not clinical thresholds: nobody alive was born before 1900, a measurement
is not taken in the future, and a journey is planned within a few years of today.
"""

from datetime import date, timedelta

from carclinic.errors import InvalidInput

EARLIEST_PLAUSIBLE_DATE = date(1900, 1, 1)
# Journeys are entered up to this far back (a late record) and planned up to this far ahead.
JOURNEY_DATE_HORIZON = timedelta(days=5 * 366)


def check_not_future(value: date | None, *, field: str, today: date) -> None:
    """A date that has happened: from 1900 to today."""
    if value is None:
        return
    if value < EARLIEST_PLAUSIBLE_DATE:
        raise InvalidInput("Some values need correcting.", field_errors={field: ["Cannot be before 1900."]})
    if value > today:
        raise InvalidInput("Some values need correcting.", field_errors={field: ["Cannot be in the future."]})


def check_schedulable(value: date | None, *, field: str, today: date) -> None:
    """A journey's date: within JOURNEY_DATE_HORIZON of today, either way."""
    if value is None:
        return
    if not today - JOURNEY_DATE_HORIZON <= value <= today + JOURNEY_DATE_HORIZON:
        years = JOURNEY_DATE_HORIZON.days // 366
        raise InvalidInput("Some values need correcting.", field_errors={field: [f"Must be within {years} years of today."]})
