"""Correcting what a done step recorded: with a reason, by the person who recorded it or a supervisor,
the first record kept in the history and both sides in the correction's event."""

from datetime import date

import pytest

from carclinic.errors import InvalidInput, NotPermitted, StaleVersion
from journeys.errors import TransitionNotAllowed
from journeys.models import EventKind, JourneyEvent, Step
from journeys.services import journey_start, step_complete, step_record_correct
from tests.factories import PatientFactory, make_protocol

VITALS = [
    {
        "name": "temperature_max",
        "label": "Highest temperature",
        "type": "decimal",
        "unit": "°C",
        "min": 34,
        "max": 43,
        "step": 0.1,
        "short": "Tmax",
    },
    {
        "name": "crs_grade",
        "label": "CRS grade",
        "type": "choice",
        "required": True,
        "short": "CRS grade",
        "choices": [["0", "Grade 0"], ["1", "Grade 1"], ["2", "Grade 2"]],
    },
]


@pytest.fixture
def recorded(coordinator, nurse):
    protocol = make_protocol(
        name="Corrections protocol",
        steps=[
            dict(stage=1, code="vitals", anchor="leukapheresis", offset_days=0, responsible_role="nurse", record_fields=VITALS),
            dict(stage=1, code="signoff", anchor="leukapheresis", offset_days=0, responsible_role="physician"),
            dict(
                stage=1, code="collect", anchor="leukapheresis", offset_days=0, responsible_role="nurse", milestone="collection"
            ),
            dict(
                stage=2,
                code="release",
                anchor="day0",
                offset_days=-7,
                window_before_days=5,
                responsible_role="nurse",
                milestone="product_released",
            ),
        ],
    )
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=date.today()
    )
    step = journey.steps.get(template__code="vitals")
    return step_complete(
        actor=nurse, step_id=step.id, notes="spiked overnight", record={"temperature_max": "38.2", "crs_grade": "1"}
    )


def test_a_correction_keeps_the_first_record_in_the_history_and_both_sides_in_its_event(recorded, nurse):
    corrected = step_record_correct(
        actor=nurse,
        step_id=recorded.id,
        expected_version=recorded.version,
        record={"temperature_max": "37.2", "crs_grade": "0"},
        notes="spiked overnight",
        reason="Typed 38.2 for 37.2",
    )
    assert corrected.record == {"temperature_max": 37.2, "crs_grade": "0"}
    assert corrected.status == "done" and corrected.completed_by == nurse  # the original signature stands
    event = JourneyEvent.objects.get(step=recorded, kind=EventKind.STEP_CORRECTED)
    assert event.actor == nurse and event.reason == "Typed 38.2 for 37.2"
    assert event.detail["changed"] == ["crs_grade", "temperature_max"]
    assert event.detail["before"]["record"] == {"temperature_max": 38.2, "crs_grade": "1"}
    latest = recorded.history.latest()
    assert latest.record == corrected.record and latest.history_change_reason == "Typed 38.2 for 37.2"
    assert recorded.history.filter(record={"temperature_max": 38.2, "crs_grade": "1"}).exists()


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(record={"temperature_max": "48", "crs_grade": "0"}, reason="typo"), "record.temperature_max"),
        (dict(record={"temperature_max": "37.2"}, reason="typo"), "record.crs_grade"),
        (dict(record={"temperature_max": "37.2", "crs_grade": "0"}, reason="  "), "reason"),
        (dict(record={"temperature_max": "38.2", "crs_grade": "1"}, reason="nothing"), "__all__"),
    ],
)
def test_a_bad_correction_changes_nothing(recorded, nurse, change, field):
    with pytest.raises(InvalidInput) as refused:
        step_record_correct(actor=nurse, step_id=recorded.id, notes="spiked overnight", **change)
    assert field in refused.value.field_errors
    assert Step.objects.get(pk=recorded.pk).record == recorded.record
    assert not JourneyEvent.objects.filter(kind=EventKind.STEP_CORRECTED).exists()


def test_another_nurse_may_not_correct_but_a_coordinator_may_and_a_stale_form_loses(recorded, make_user, coordinator):
    colleague = make_user("nurse")
    with pytest.raises(NotPermitted, match="recorded this step"):
        step_record_correct(actor=colleague, step_id=recorded.id, record={"crs_grade": "0"}, notes="", reason="r")
    step_record_correct(
        actor=coordinator, step_id=recorded.id, record={"crs_grade": "0"}, notes="", reason="r", expected_version=recorded.version
    )
    with pytest.raises(StaleVersion):
        step_record_correct(
            actor=coordinator,
            step_id=recorded.id,
            record={"crs_grade": "2"},
            notes="",
            reason="r",
            expected_version=recorded.version,
        )


def test_a_pending_step_has_nothing_to_correct_and_a_viewer_corrects_nothing(recorded, coordinator, viewer):
    pending = Step.objects.get(journey=recorded.journey, template__code="collect")
    with pytest.raises(TransitionNotAllowed, match="Only a step recorded as done"):
        step_record_correct(actor=coordinator, step_id=pending.id, record={}, notes="x", reason="r")
    with pytest.raises(NotPermitted):
        step_record_correct(actor=viewer, step_id=recorded.id, record={"crs_grade": "0"}, notes="", reason="r")


def test_a_physicians_step_is_corrected_by_a_physician_only(recorded, coordinator, physician):
    signoff = step_complete(actor=physician, step_id=Step.objects.get(journey=recorded.journey, template__code="signoff").id)
    with pytest.raises(NotPermitted, match="Only a physician may correct"):
        step_record_correct(actor=coordinator, step_id=signoff.id, record={}, notes="fit", reason="r")
    assert step_record_correct(actor=physician, step_id=signoff.id, record={}, notes="fit", reason="r").notes == "fit"
