"""A new weight far from the previous one within a short time asks for confirmation (issue 13: "a weight of 154
typed in pounds dosed as kg (BSA 2.70, "2700 mg")"). Thresholds are arguments: the clinic's 10 % within 30 days
here. 1 kg = 2.20462 lb (the international avoirdupois pound, 0.45359237 kg)."""

from decimal import Decimal

import pytest

from clinical.body import pounds_as_kg, weight_change_needs_confirmation, weight_change_percent


@pytest.mark.parametrize(
    "previous, new, days, asks",
    [
        (70, 154, 3, True),  # issue 13: 154 lb typed as kg for a 70 kg patient (+120 %)
        (70, 77, 3, False),  # +10 %: at the threshold, not beyond it
        (70, "77.1", 3, True),  # just beyond +10 %
        (70, 63, 3, False),  # −10 %
        (70, "62.9", 3, True),  # just beyond −10 %
        (70, 154, 31, False),  # a month and a day apart: left to the body
        (70, 154, 30, True),  # 30 days apart: still within the window
        (70, 70, 0, False),
    ],
)
def test_a_weight_far_from_the_previous_one_soon_after_asks_for_confirmation(previous, new, days, asks):
    assert weight_change_needs_confirmation(previous, new, days, percent=10, within_days=30) is asks


def test_the_change_and_the_pounds_read_as_kilograms():
    assert weight_change_percent(70, 154) == Decimal("120")
    assert weight_change_percent(80, 60) == Decimal("-25")
    assert pounds_as_kg(154) == Decimal("69.9")  # 154 / 2.20462 = 69.85
