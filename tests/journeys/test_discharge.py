"""Issue 13, "Discharge and restrictions": a discharge comes after the infusion (a discharge 5 days before it was
accepted); the length of stay and the restriction dates are computed from Day 0 and the protocol (Day 0 + 3 was
typed and accepted), shown on the patient page and on a printable discharge sheet for nurse, physician and
coordinator. Source of the 14 days and 2 hours: US CAR-T labels since June 2025 (domain.md, stage 4)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from carclinic.errors import InvalidInput
from journeys import selectors
from journeys.models import Journey, ProtocolTemplate, StepStatus
from journeys.services import journey_start, step_complete
from tests.factories import PatientFactory, make_protocol

pytestmark = pytest.mark.django_db

DISCHARGE = dict(
    stage=4,
    code="discharge",
    anchor="day0",
    offset_days=8,
    responsible_role="physician",
    milestone="discharge",
    done_after="infuse",
    record_fields=[{"name": "discharge_date", "label": "Discharge date", "type": "date", "required": True}],
)


def infused_journey(coordinator, nurse, *, days_ago: int = 8):
    """A journey whose cells went in `days_ago` days ago, on a small protocol with the shipped discharge step."""
    protocol = make_protocol(
        name=f"Discharge {ProtocolTemplate.objects.count()}",
        steps=[
            dict(
                stage=1, code="collect", anchor="leukapheresis", offset_days=0, responsible_role="nurse", milestone="collection"
            ),
            dict(
                stage=2,
                code="release",
                anchor="day0",
                offset_days=-7,
                responsible_role="coordinator",
                milestone="product_released",
            ),
            dict(stage=3, code="ld", anchor="day0", offset_days=-5, responsible_role="nurse"),
            dict(stage=4, code="infuse", anchor="day0", offset_days=0, responsible_role="nurse", milestone="infusion"),
            DISCHARGE,
        ],
    )
    now = timezone.now()
    start = timezone.localdate() - timedelta(days=days_ago + 21)
    journey = journey_start(
        actor=coordinator,
        patient_id=PatientFactory().id,
        protocol_id=protocol.id,
        leukapheresis_date=timezone.localdate(),
    )
    # Back-date the schedule so the walk is in the past: collection 3 weeks before the infusion.
    Journey.objects.filter(pk=journey.pk).update(leukapheresis_date=start, day0_planned=start + timedelta(days=21))
    for code, ago, actor in (
        ("collect", days_ago + 21, nurse),
        ("release", days_ago + 7, coordinator),
        ("ld", days_ago + 5, nurse),
        ("infuse", days_ago, nurse),
    ):
        step = journey.steps.get(template__code=code)
        step_complete(actor=actor, step_id=step.id, performed_at=now - timedelta(days=ago))
    journey.refresh_from_db()
    return journey


def test_a_discharge_before_the_infusion_is_refused_and_one_after_it_is_recorded(coordinator, nurse, physician):
    journey = infused_journey(coordinator, nurse, days_ago=8)
    day0 = journey.day0_actual
    assert day0 == timezone.localdate() - timedelta(days=8)
    step = journey.steps.get(template__code="discharge")
    with pytest.raises(InvalidInput) as error:
        step_complete(actor=physician, step_id=step.id, record={"discharge_date": (day0 - timedelta(days=5)).isoformat()})
    assert error.value.field_errors["record.discharge_date"] == [f"Before the infusion on {day0:%d %b %Y} (Day 0)."]
    with pytest.raises(InvalidInput, match="future"):
        step_complete(
            actor=physician, step_id=step.id, record={"discharge_date": (timezone.localdate() + timedelta(days=1)).isoformat()}
        )
    assert journey.steps.get(template__code="discharge").status == StepStatus.PENDING
    step_complete(actor=physician, step_id=step.id, record={"discharge_date": timezone.localdate().isoformat()})
    summary = selectors.discharge_summary(journey=journey)
    assert summary["discharged_on"] == timezone.localdate()
    assert summary["length_of_stay_days"] == 8
    assert [(r.until, r.day_number) for r in summary["restrictions"]] == [
        (day0 + timedelta(days=14), 14),
        (day0 + timedelta(days=14), 14),
    ]


def test_the_restrictions_are_the_protocols_days(coordinator, nurse):
    journey = infused_journey(coordinator, nurse)
    ProtocolTemplate.objects.filter(pk=journey.protocol_id).update(
        proximity_restriction_days=28, proximity_restriction_hours=1, driving_restriction_days=56
    )
    journey = Journey.objects.select_related("protocol").get(pk=journey.pk)
    restrictions = selectors.discharge_summary(journey=journey)["restrictions"]
    assert [(r.what, r.until) for r in restrictions] == [
        ("Stay within 1 hours of the treating centre", journey.day0_actual + timedelta(days=28)),
        ("Do not drive or operate heavy or dangerous machinery", journey.day0_actual + timedelta(days=56)),
    ]


def test_no_discharge_summary_before_the_infusion(journey):
    assert selectors.discharge_summary(journey=journey) is None


def test_the_shipped_protocol_computes_the_restrictions_and_types_only_the_discharge_date(protocol):
    step = protocol.step_templates.get(code="discharge")
    assert (step.milestone, step.done_after) == ("discharge", "infusion")
    assert [spec["name"] for spec in step.record_fields] == ["discharge_date"]
    assert step.record_fields[0]["required"] is True
    assert (protocol.proximity_restriction_days, protocol.proximity_restriction_hours, protocol.driving_restriction_days) == (
        14,
        2,
        14,
    )
    assert "112" in protocol.discharge_whom_to_call


@pytest.mark.parametrize("who", ["nurse", "physician", "coordinator"])
def test_the_printable_sheet_shows_the_patient_day0_restrictions_whom_to_call_and_signs(client, request, who):
    coordinator, nurse = request.getfixturevalue("coordinator"), request.getfixturevalue("nurse")
    journey = infused_journey(coordinator, nurse)
    ProtocolTemplate.objects.filter(pk=journey.protocol_id).update(discharge_whom_to_call="Ward 7, day and night: +49 9131 000")
    client.force_login(request.getfixturevalue(who))
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    until = journey.day0_actual + timedelta(days=14)
    assert f"Stay within 2 hours of the treating centre until {until:%a %d %b %Y} (Day +14)" in page
    assert reverse("discharge_sheet", args=[journey.public_id]) in page
    sheet = client.get(reverse("discharge_sheet", args=[journey.public_id]))
    text = sheet.content.decode()
    assert sheet.status_code == 200
    patient = journey.patient
    for expected in (
        f"{patient.given_name} {patient.family_name}",
        patient.mrn,
        f"{journey.day0_actual:%A %d %B %Y}",
        f"{until:%A %d %B %Y}",
        "Do not drive",
        "Ward 7, day and night: +49 9131 000",
        "Fever of 38 °C or more",
        "Difficulty speaking, understanding or writing",
    ):
        assert expected in text, expected
    assert "discharge-sheet" in text  # the print CSS's hook


def test_a_viewer_cannot_print_the_sheet_and_there_is_none_before_the_infusion(client, viewer, nurse, coordinator, journey):
    infused = infused_journey(coordinator, nurse)
    client.force_login(viewer)
    assert client.get(reverse("discharge_sheet", args=[infused.public_id])).status_code == 403
    page = client.get(reverse("patient_detail", args=[infused.patient.public_id])).content.decode()
    assert reverse("discharge_sheet", args=[infused.public_id]) not in page
    client.force_login(nurse)
    assert client.get(reverse("discharge_sheet", args=[journey.public_id])).status_code == 404
