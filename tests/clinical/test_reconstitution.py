"""B-cell aplasia and reconstitution, hypogammaglobulinaemia, remission and relapse: worked examples, sources beside."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from clinical.reconstitution import b_cell_course, igg_status, malignancy_reported, remission_course

D0 = date(2026, 1, 5)  # Day 0 of the examples


def day(n: int) -> date:
    return D0 + timedelta(days=n)


@pytest.mark.parametrize(
    "counts, in_aplasia, since, reconstituted, source",
    [
        ([], None, None, None, "no count: nothing to say"),
        ([(day(-7), 180), (day(14), 0), (day(28), 0)], True, day(14), None, "aplasia after the infusion, not yet back"),
        (
            [(day(-7), 180), (day(14), 0), (day(60), "0.5"), (day(110), 12)],
            False,
            day(14),
            day(110),
            "Mackensen 2022: B cells back at ~110 days; 0.5 /µL is still below the 1 /µL threshold",
        ),
        ([(day(14), 0), (day(110), 1)], False, day(14), day(110), "at the threshold counts as back (below is aplasia)"),
        ([(day(14), 250), (day(28), 300)], False, None, None, "never aplastic: no reconstitution date"),
        (
            [(day(14), 0), (day(110), 20), (day(400), 0)],
            True,
            day(400),
            None,
            "a second run of aplasia (e.g. re-treatment) starts again",
        ),
        ([(day(110), 20), (day(14), 0)], False, day(14), day(110), "read in date order, not the order given"),
        ([(day(14), None), (day(28), 0)], True, day(28), None, "a visit that did not count B cells is passed over"),
    ],
)
def test_b_cell_course(counts, in_aplasia, since, reconstituted, source):
    course = b_cell_course(counts, aplasia_below_per_ul=1)
    assert (course.in_aplasia, course.aplasia_since, course.reconstituted_on) == (in_aplasia, since, reconstituted), source


def test_b_cell_threshold_is_data():
    counts = [(day(14), 0), (day(60), 3), (day(110), 12)]
    assert b_cell_course(counts, aplasia_below_per_ul=1).reconstituted_on == day(60)
    assert b_cell_course(counts, aplasia_below_per_ul=5).reconstituted_on == day(110)


@pytest.mark.parametrize(
    "values, replacement, low, source",
    [
        ([], False, None, "not measured"),
        ([], True, True, "on replacement without a level: hypogammaglobulinaemia all the same"),
        ([(day(28), "6.1"), (day(90), "3.9")], False, True, "Hill 2019: IgG < 4 g/L"),
        ([(day(28), "3.2"), (day(90), "4.0")], False, False, "exactly 4 g/L is not below"),
        ([(day(90), "7.5")], True, True, "a normal level on replacement is the infused IgG"),
    ],
)
def test_igg_status(values, replacement, low, source):
    assert igg_status(values, low_below_g_l=4, on_replacement=replacement).hypogammaglobulinaemia is low, source


def test_igg_latest():
    status = igg_status([(day(90), "3.9"), (day(28), "6.1")], low_below_g_l=Decimal("4"))
    assert (status.latest, status.latest_on) == (Decimal("3.9"), day(90))


@pytest.mark.parametrize(
    "assessments, state, since, relapsed, source",
    [
        ([], None, None, None, "not assessed"),
        ([(day(90), "doris"), (day(365), "doris")], "doris", day(90), None, "Mackensen 2022: DORIS at 3 months, kept"),
        ([(day(90), "lldas"), (day(365), "doris")], "doris", day(90), None, "LLDAS then DORIS: one run of remission"),
        ([(day(90), "active"), (day(182), "doris")], "doris", day(182), None, "remission from the first DORIS"),
        ([(day(90), "doris"), (day(365), "active")], "active", day(365), day(365), "relapse: active after remission"),
        (
            [(day(90), "doris"), (day(365), "active"), (day(400), "active")],
            "active",
            day(365),
            day(365),
            "the relapse dates from its first active visit",
        ),
        ([(day(90), "active"), (day(182), "active")], "active", day(90), None, "never in remission: no relapse"),
        (
            [(day(90), "doris"), (day(182), "not_assessable"), (day(365), "doris")],
            "doris",
            day(90),
            None,
            "not assessable neither breaks nor proves the run",
        ),
        (
            [(day(90), "doris"), (day(365), "active"), (day(500), "doris")],
            "doris",
            day(500),
            None,
            "a new remission after relapse",
        ),
        ([(day(90), "not_assessable")], None, None, None, "only not assessable: unknown"),
    ],
)
def test_remission_course(assessments, state, since, relapsed, source):
    course = remission_course(assessments)
    assert (course.state, course.since, course.relapsed_on) == (state, since, relapsed), source


@pytest.mark.parametrize(
    "value, reported",
    [(True, True), (False, False), (None, False), ("none", False), ("suspected", True), ("confirmed", True), ("yes", True)],
)
def test_malignancy_reported(value, reported):
    assert malignancy_reported(value) is reported
