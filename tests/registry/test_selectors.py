"""The metrics on the small clinic of conftest.py, every answer worked out by hand; the SQL medians and the
Python fallback agree; the number of queries does not grow with the number of patients."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry import selectors
from registry.selectors import Spread, percentile_cont
from tests.factories import bulk_journeys
from tests.registry.builders import shipped_protocol


def spreads(rows):
    return {(row.group, row.label): row.spread for row in rows}


@pytest.mark.parametrize("in_sql", [True, False], ids=["percentile_cont in SQL", "Python fallback"])
def test_vein_to_vein_by_indication(clinic, in_sql):
    # SLE: A 21, B 24 days -> median 22.5, quartiles 21 + 3 × 0.25 = 21.75 and 23.25. MG: C 27. All: 21, 24, 27.
    assert spreads(selectors.vein_to_vein(in_sql=in_sql)) == {
        ("", "Myasthenia gravis"): Spread(1, 27, 27, 27, 27, 27),
        ("", "Systemic lupus erythematosus"): Spread(2, 22.5, 21.75, 23.25, 21, 24),
        ("", "All indications"): Spread(3, 24, 22.5, 25.5, 21, 27),
    }


@pytest.mark.parametrize("in_sql", [True, False], ids=["percentile_cont in SQL", "Python fallback"])
def test_vein_to_vein_in_a_date_range(clinic, in_sql):
    # Day 0 from 1 February: A (26 January) is left out.
    rows = spreads(selectors.vein_to_vein(since=date(2026, 2, 1), in_sql=in_sql))
    assert rows[("", "All indications")] == Spread(2, 25.5, 24.75, 26.25, 24, 27)
    rows = spreads(selectors.vein_to_vein(since=date(2026, 2, 1), until=date(2026, 3, 1), in_sql=in_sql))
    assert rows == {
        ("", "Systemic lupus erythematosus"): Spread(1, 24, 24, 24, 24, 24),
        ("", "All indications"): Spread(1, 24, 24, 24, 24, 24),
    }


@pytest.mark.parametrize("in_sql", [True, False], ids=["percentile_cont in SQL", "Python fallback"])
def test_manufacturing_turnaround_by_plant_and_maker(clinic, in_sql):
    # North: A 10.5 days (09:00 -> 21:00 ten days on), B 12 -> median 11.25, quartiles 10.875 and 11.625.
    # South: C 14 (the second receipt on 10 March is not the start). The maker: 10.5, 12, 14. East: D 10.
    rows = spreads(selectors.turnaround(in_sql=in_sql))
    assert rows == {
        ("Maker of Autoleucel", "Plant North"): Spread(2, 11.25, 10.875, 11.625, 10.5, 12),
        ("Maker of Autoleucel", "Plant South"): Spread(1, 14, 14, 14, 14, 14),
        ("Maker of Autoleucel", "All plants of Maker of Autoleucel"): Spread(3, 12, 11.25, 13, 10.5, 14),
        ("Maker of Betacel", "Plant East"): Spread(1, 10, 10, 10, 10, 10),
        ("Maker of Betacel", "All plants of Maker of Betacel"): Spread(1, 10, 10, 10, 10, 10),
    }
    # Released from March on: C and D only.
    assert list(spreads(selectors.turnaround(since=date(2026, 3, 1), in_sql=in_sql))) == [
        ("Maker of Autoleucel", "Plant South"),
        ("Maker of Autoleucel", "All plants of Maker of Autoleucel"),
        ("Maker of Betacel", "Plant East"),
        ("Maker of Betacel", "All plants of Maker of Betacel"),
    ]


@pytest.mark.parametrize("in_sql", [True, False], ids=["percentile_cont in SQL", "Python fallback"])
def test_length_of_stay_from_the_discharge_date_else_the_day_of_the_step(clinic, in_sql):
    # A: discharge_date 3 Feb - Day 0 26 Jan = 8 (the step was signed the day before: the date wins).
    # B: no date, step done 8 March - 26 Feb = 10. C (MG): 4 April - 29 March = 6.
    assert spreads(selectors.length_of_stay(in_sql=in_sql)) == {
        ("", "Myasthenia gravis"): Spread(1, 6, 6, 6, 6, 6),
        ("", "Systemic lupus erythematosus"): Spread(2, 9, 8.5, 9.5, 8, 10),
        ("", "All indications"): Spread(3, 8, 7, 9, 6, 10),
    }


def test_highest_crs_and_icans_grade_per_patient(clinic):
    # CRS: A 1 then 2 -> 2; B computed 3, the physician's 1 -> 1; C 0. ICANS: A 0, B 1, C 0. D is not infused.
    rows, crs_missing, icans_missing = selectors.grades()
    assert [(row.grade, row.crs, row.icans) for row in rows] == [
        ("0", 1, 2),
        ("1", 1, 1),
        ("2", 1, 0),
        ("3", 0, 0),
        ("4", 0, 0),
    ]
    assert (crs_missing, icans_missing) == (0, 0)


def test_on_time_keeps_lateness_after_day0_moved(clinic):
    # Stage 1: A's labs on time, A's collection late. Stage 3: D's blocked day is not counted.
    # Stage 4: seven monitoring and discharge steps on time. Stage 5: C's Day +14 on time; B's Day +14 late
    # now; B's Day +28 done within its window as it is now, but late before Day 0 moved (first_late_at).
    rows = selectors.on_time(now=timezone.now())
    assert [(row.label, row.on_time, row.late) for row in rows] == [
        ("Leukapheresis", 1, 1),
        ("Lymphodepletion", 0, 0),
        ("Infusion", 7, 0),
        ("Immune re-education", 1, 2),
        ("All stages", 9, 3),
    ]
    assert rows[-1].rate == 0.75 and rows[1].rate is None


def test_follow_up_completeness_by_year(clinic):
    # Year 1: B +14 (pending), B +28 (done), C +14 (done), C +28 (skipped) were due -> 4 due, 2 done.
    # A's month 6 was closed as not applicable; A's year 2 is not due before 2028.
    rows = selectors.follow_up(now=timezone.now())
    assert [(row.year, row.due, row.done) for row in rows] == [(1, 4, 2)]
    assert rows[0].rate == 0.5


def test_patients_per_stage_month_by_month(clinic):
    months = selectors.month_ends(today=date(2026, 6, 15))
    assert months[0] == date(2025, 7, 1) and months[-1] == date(2026, 6, 1) and len(months) == 12
    rows = selectors.stages_over_time(now=timezone.now(), months=months)
    # Columns Jan..Jun 2026 (the six before are empty). End of January: B collecting, A infused.
    # February: B in infusion, A in follow-up. March: C in infusion. April: all three in follow-up.
    # May: C withdrawn on 10 May, D in re-engineering. June (so far): as May.
    assert {row.label: row.counts[6:] for row in rows} == {
        "Leukapheresis": [1, 0, 0, 0, 0, 0],
        "Re-engineering": [0, 0, 0, 0, 1, 1],
        "Lymphodepletion": [0, 0, 0, 0, 0, 0],
        "Infusion": [1, 1, 1, 0, 0, 0],
        "Immune re-education": [0, 1, 2, 3, 2, 2],
    }
    assert all(count == 0 for row in rows for count in row.counts[:6])


def test_month_ends_follow_the_range():
    assert selectors.month_ends(today=date(2026, 6, 15), since=date(2025, 11, 20), until=date(2026, 2, 3)) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]


@pytest.mark.parametrize(
    "values, fraction, expected",
    [
        ([], 0.5, None),
        ([7], 0.25, 7),
        ([1, 2], 0.5, 1.5),
        ([1, 2, 3, 4], 0.25, 1.75),  # PostgreSQL: percentile_cont(0.25) of 1..4 = 1.75
        ([1, 2, 3, 4], 0.75, 3.25),
        ([10, 20, 30], 0.5, 20),
    ],
)
def test_percentile_cont_in_python_is_postgresqls(values, fraction, expected):
    assert percentile_cont(values, fraction) == expected


def test_percentile_cont_agrees_with_postgresql(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY v), percentile_cont(0.5) WITHIN GROUP (ORDER BY v) "
            "FROM unnest(ARRAY[3.0, 1.0, 10.0, 4.5, 8.0]) AS v"
        )
        q1, median = cursor.fetchone()
    ordered = sorted([3.0, 1.0, 10.0, 4.5, 8.0])
    assert (percentile_cont(ordered, 0.25), percentile_cont(ordered, 0.5)) == (q1, median)


def _count_queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        selectors.clinic_metrics(now=timezone.now(), **kwargs)
    return len(captured)


@pytest.mark.parametrize("in_sql", [True, False], ids=["percentile_cont in SQL", "Python fallback"])
def test_the_metrics_take_the_same_queries_at_two_sizes(clinic, in_sql):
    small = _count_queries(in_sql=in_sql)
    bulk_journeys(protocol=shipped_protocol(), count=40, leukapheresis_date=date(2026, 3, 1))
    large = _count_queries(in_sql=in_sql)
    assert small == large == 12
