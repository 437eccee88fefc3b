"""Length of stay and the restriction dates after a CAR-T infusion. Source: US CAR-T labels since June 2025 (stay
within 2 hours of the centre for 2 weeks, no driving for 2 weeks after the infusion), domain.md stage 4."""

from datetime import date

import pytest

from clinical.discharge import discharge_restrictions, length_of_stay_days, restriction_ends_on


@pytest.mark.parametrize(
    "infused, discharged, days",
    [
        (date(2026, 3, 1), date(2026, 3, 9), 8),  # the shipped protocol's discharge on Day +8
        (date(2026, 3, 1), date(2026, 3, 1), 0),  # home the same day
        (date(2026, 2, 25), date(2026, 3, 5), 8),  # across the end of February
    ],
)
def test_length_of_stay_counts_days_from_the_infusion(infused, discharged, days):
    assert length_of_stay_days(infused, discharged) == days


def test_a_discharge_before_the_infusion_has_no_length_of_stay():
    with pytest.raises(ValueError):
        length_of_stay_days(date(2026, 3, 6), date(2026, 3, 1))  # issue 13: a discharge 5 days before the infusion


@pytest.mark.parametrize(
    "day0, days, until",
    [
        (date(2026, 3, 1), 14, date(2026, 3, 15)),  # June 2025 labels: Day +14
        (date(2026, 3, 1), 28, date(2026, 3, 29)),  # the labels before: 4 weeks
        (date(2026, 12, 25), 14, date(2027, 1, 8)),  # into the new year
    ],
)
def test_a_restriction_ends_its_days_after_day0(day0, days, until):
    assert restriction_ends_on(day0, days) == until


def test_the_restrictions_in_words_leave_out_one_of_zero_days():
    both = discharge_restrictions(date(2026, 3, 1), proximity_days=14, proximity_hours=2, driving_days=14)
    assert [(r.what, r.until, r.day_number) for r in both] == [
        ("Stay within 2 hours of the treating centre", date(2026, 3, 15), 14),
        ("Do not drive or operate heavy or dangerous machinery", date(2026, 3, 15), 14),
    ]
    assert len(discharge_restrictions(date(2026, 3, 1), proximity_days=14, proximity_hours=2, driving_days=0)) == 1
