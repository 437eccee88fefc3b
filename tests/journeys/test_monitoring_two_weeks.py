"""Issue 13: "no monitoring step between Day +8 and Day +13 although US labels since June 2025 ask for two weeks".
The shipped protocol monitors daily to Day +14, days +8…+14 recording the same bedside components as days +1…+7
(grades computed and alerted the same way); no other step's position changed."""

from datetime import date

from alerts.models import AlertKind, ClinicalAlert
from journeys.services import journey_start, step_complete
from tests.factories import CALM_MONITORING_DAY as CALM
from tests.factories import PatientFactory, make_protocol

POSITIONS_BEFORE = {  # the shipped stage 4 as it was: none of these moved
    "admission": 11,
    "coi-check": 12,
    "infusion": 13,
    **{f"monitoring-day-{day}": 13 + day for day in range(1, 8)},
    "crs-icans-review": 21,
    "discharge": 22,
}


def test_the_shipped_protocol_monitors_daily_to_day_14_with_the_same_sheet(protocol):
    day1 = protocol.step_templates.get(code="monitoring-day-1")
    for day in range(8, 15):
        step = protocol.step_templates.get(code=f"monitoring-day-{day}")
        assert (step.stage, step.anchor, step.offset_days, step.position) == (4, "day0", day, 20)
        assert step.record_fields == day1.record_fields
        assert (step.responsible_role, step.required) == (day1.responsible_role, True)
    stage4 = list(protocol.step_templates.filter(stage=4).values_list("code", "position"))
    assert {code: position for code, position in stage4 if code in POSITIONS_BEFORE} == POSITIONS_BEFORE
    # Ordered (stage, position, offset): day 8…14 right after day 7, before the physician's review.
    codes = [code for code, _ in stage4]
    assert codes[codes.index("monitoring-day-7") : codes.index("crs-icans-review")] == [
        f"monitoring-day-{day}" for day in range(7, 15)
    ]


def test_day_10_grades_hypotension_with_low_flow_oxygen_as_crs_2_and_alerts(protocol, coordinator, nurse):
    sheet = protocol.step_templates.get(code="monitoring-day-10").record_fields
    ward = make_protocol(
        name="Day 10",
        steps=[
            dict(
                stage=1, code="monitoring", anchor="leukapheresis", offset_days=0, responsible_role="nurse", record_fields=sheet
            ),
            dict(
                stage=1, code="collect", anchor="leukapheresis", offset_days=0, responsible_role="nurse", milestone="collection"
            ),
        ],
    )
    journey = journey_start(
        actor=coordinator,
        patient_id=PatientFactory(date_of_birth=date(1980, 5, 5)).id,
        protocol_id=ward.id,
        leukapheresis_date=date.today(),
    )
    step = journey.steps.get(template__code="monitoring")
    record = {**CALM, "temperature_max": "38.4", "hypotension": "yes", "oxygen": "low_flow", "oxygen_l_min": "3"}
    done = step_complete(actor=nurse, step_id=step.id, record=record)
    assert (done.record["crs_grade"], done.record["icans_grade"]) == ("2", "0")
    assert ClinicalAlert.objects.get().kind == AlertKind.CRS
