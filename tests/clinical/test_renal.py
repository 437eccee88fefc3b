"""Cockcroft–Gault and renal bands against worked examples; the source of each row is beside it."""

from decimal import Decimal

import pytest

from clinical.renal import creatinine_clearance, creatinine_mg_dl, renal_band, renal_bands

D = Decimal

# The fludarabine package insert as protocol data (domain.md "Renal function"): −20 % at 30–70 mL/min,
# not recommended below 30 (a physician decides).
PACKAGE_INSERT = [
    {"at_least": 0, "dose_percent": None, "label": "below 30: physician decides"},
    {"at_least": 30, "dose_percent": 80, "label": "30–70: −20 %"},
    {"above": 70, "dose_percent": 100, "label": "above 70: full dose"},
]
# domain.md: "one large centre gives full dose at 50–69 and −40 % at 30–49".
LARGE_CENTRE = [
    {"at_least": 0, "dose_percent": None},
    {"at_least": 30, "dose_percent": 60},
    {"at_least": 50, "dose_percent": 100},
]


@pytest.mark.parametrize(
    "age, weight, creatinine, unit, female, clearance, source",
    [
        (60, 60, D("1.2"), "mg/dL", True, D("47.2"), "domain.md / issue 13: woman 60 y 60 kg 1.2 mg/dL → 47.2 mL/min"),
        (60, 60, D("1.2"), "mg/dL", False, D("55.6"), "the same man: 4800 / 86.4 = 55.56"),
        (60, 60, D("106.08"), "µmol/L", True, D("47.2"), "domain.md: µmol/L ÷ 88.4 = mg/dL (106.08 µmol/L = 1.2 mg/dL)"),
        (40, 70, 1, "mg/dL", False, D("97.2"), "by hand: 100 × 70 / 72 = 97.22"),
        (22, 55, D("0.8"), "mg/dL", True, D("95.8"), "by hand: 118 × 55 / 57.6 = 112.67, × 0.85 = 95.77"),
    ],
)
def test_creatinine_clearance_by_cockcroft_gault(age, weight, creatinine, unit, female, clearance, source):
    assert creatinine_clearance(age, weight, creatinine, female, creatinine_unit=unit) == clearance, source


def test_creatinine_units():
    assert creatinine_mg_dl(D("88.4"), "µmol/L") == 1
    assert creatinine_mg_dl(D("1.2"), "mg/dL") == D("1.2")
    with pytest.raises(ValueError):
        creatinine_mg_dl(1, "mmol/L")


@pytest.mark.parametrize("age", [-1, 140, 30.5, True])
def test_an_age_that_is_not_whole_years_below_140_is_refused(age):
    with pytest.raises(ValueError):
        creatinine_clearance(age, 60, 1, False)


@pytest.mark.parametrize(
    "clearance, table, percent, source",
    [
        (D("47.2"), PACKAGE_INSERT, 80, "issue 13: CrCl 47.2 → −20 % (41.5 → 33.2 mg/day)"),
        (70, PACKAGE_INSERT, 80, "package insert: 30–70 includes 70"),
        (D("70.1"), PACKAGE_INSERT, 100, "above 70: full dose"),
        (30, PACKAGE_INSERT, 80, "package insert: 30–70 includes 30"),
        (D("29.9"), PACKAGE_INSERT, None, "below 30: not recommended, a physician decides"),
        (20, PACKAGE_INSERT, None, "issue 13: CrCl 20 with 'full dose' was accepted"),
        (0, PACKAGE_INSERT, None, "the lowest band starts at 0"),
        (D("47.2"), LARGE_CENTRE, 60, "domain.md: a large centre's −40 % at 30–49"),
        (50, LARGE_CENTRE, 100, "domain.md: full dose at 50–69"),
    ],
)
def test_the_renal_band_comes_from_the_protocols_table(clearance, table, percent, source):
    band = renal_band(clearance, table)
    assert band.dose_percent == percent, source
    assert band.physician_decides is (percent is None)


@pytest.mark.parametrize(
    "table",
    [
        [],
        [{"at_least": 30, "dose_percent": 80}],  # does not start at 0
        [{"at_least": 0, "dose_percent": None}, {"at_least": 70, "dose_percent": 100}, {"at_least": 30, "dose_percent": 80}],
        [{"at_least": 0, "above": 0, "dose_percent": None}],
        [{"at_least": 0, "dose_percent": 0}],
        [{"at_least": 0, "dose_percent": None}, {"at_least": 0, "dose_percent": 100}],
    ],
)
def test_a_table_that_is_not_a_ladder_from_0_is_refused(table):
    with pytest.raises(ValueError):
        renal_bands(table)
