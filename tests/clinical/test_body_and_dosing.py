"""Body surface area, doses and cell numbers against worked examples; the source of each is beside it.

"domain.md" is ../shared/domain.md ("Safety checks", stage 3 and 4 of the journey table); "issue 13" is
its Tests section."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from clinical.body import age_in_years, body_surface_area
from clinical.dosing import (
    cells_per_kg,
    deviation_percent,
    dose_from_bsa,
    dose_reduced,
    dose_schedule_problems,
    expected_total_cells,
    weight_based_dose_max,
    within_tolerance,
)

D = Decimal


@pytest.mark.parametrize(
    "height_cm, weight_kg, bsa, source",
    [
        (170, 70, D("1.82"), "issue 13: 170 cm / 70 kg → 1.82 m² (√3.3056 = 1.8181)"),
        (165, 60, D("1.66"), "issue 13: woman 165 cm / 60 kg → 1.66 m² (√2.75 = 1.6583)"),
        (D("168.0"), D("61.5"), D("1.69"), "tests/web/test_patient_details_pages.py: 168 cm / 61.5 kg → 1.69 m²"),
        (D("170.0"), D("62.5"), D("1.72"), "tests/web/test_record_pages.py: 170 cm / 62.5 kg → 1.72 m²"),
        (180, 80, D("2.00"), "Mosteller by hand: √(14400/3600) = √4 = 2 exactly"),
        ("154", 170, D("2.70"), "issue 13: 154 typed as kg beside 170 cm → 2.70 m² (the pounds mistake it must catch)"),
        (60, 6, D("0.32"), "Mosteller by hand: √(360/3600) = √0.1 = 0.3162 → 0.32"),
    ],
)
def test_body_surface_area_by_mosteller_rounded_half_up_to_two_decimals(height_cm, weight_kg, bsa, source):
    assert body_surface_area(height_cm, weight_kg) == bsa, source


def test_a_float_weight_is_read_as_typed_not_as_its_binary_neighbour():
    # 62.5 and 61.5 are exact in binary anyway; 0.1-style values are not: 100 cm × 36.1 kg → √1.002777… = 1.0014
    assert body_surface_area(100.0, 36.1) == D("1.00")


@pytest.mark.parametrize("height_cm, weight_kg", [(0, 70), (170, -1), (True, 70), ("tall", 70), (float("nan"), 70)])
def test_body_surface_area_refuses_what_is_not_a_body(height_cm, weight_kg):
    with pytest.raises(ValueError):
        body_surface_area(height_cm, weight_kg)


@pytest.mark.parametrize(
    "per_m2, bsa, places, dose, source",
    [
        (25, D("1.82"), None, D("45.50"), "issue 13: fludarabine 25 mg/m² × 1.82 m² = 45.5 mg/day"),
        (1000, D("1.82"), None, D("1820.00"), "issue 13: cyclophosphamide 1000 mg/m² × 1.82 = 1820 mg (1818 unrounded)"),
        (25, D("1.66"), 1, D("41.5"), "issue 13: woman 165 cm / 60 kg, BSA 1.66 → fludarabine 41.5 mg/day"),
        (25, D("1.72"), 1, D("43.0"), "tests/web/test_record_pages.py: 25 mg/m² × 1.72 m² = 43.0 mg"),
        (1000, D("1.72"), 0, D("1720"), "tests/web/test_record_pages.py: 1000 mg/m² × 1.72 m² = 1720 mg"),
        (30, D("1.75"), 1, D("52.5"), "by hand: 30 × 1.75 = 52.5"),
        (25, D("1.83"), 0, D("46"), "half up, not to even: 45.75 → 46"),
        (25, D("1.81"), 1, D("45.3"), "half up, not to even: 45.25 → 45.3"),
    ],
)
def test_dose_from_bsa_multiplies_the_rounded_bsa_exactly(per_m2, bsa, places, dose, source):
    assert dose_from_bsa(per_m2, bsa, places=places) == dose, source


def test_the_rounding_rule_bsa_first_then_multiply():
    """issue 13 asks to state it: the BSA is rounded to 2 decimals before multiplying (1820, not 1818)."""
    assert dose_from_bsa(1000, body_surface_area(170, 70)) == 1820
    unrounded = (D(170) * 70 / 3600).sqrt() * 1000
    assert round(unrounded) == 1818  # what the unrounded BSA would have given


@pytest.mark.parametrize(
    "dose, percent, places, reduced, source",
    [
        (D("41.5"), 20, 1, D("33.2"), "issue 13: fludarabine 41.5 mg/day − 20 % = 33.2 mg/day (renal band 30–70)"),
        (D("45.5"), 40, 1, D("27.3"), "domain.md: a large centre's −40 % at 30–49 mL/min, 45.5 × 0.6 = 27.3"),
        (D("45.5"), 0, None, D("45.5"), "no reduction leaves the dose"),
    ],
)
def test_a_dose_reduced_by_a_percentage(dose, percent, places, reduced, source):
    assert dose_reduced(dose, percent, places=places) == reduced, source


@pytest.mark.parametrize("percent", [-5, 100, 120])
def test_a_reduction_outside_0_to_100_is_refused(percent):
    with pytest.raises(ValueError):
        dose_reduced(45, percent)


@pytest.mark.parametrize(
    "given, prescribed, tolerance, ok, source",
    [
        (D("45.5"), D("45.5"), 5, True, "exact"),
        (91, D("45.5"), 5, False, "issue 13: fludarabine recorded at 91 mg where the sheet says 45.5 (double)"),
        (D("4.55"), D("45.5"), 5, False, "issue 13: recorded at 4.55 mg (a decimal point slipped)"),
        (D("1.82"), 1820, 5, False, "issue 13: cyclophosphamide '1.82' (grams typed into the mg field)"),
        (D("47.775"), D("45.5"), 5, True, "domain.md tolerance 5 %: the upper edge 45.5 × 1.05 is accepted"),
        (D("47.8"), D("45.5"), 5, False, "just above the upper edge"),
        (D("43.225"), D("45.5"), 5, True, "the lower edge 45.5 × 0.95 is accepted"),
        (D("43.2"), D("45.5"), 5, False, "just below the lower edge"),
    ],
)
def test_given_against_prescribed_within_a_tolerance(given, prescribed, tolerance, ok, source):
    assert within_tolerance(given, prescribed, tolerance) is ok, source


def test_the_deviation_is_signed_percent_of_the_prescribed_dose():
    assert deviation_percent(91, D("45.5")) == 100
    assert deviation_percent(D("4.55"), D("45.5")) == -90


@pytest.mark.parametrize(
    "weight_kg, maximum, source",
    [
        (45, D("360"), "issue 13 / domain.md: 45 kg × 8 mg/kg = 360 mg"),
        (100, D("800"), "domain.md: 100 kg × 8 = 800, exactly the cap"),
        (120, D("800"), "domain.md: 120 kg × 8 = 960, capped at 800 mg per dose"),
        (D("62.5"), D("500.0"), "by hand: 62.5 × 8 = 500"),
    ],
)
def test_tocilizumab_maximum_dose_is_8_mg_per_kg_capped_at_800(weight_kg, maximum, source):
    assert weight_based_dose_max(weight_kg, 8, 800) == maximum, source


T0 = datetime(2026, 3, 1, 8, 0)


@pytest.mark.parametrize(
    "given, at, expected, source",
    [
        ([], T0, [], "the first dose"),
        ([T0], T0 + timedelta(hours=8), [], "US labels: at least 8 h apart — exactly 8 h is on time"),
        ([T0], T0 + timedelta(hours=7, minutes=59), ["at least 8 h apart"], "7 h 59 min is too soon"),
        ([T0, T0 + timedelta(hours=8)], T0 + timedelta(hours=16), [], "3 doses in 24 h are allowed"),
        (
            [T0, T0 + timedelta(hours=8), T0 + timedelta(hours=16)],
            T0 + timedelta(hours=23, minutes=59),
            ["at least 8 h apart", "within 24 h"],
            "a 4th 7 h 59 min after the 3rd, within 24 h of the first",
        ),
        (
            [T0, T0 + timedelta(hours=8), T0 + timedelta(hours=16)],
            T0 + timedelta(hours=24),
            [],
            "24 h after the first, only two remain in the window",
        ),
        (
            [T0 + timedelta(hours=h) for h in (0, 8, 16, 40)],
            T0 + timedelta(hours=60),
            ["in all; at most 4"],
            "US labels: at most 4 doses in total",
        ),
    ],
)
def test_tocilizumab_schedule(given, at, expected, source):
    """US CAR-T labels (domain.md "Tocilizumab"): ≥ 8 h apart, ≤ 3 in 24 h, ≤ 4 in total."""
    problems = dose_schedule_problems(given, at, min_hours_apart=8, max_in_window=3, window_hours=24, max_total=4)
    assert len(problems) == len(expected), (source, problems)
    for words, problem in zip(expected, problems, strict=True):
        assert words in problem, source


def test_a_protocol_with_a_shorter_gap_still_counts_doses_in_the_window():
    """With 8 h apart a 4th dose never falls within 24 h, so the window is shown with a 6 h gap (protocol data)."""
    given = [T0 + timedelta(hours=h) for h in (0, 6, 12)]
    problems = dose_schedule_problems(
        given, T0 + timedelta(hours=18), min_hours_apart=6, max_in_window=3, window_hours=24, max_total=4
    )
    assert problems == ["This would be dose 4 within 24 h; at most 3."]


@pytest.mark.parametrize(
    "per_kg, weight_kg, total, source",
    [
        (1, 70, 70, "domain.md: Erlangen 1 × 10⁶/kg × 70 kg = 70 × 10⁶"),
        (1, 45, 45, "issue 13: 45 kg at 1 × 10⁶/kg expects 45 × 10⁶ (5 × 10⁶ was accepted)"),
        (D("0.5"), D("62.5"), D("31.25"), "by hand"),
    ],
)
def test_expected_total_cells(per_kg, weight_kg, total, source):
    assert expected_total_cells(per_kg, weight_kg) == total, source


def test_cells_per_kg_from_the_total_and_the_tolerance_check():
    assert cells_per_kg(70, 70) == 1
    assert cells_per_kg(450, 45) == 10  # issue 13: "10 × 10⁶ cells/kg ... accepted"
    assert not within_tolerance(5, expected_total_cells(1, 45), 10)  # issue 13: total 5 × 10⁶ for 45 kg
    assert within_tolerance(D("44"), expected_total_cells(1, 45), 10)


@pytest.mark.parametrize(
    "born, on, years, source",
    [
        (date(1966, 3, 1), date(2026, 3, 1), 60, "a birthday counts from its own day"),
        (date(1966, 3, 2), date(2026, 3, 1), 59, "the day before the birthday"),
        (date(2008, 2, 29), date(2026, 2, 28), 17, "born 29 February: not 18 on 28 February of a common year"),
        (date(2008, 2, 29), date(2026, 3, 1), 18, "born 29 February: 18 on 1 March"),
    ],
)
def test_age_in_whole_years_on_a_day(born, on, years, source):
    assert age_in_years(born, on) == years, source


def test_age_before_birth_is_refused():
    with pytest.raises(ValueError):
        age_in_years(date(2026, 1, 2), date(2026, 1, 1))
