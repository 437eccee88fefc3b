"""The small clinic of the metrics tests, with every answer worked out by hand in test_selectors.py.

Four patients, the clock pinned at 15 June 2026 12:00 (Berlin):

  A  SLE  collected 5 Jan, Day 0 26 Jan (vein-to-vein 21), discharged 3 Feb by its date (stay 8);
          CRS 1 then 2, ICANS 0; stage-1 labs on time, the collection late (first_late_at).
  B  SLE  collected 2 Feb, Day 0 26 Feb (24), discharge step done 8 Mar without a date (stay 10);
          CRS computed 3 overruled to 1 by the physician, ICANS 1; Day +14 visit pending and late now;
          Day +28 visit done inside the window it has now, but it was late before Day 0 moved.
  C  MG   collected 2 Mar, Day 0 29 Mar (27), discharged 4 Apr (stay 6); CRS 0, ICANS 0;
          Day +14 visit on time, Day +28 skipped; the journey was withdrawn on 10 May.
  D  SLE  collected 20 May, not infused; its lymphodepletion day is blocked (stage 3 not started).

Manufacturing (UTC): maker "Maker of Autoleucel": Plant North A 10.5 days (8 Jan 09:00 → 18 Jan 21:00),
B 12 days; Plant South C 14 days (a second receipt on 10 Mar does not count); maker "Maker of Betacel":
Plant East D 10 days.
"""

from datetime import date

import pytest

from journeys.models import JourneyStatus, StepStatus
from tests.manufacturing.builders import make_plant, make_product
from tests.registry.builders import add_released_order, add_step, at, make_journey, utc


@pytest.fixture
def clinic(db, at_clinic):
    at_clinic(2026, 6, 15, 12, 0)
    return build_small_clinic()


def build_small_clinic() -> dict:
    autoleucel = make_product(name="Autoleucel")
    north, south = make_plant(autoleucel, name="Plant North"), make_plant(autoleucel, name="Plant South")
    betacel = make_product(name="Betacel")
    east = make_plant(betacel, name="Plant East")

    a = make_journey(
        leukapheresis=date(2026, 1, 5),
        day0=date(2026, 1, 26),
        stages={
            1: (at(2026, 1, 1), at(2026, 1, 6)),
            2: (at(2026, 1, 6), at(2026, 1, 19)),
            3: (at(2026, 1, 19), at(2026, 1, 25)),
            4: (at(2026, 1, 25), at(2026, 2, 3)),
            5: (at(2026, 2, 3), None),
        },
    )
    add_step(a, "eligibility-labs")
    add_step(a, "leukapheresis", first_late_at=at(2026, 1, 6, 9))
    add_step(a, "monitoring-day-1", record={"crs_grade": "1", "icans_grade": "0"})
    add_step(a, "monitoring-day-2", record={"crs_grade": "2", "icans_grade": "0"})
    add_step(a, "discharge", record={"discharge_date": "2026-02-03"}, performed_at=at(2026, 2, 2, 16))
    add_step(a, "visit-month-6", status=StepStatus.NOT_APPLICABLE)  # not counted anywhere
    add_step(a, "ltfu-year-2", status=StepStatus.PENDING)  # not due before 2028
    add_released_order(a, plant=north, product=autoleucel, received=[utc(2026, 1, 8, 9)], released=utc(2026, 1, 18, 21))

    b = make_journey(
        leukapheresis=date(2026, 2, 2),
        day0=date(2026, 2, 26),
        stages={
            1: (at(2026, 1, 28), at(2026, 2, 3)),
            2: (at(2026, 2, 3), at(2026, 2, 18)),
            3: (at(2026, 2, 18), at(2026, 2, 25)),
            4: (at(2026, 2, 25), at(2026, 3, 8)),
            5: (at(2026, 3, 8), None),
        },
    )
    add_step(b, "monitoring-day-1", record={"crs_grade": "3", "crs_grade_physician": "1", "icans_grade": "1"})
    add_step(b, "discharge", record={}, performed_at=at(2026, 3, 8, 11))
    add_step(b, "visit-day-14", status=StepStatus.PENDING)
    add_step(b, "visit-day-28", first_late_at=at(2026, 3, 20, 9))
    add_released_order(b, plant=north, product=autoleucel, received=[utc(2026, 2, 5)], released=utc(2026, 2, 17))

    c = make_journey(
        indication="myasthenia_gravis",
        leukapheresis=date(2026, 3, 2),
        day0=date(2026, 3, 29),
        stages={
            1: (at(2026, 3, 1), at(2026, 3, 3)),
            2: (at(2026, 3, 3), at(2026, 3, 20)),
            3: (at(2026, 3, 20), at(2026, 3, 28)),
            4: (at(2026, 3, 28), at(2026, 4, 5)),
            5: (at(2026, 4, 5), None),
        },
        status=JourneyStatus.WITHDRAWN,
        ended_at=at(2026, 5, 10),
    )
    add_step(c, "monitoring-day-1", record={"crs_grade": "0", "icans_grade": "0"})
    add_step(c, "discharge", record={"discharge_date": "2026-04-04"})
    add_step(c, "visit-day-14")
    add_step(c, "visit-day-28", status=StepStatus.SKIPPED)
    add_released_order(
        c, plant=south, product=autoleucel, received=[utc(2026, 3, 5, 12), utc(2026, 3, 10)], released=utc(2026, 3, 19, 12)
    )

    d = make_journey(
        leukapheresis=date(2026, 5, 20),
        day0=None,
        stages={1: (at(2026, 5, 13), at(2026, 5, 21)), 2: (at(2026, 5, 21), None)},
    )
    add_step(d, "ld-day-5", status=StepStatus.PENDING)  # blocked: not late, not counted
    add_released_order(d, plant=east, product=betacel, received=[utc(2026, 5, 22)], released=utc(2026, 6, 1))
    return {"a": a, "b": b, "c": c, "d": d}
