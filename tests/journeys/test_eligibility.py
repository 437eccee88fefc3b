"""Issue 13, "Eligibility": a journey starts only for a patient of the protocol's age with the consents it requires
on file and not withdrawn; the eligibility labs refuse a criterion not met (CD3+ below the protocol's minimum, a
positive pregnancy test or infection screen) unless a physician goes on with a reason; a positive pregnancy test
raises a clinical alert; leukapheresis waits for the physician's sign-off. Thresholds: the shipped protocol file."""

from datetime import date, timedelta

import pytest
from django.urls import reverse

from alerts.models import AlertKind, ClinicalAlert
from carclinic.errors import InvalidInput, NotPermitted
from journeys import records
from journeys.errors import TransitionNotAllowed
from journeys.models import EventKind, JourneyEvent, ProtocolTemplate
from journeys.services import journey_start, step_complete
from patients.models import Consent, ConsentKind
from tests.factories import PatientFactory, minimal_record

LABS_OK = {"cd3_count": 450, "pregnancy_test": "negative", "infection_screen": "clear"}


def step_of(journey, code):
    return journey.steps.select_related("template", "stage").get(template__code=code)


def years_ago(years: int, days: int = 0) -> date:
    today = date.today()
    return today.replace(year=today.year - years) - timedelta(days=days)


def start(coordinator, protocol, patient):
    return journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=date.today())


# --- before the journey starts ----------------------------------------------------------------------


def test_the_shipped_protocol_asks_for_an_adult_with_the_treatment_consent(protocol):
    assert (protocol.minimum_age_years, protocol.maximum_age_years, protocol.consents_required) == (18, None, ["treatment"])


@pytest.mark.parametrize(
    "born, refused",
    [
        (years_ago(10), True),  # issue 13: a 10-year-old started
        (years_ago(18, days=-1), True),  # 18 tomorrow: still 17 today
        (years_ago(18), False),  # 18 today
        (years_ago(80), False),  # no upper limit in the shipped protocol
    ],
)
def test_a_journey_starts_only_from_the_protocols_minimum_age(coordinator, protocol, born, refused):
    patient = PatientFactory(date_of_birth=born)
    if refused:
        with pytest.raises(InvalidInput) as error:
            start(coordinator, protocol, patient)
        assert "from 18 years of age" in error.value.field_errors["patient"][0]
        assert not patient.journeys.exists()
    else:
        assert start(coordinator, protocol, patient).patient_id == patient.id


def test_a_protocol_with_a_maximum_age_refuses_an_older_patient(coordinator, protocol):
    ProtocolTemplate.objects.filter(pk=protocol.pk).update(maximum_age_years=65)
    protocol.refresh_from_db()
    with pytest.raises(InvalidInput) as error:
        start(coordinator, protocol, PatientFactory(date_of_birth=years_ago(66)))
    assert "up to 65 years of age" in error.value.field_errors["patient"][0]
    assert start(coordinator, protocol, PatientFactory(date_of_birth=years_ago(65))).pk


def test_no_journey_starts_without_the_required_consent_on_file(coordinator, protocol):
    patient = PatientFactory(consents=[ConsentKind.STUDY])  # another kind does not stand in for treatment
    with pytest.raises(InvalidInput) as error:
        start(coordinator, protocol, patient)
    assert (
        "No consent on file (signed and not withdrawn) for: Treatment (CAR-T therapy)" in error.value.field_errors["patient"][0]
    )
    assert not patient.journeys.exists()


def test_a_withdrawn_consent_is_no_consent(coordinator, protocol):
    patient = PatientFactory()
    Consent.objects.filter(patient=patient).update(withdrawn_on=date(2021, 1, 1))
    with pytest.raises(InvalidInput):
        start(coordinator, protocol, patient)
    Consent.objects.create(patient=patient, kind=ConsentKind.TREATMENT, signed_on=date(2022, 1, 1), document_version="v2")
    assert start(coordinator, protocol, patient).pk


def test_the_start_page_shows_why_the_patient_cannot_start(client, coordinator, protocol):
    patient = PatientFactory(consents=[])
    client.force_login(coordinator)
    response = client.post(
        reverse("journey_start", args=[patient.public_id]),
        {"protocol": protocol.pk, "leukapheresis_date": date.today().isoformat()},
    )
    assert response.status_code == 400
    assert "No consent on file (signed and not withdrawn) for: Treatment (CAR-T therapy)" in response.content.decode()
    assert not patient.journeys.exists()


# --- the eligibility labs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, field, words",
    [
        ({"cd3_count": 20}, "cd3_count", "CD3+ count 20 /µL: the protocol's eligibility criterion is at least 100 /µL."),
        ({"cd3_count": 99}, "cd3_count", "at least 100 /µL"),
        ({"pregnancy_test": "positive"}, "pregnancy_test", "Pregnancy test Positive"),
        ({"pregnancy_test": "positive"}, "pregnancy_test", "criterion is Negative or Not applicable."),
        ({"infection_screen": "positive"}, "infection_screen", "criterion is Clear"),
    ],
)
def test_a_criterion_not_met_refuses_the_labs_and_nothing_is_written(journey, nurse, values, field, words):
    labs = step_of(journey, "eligibility-labs")
    with pytest.raises(InvalidInput) as error:
        step_complete(actor=nurse, step_id=labs.id, record={**LABS_OK, **values})
    message = error.value.field_errors[f"record.{field}"][0]
    assert words in message and "a physician may go on only with a reason" in message
    assert step_of(journey, "eligibility-labs").status == "pending"


def test_the_criteria_met_the_labs_are_recorded_by_the_nurse(journey, nurse):
    labs = step_of(journey, "eligibility-labs")
    step = step_complete(actor=nurse, step_id=labs.id, record={**LABS_OK, "cd3_count": 100})  # the minimum meets it
    assert step.record == {**LABS_OK, "cd3_count": 100}
    assert not ClinicalAlert.objects.exists()


def test_only_a_physician_goes_on_with_a_criterion_not_met_and_the_reason_is_audited(journey, nurse, physician):
    labs = step_of(journey, "eligibility-labs")
    record = {**LABS_OK, "cd3_count": 80, "eligibility_override_reason": "Repeat count 140/µL on the apheresis day"}
    with pytest.raises(NotPermitted):
        step_complete(actor=nurse, step_id=labs.id, record=record)
    step_complete(actor=physician, step_id=labs.id, record=record)
    event = JourneyEvent.objects.get(step=labs, kind=EventKind.STEP_DONE)
    assert event.detail["overrides"] == [
        {
            "field": "cd3_count",
            "computed": "eligible if at least 100 /µL",
            "recorded": 80,
            "reason": "Repeat count 140/µL on the apheresis day",
        }
    ]


def test_a_positive_pregnancy_test_raises_its_alert_once(journey, physician):
    labs = step_of(journey, "eligibility-labs")
    record = {**LABS_OK, "pregnancy_test": "positive", "eligibility_override_reason": "Known false positive, serum hCG negative"}
    step_complete(actor=physician, step_id=labs.id, record=record)
    alert = ClinicalAlert.objects.get()
    assert (alert.kind, alert.patient_id, alert.step_id) == (AlertKind.PREGNANCY_POSITIVE, journey.patient_id, labs.id)
    assert alert.summary.startswith("Pregnancy test: positive")


def test_minimal_record_meets_every_criterion(journey, nurse):
    labs = step_of(journey, "eligibility-labs")
    assert step_complete(actor=nurse, step_id=labs.id, record=minimal_record(labs)).status == "done"


# --- leukapheresis waits for the sign-off ------------------------------------------------------------


def test_leukapheresis_waits_for_the_physicians_sign_off(journey, nurse, physician):
    collection = step_of(journey, "leukapheresis")
    with pytest.raises(TransitionNotAllowed, match="Record 'Eligibility sign-off' as done first"):
        step_complete(actor=nurse, step_id=collection.id, record=minimal_record(collection))
    step_complete(actor=physician, step_id=step_of(journey, "eligibility-signoff").id)
    assert step_complete(actor=nurse, step_id=collection.id, record=minimal_record(collection)).status == "done"


# --- the spec ----------------------------------------------------------------------------------------

REASON = {"name": "why", "label": "Why", "type": "text"}


@pytest.mark.parametrize(
    "spec, problem",
    [
        (
            {"name": "note", "label": "Note", "type": "text", "criterion": {"at_least": 1, "reason": "why"}},
            "criterion.at_least is for numbers",
        ),
        (
            {"name": "cd3", "label": "CD3", "type": "integer", "criterion": {"reason": "why"}},
            "criterion takes at_least (numbers) or one_of (choices)",
        ),
        (
            {
                "name": "test",
                "label": "Test",
                "type": "choice",
                "choices": [["neg", "Negative"], ["pos", "Positive"]],
                "criterion": {"one_of": ["negative"], "reason": "why"},
            },
            "criterion.one_of names values that are not choices",
        ),
        (
            {"name": "cd3", "label": "CD3", "type": "integer", "alert": {"kind": "crs", "one_of": ["1"]}},
            "alert.one_of is for choice fields",
        ),
    ],
)
def test_the_protocol_editor_refuses_a_criterion_that_cannot_apply(spec, problem):
    assert any(problem in message for message in records.spec_errors([spec, REASON]))


def test_a_criterion_needs_its_reason_field_after_it():
    spec = {"name": "cd3", "label": "CD3", "type": "integer", "criterion": {"at_least": 100, "reason": "why"}}
    assert records.spec_errors([spec, REASON]) == []
    assert "criterion.reason names a text field" in records.spec_errors([spec])[0]
