"""The bedside completion form asks for the step's own fields, says what is wrong next to the field,
keeps what was typed, and the patient page shows what was recorded."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from journeys.models import Step, StepStatus
from tests.factories import PatientFactory

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


def _step(journey, code):
    return journey.steps.select_related("template").get(template__code=code)


def _post(client, step, record: dict, *, password=PASSWORD):
    performed = timezone.localtime().replace(second=0, microsecond=0) - timedelta(minutes=10)
    return client.post(
        reverse("step_complete", args=[step.public_id]),
        {
            "performed_at": performed.strftime("%Y-%m-%dT%H:%M"),
            "notes": "",
            "signature_meaning": "performed",
            "password": password,
            "version": step.version,
            **{f"record.{name}": value for name, value in record.items()},
        },
    )


def _field_block(page: str, name: str) -> str:
    """The HTML of one field's block: from its <div class="field"> to the next one."""
    start = page.rindex('<div class="field', 0, page.index(f'name="record.{name}"'))
    end = page.find('<div class="field', start + 1)
    return page[start : end if end != -1 else len(page)]


@pytest.mark.django_db
def test_the_monitoring_form_asks_for_each_field_with_the_right_input_and_its_unit(client, nurse, journey):
    client.force_login(nurse)
    page = client.get(reverse("step_complete", args=[_step(journey, "monitoring-day-1").public_id])).content.decode()
    temperature = _field_block(page, "temperature_max")
    assert 'type="number"' in temperature and 'inputmode="decimal"' in temperature
    assert 'min="34"' in temperature and 'max="43"' in temperature and 'step="0.1"' in temperature
    assert ">°C</span>" in temperature and "Highest temperature" in temperature
    orientation = _field_block(page, "ice_orientation")
    assert 'inputmode="numeric"' in orientation and 'step="1"' in orientation and 'max="4"' in orientation
    # Issue 13: the grades are computed from the components, shown read-only, never typed.
    crs = _field_block(page, "crs_grade")
    assert "CRS grade (ASTCT) (computed)" in crs and "disabled" in crs
    assert "disabled" in _field_block(page, "icans_grade") and "disabled" in _field_block(page, "ice_score")
    oxygen = _field_block(page, "oxygen")
    assert '<option value="low_flow">Low-flow nasal cannula</option>' in oxygen and "(optional)" not in oxygen
    assert 'type="radio"' in _field_block(page, "hypotension")  # a required yes/no is asked as a question
    tocilizumab = _field_block(page, "tocilizumab_mg")
    assert 'max="800"' in tocilizumab and ">mg</span>" in tocilizumab and "(optional)" in tocilizumab
    # The step's own fields come after the time performed and before the signature.
    assert page.index('name="performed_at"') < page.index('name="record.temperature_max"') < page.index('name="password"')


@pytest.mark.django_db
def test_a_required_yes_no_is_asked_as_a_question_and_an_optional_one_as_a_box(client, physician, journey):
    client.force_login(physician)  # a physician may record any step
    coi = client.get(reverse("step_complete", args=[_step(journey, "coi-check").public_id])).content.decode()
    block = _field_block(coi, "coi_match")
    assert block.count('type="radio"') == 2 and "Yes" in block and "No" in block and "(optional)" not in block
    receipt = client.get(reverse("step_complete", args=[_step(journey, "plant-receipt").public_id])).content.decode()
    assert 'type="checkbox"' in _field_block(receipt, "temperature_log_ok")
    discharge = client.get(reverse("step_complete", args=[_step(journey, "discharge").public_id])).content.decode()
    assert 'type="date"' in _field_block(discharge, "discharge_date")


BEDSIDE_CALM = {
    "temperature_max": "36.8",
    "fever_masked": "no",
    "hypotension": "no",
    "vasopressors": "none",
    "vasopressin": "no",
    "oxygen": "none",
    "ice_orientation": "4",
    "ice_naming": "3",
    "ice_commands": "1",
    "ice_writing": "1",
    "ice_attention": "1",
    "consciousness": "alert",
    "seizure": "none",
    "motor": "none",
    "cerebral_oedema": "none",
}


@pytest.mark.django_db
def test_a_wrong_value_is_shown_next_to_its_field_and_what_was_typed_stays(client, nurse, journey):
    step = _step(journey, "monitoring-day-1")
    client.force_login(nurse)
    response = _post(
        client, step, {**BEDSIDE_CALM, "temperature_max": "45", "oxygen": "low_flow", "ice_writing": "0", "steroids": "none"}
    )
    assert response.status_code == 400
    assert dict(response.context["form"].errors) == {"record.temperature_max": ["Must be from 34 to 43 °C."]}
    page = response.content.decode()
    temperature = _field_block(page, "temperature_max")
    assert "Must be from 34 to 43 °C." in temperature and 'value="45"' in temperature
    assert 'aria-describedby="id_record.temperature_max_error' in temperature
    assert '<option value="low_flow" selected>' in _field_block(page, "oxygen")
    assert 'value="0"' in _field_block(page, "ice_writing") and "error" not in _field_block(page, "ice_writing")
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


@pytest.mark.django_db
def test_a_missing_required_field_is_said_even_when_the_password_is_wrong_too(client, nurse, journey):
    step = _step(journey, "leukapheresis")
    client.force_login(nurse)
    response = _post(client, step, {"bag_id": "BAG-7"}, password="not-mine")
    errors = response.context["form"].errors
    assert errors["record.coi_id"] == ["Required for this step."] and "password" in errors
    assert 'value="BAG-7"' in _field_block(response.content.decode(), "bag_id")


@pytest.mark.django_db
def test_the_recorded_values_are_stored_and_shown_on_the_patient_page(client, nurse, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(nurse)
    response = _post(client, step, {"cd3_count": "850", "pregnancy_test": "negative", "infection_screen": ""})
    assert response.status_code == 302
    step.refresh_from_db()
    assert (step.status, step.record) == (StepStatus.DONE, {"cd3_count": 850, "pregnancy_test": "negative"})
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    row = re.search(rf'id="step-{step.public_id}".*?</li>', page, re.S).group(0)
    assert '<span class="tl-record">CD3+ 850 /µL · Pregnancy test Negative</span>' in row
    audit = page[page.index('id="audit-heading"') :]
    assert "Recorded: CD3+ 850 /µL · Pregnancy test Negative" in audit


@pytest.mark.django_db
def test_a_dosing_step_shows_the_dose_calculated_from_the_latest_height_and_weight(client, nurse, journey):
    from decimal import Decimal

    from patients.services import measurement_record

    today = timezone.localdate()
    measurement_record(
        actor=nurse,
        patient_id=journey.patient_id,
        measured_on=today - timedelta(days=30),
        height_cm=Decimal("150.0"),
        weight_kg=Decimal("50.0"),
    )
    measurement_record(
        actor=nurse,
        patient_id=journey.patient_id,
        measured_on=today - timedelta(days=2),
        height_cm=Decimal("170.0"),
        weight_kg=Decimal("62.5"),
        weight_change_confirmed=True,  # +25 % in four weeks: the nurse confirms it changed
    )  # BSA 1.72 m²
    client.force_login(nurse)
    page = client.get(reverse("step_complete", args=[_step(journey, "ld-day-3").public_id])).content.decode()
    # The shipped sheet computes the doses (issue 13): the formula with the patient's numbers is beside them.
    assert "25 mg/m² × 1.72 m² = 43.0 mg" in _field_block(page, "fludarabine_full_mg")
    assert "1000 mg/m² × 1.72 m² = 1720 mg" in _field_block(page, "cyclophosphamide_prescribed_mg")
    assert "m² =" not in _field_block(page, "dose_reason")


@pytest.mark.django_db
def test_recorded_values_cost_the_patient_page_no_extra_queries(client, physician, journey, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from journeys import services
    from tests.factories import minimal_record

    url = reverse("patient_detail", args=[journey.patient.public_id])
    client.force_login(physician)
    client.get(url)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    before = count()
    # The collection waits for the eligibility sign-off.
    services.step_complete(actor=physician, step_id=_step(journey, "eligibility-signoff").id)
    services.step_complete(
        actor=physician, step_id=_step(journey, "leukapheresis").id, record={"coi_id": "COI-1", "bag_id": "B-1"}
    )
    # The header's count of late steps counts steps, however many recorded events the audit below it shows.
    overdue = Step.objects.filter(journey=journey, status=StepStatus.PENDING, overdue_after__lte=timezone.now()).count()
    assert overdue and f"{overdue} overdue</span>" in client.get(url).content.decode()
    for code, record in [
        ("eligibility-labs", {"cd3_count": 700}),
        ("shipment", {"courier": "MedLogistik"}),
    ]:
        step = _step(journey, code)
        services.step_complete(actor=physician, step_id=step.id, record=record or minimal_record(step))
    with django_assert_max_num_queries(before):
        page = client.get(url).content.decode()
    assert "COI COI-1" in page and "Courier MedLogistik" in page


@pytest.mark.django_db
def test_help_text_from_protocol_data_is_escaped_not_run(client, nurse, journey):
    """Issue 12, finding 7: `help_text|safe` ran markup an administrator typed into a field's help."""
    step = _step(journey, "monitoring-day-1")
    template = step.template
    fields = [dict(spec) for spec in template.record_fields]
    fields[0]["help"] = '<img src=x onerror="alert(document.cookie)">Measured orally'
    type(template).objects.filter(pk=template.pk).update(record_fields=fields)
    client.force_login(nurse)
    page = client.get(reverse("step_complete", args=[step.public_id])).content.decode()
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=&quot;alert(document.cookie)&quot;&gt;Measured orally" in page


@pytest.mark.django_db
def test_the_nurse_records_the_bedside_components_and_the_page_shows_the_computed_grade(client, nurse, coordinator):
    """Issue 13's bedside case through the form: hypotension with low-flow oxygen → "CRS grade 2 (computed)",
    and its clinical alert is on the next page at once."""
    from tests.journeys.test_monitoring_alerts import make_monitoring_step

    step = make_monitoring_step(coordinator, PatientFactory())  # the shipped Day +1 sheet, in a stage under way
    client.force_login(nurse)
    response = _post(
        client,
        step,
        {
            **BEDSIDE_CALM,
            "temperature_max": "38.4",
            "hypotension": "yes",
            "oxygen": "low_flow",
            "oxygen_l_min": "3",
            "crs_grade": "0",
        },
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    step.refresh_from_db()
    assert (step.record["crs_grade"], step.record["icans_grade"]) == ("2", "0")  # the typed "0" is not taken
    page = client.get(reverse("patient_detail", args=[step.journey.patient.public_id])).content.decode()
    assert "CRS grade 2 (computed)" in page
    from alerts.models import ClinicalAlert

    assert ClinicalAlert.objects.get().key == f"crs:{step.public_id}:2"
