"""A small clinic with a pinned calendar: one coordinator, one nurse, one physician, and patients whose
journeys start on a known leukapheresis date, so 'overdue at 09:00 on 3 March' is a fact, not a guess."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from journeys.services import journey_start
from tests.factories import PatientFactory

BERLIN = ZoneInfo("Europe/Berlin")
LEUKAPHERESIS = date(2026, 3, 2)


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN)


@pytest.fixture
def staff_team(coordinator, nurse, physician):
    return {"coordinator": coordinator, "nurse": nurse, "physician": physician}


@pytest.fixture
def start_journey(staff_team, protocol):
    def start(*, leukapheresis_date: date = LEUKAPHERESIS, day0_planned: date | None = None, assigned: bool = True):
        patient = PatientFactory(
            nurse=staff_team["nurse"] if assigned else None, coordinator=staff_team["coordinator"] if assigned else None
        )
        return journey_start(
            actor=staff_team["coordinator"],
            patient_id=patient.id,
            protocol_id=protocol.id,
            leukapheresis_date=leukapheresis_date,
            day0_planned=day0_planned,
        )

    return start
