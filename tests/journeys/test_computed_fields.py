"""Computed record fields: a field computed by a named calculator (clinical.calculators) from other fields
of the same record and the patient's facts — stored, shown, never typed. The worked examples are issue 13's
(Tests section) and ../shared/domain.md's "Safety checks"; the lymphodepletion sheet below is a test
protocol, the shape the shipped ld-day steps should take."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from carclinic.errors import InvalidInput
from journeys import records
from journeys.models import EventKind, JourneyEvent, Step
from journeys.services import journey_start, step_complete, step_record_correct
from patients.services import measurement_record
from tests.factories import PatientFactory, make_protocol

# The fludarabine package insert as protocol data: −20 % at 30–70 mL/min, a physician decides below 30.
PACKAGE_INSERT = [
    {"at_least": 0, "dose_percent": None, "label": "below 30: physician decides"},
    {"at_least": 30, "dose_percent": 80, "label": "30–70: −20 %"},
    {"above": 70, "dose_percent": 100, "label": "above 70: full dose"},
]


def mg(name, label, step, computed=None, **extra):
    spec = {"name": name, "label": label, "type": "decimal", "unit": "mg", "min": 0, "max": 5000, "step": step, **extra}
    return {**spec, "computed": computed} if computed else spec


LD_SHEET = [
    {
        "name": "bsa",
        "label": "Body surface area",
        "type": "decimal",
        "unit": "m²",
        "min": 0.5,
        "max": 3,
        "step": 0.01,
        "short": "BSA",
        "required": True,
        "computed": {"by": "body_surface_area", "from": {"height_cm": "patient.height_cm", "weight_kg": "patient.weight_kg"}},
    },
    {"name": "creatinine", "label": "Serum creatinine", "type": "decimal", "unit": "mg/dL", "min": 0.1, "max": 20, "step": 0.01},
    {
        "name": "creatinine_clearance",
        "label": "Creatinine clearance",
        "type": "decimal",
        "unit": "mL/min",
        "min": 0,
        "max": 300,
        "step": 0.1,
        "short": "CrCl",
        "computed": {
            "by": "creatinine_clearance",
            "from": {
                "age_years": "patient.age_years",
                "weight_kg": "patient.weight_kg",
                "creatinine": "record.creatinine",
                "female": "patient.female",
                "creatinine_unit": "mg/dL",
            },
        },
    },
    mg(
        "fludarabine_full_mg",
        "Fludarabine, full dose",
        0.1,
        {"by": "dose_from_bsa", "from": {"dose_per_m2": 25, "bsa_m2": "record.bsa"}},
    ),
    mg(
        "fludarabine_prescribed_mg",
        "Fludarabine prescribed",
        0.1,
        {
            "by": "renal_adjusted_dose",
            "from": {
                "dose": "record.fludarabine_full_mg",
                "clearance_ml_min": "record.creatinine_clearance",
                "bands": PACKAGE_INSERT,
            },
        },
    ),
    mg(
        "cyclophosphamide_prescribed_mg",
        "Cyclophosphamide prescribed",
        1,
        {"by": "dose_from_bsa", "from": {"dose_per_m2": 1000, "bsa_m2": "record.bsa"}},
    ),
    mg("fludarabine_mg", "Fludarabine given", 0.1),
]


def test_the_ld_sheet_is_a_valid_spec():
    assert records.spec_errors(LD_SHEET) == []


@pytest.fixture
def ld_step(coordinator):
    def make(*, sex="female", age=60, height=None, weight=None, measured_days_ago=1):
        protocol = make_protocol(
            name=f"LD sheet {sex} {age}",
            steps=[
                dict(
                    stage=1,
                    code="ld-sheet",
                    anchor="leukapheresis",
                    offset_days=0,
                    responsible_role="nurse",
                    record_fields=LD_SHEET,
                ),
                dict(
                    stage=1,
                    code="collect",
                    anchor="leukapheresis",
                    offset_days=0,
                    responsible_role="nurse",
                    milestone="collection",
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
        today = timezone.localdate()
        born = date(today.year - age, today.month, min(today.day, 28)) - timedelta(days=1)  # `age` whole years today
        patient = PatientFactory(sex=sex, date_of_birth=born)
        if height is not None:
            measurement_record(
                actor=coordinator,
                patient_id=patient.id,
                measured_on=today - timedelta(days=measured_days_ago),
                height_cm=Decimal(height),
                weight_kg=Decimal(weight),
            )
        journey = journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=today)
        return journey.steps.select_related("template").get(template__code="ld-sheet")

    return make


def test_a_man_170_cm_70_kg_gets_bsa_1_82_fludarabine_45_5_and_cyclophosphamide_1820(ld_step, nurse):
    """issue 13: 170 cm / 70 kg → BSA 1.82 m² → fludarabine 45.5 mg/day, cyclophosphamide 1820 mg (BSA rounded first)."""
    step = ld_step(sex="male", age=40, height="170", weight="70")
    done = step_complete(actor=nurse, step_id=step.id, record={"creatinine": "1.0", "fludarabine_mg": "45.5"})
    assert done.record == {
        "bsa": 1.82,
        "creatinine": 1,
        "creatinine_clearance": 97.2,
        "fludarabine_full_mg": 45.5,
        "fludarabine_prescribed_mg": 45.5,
        "cyclophosphamide_prescribed_mg": 1820,
        "fludarabine_mg": 45.5,
    }
    event = JourneyEvent.objects.get(step=step, kind=EventKind.STEP_DONE)
    assert event.detail["record"] == done.record  # the computed values are in the audit too


def test_a_woman_with_crcl_47_gets_fludarabine_reduced_by_20_percent(ld_step, nurse):
    """issue 13 / domain.md: woman 60 y, 165 cm, 60 kg, creatinine 1.2 mg/dL → CrCl 47.2 mL/min, BSA 1.66 m²,
    fludarabine 41.5 mg/day, 33.2 mg/day at −20 % (package insert band 30–70)."""
    step = ld_step(sex="female", age=60, height="165", weight="60")
    done = step_complete(actor=nurse, step_id=step.id, record={"creatinine": "1.2"})
    assert {
        key: done.record[key]
        for key in (
            "bsa",
            "creatinine_clearance",
            "fludarabine_full_mg",
            "fludarabine_prescribed_mg",
            "cyclophosphamide_prescribed_mg",
        )
    } == {
        "bsa": 1.66,
        "creatinine_clearance": 47.2,
        "fludarabine_full_mg": 41.5,
        "fludarabine_prescribed_mg": 33.2,
        "cyclophosphamide_prescribed_mg": 1660,
    }


def test_below_30_ml_min_no_dose_is_computed_a_physician_decides(ld_step, nurse):
    step = ld_step(sex="female", age=60, height="165", weight="60")
    done = step_complete(actor=nurse, step_id=step.id, record={"creatinine": "3.0"})  # CrCl 18.9
    assert done.record["creatinine_clearance"] == 18.9
    assert "fludarabine_prescribed_mg" not in done.record and done.record["fludarabine_full_mg"] == 41.5


def test_a_typed_value_for_a_computed_field_is_refused_and_nothing_is_written(ld_step, nurse):
    """issue 13: "a typed BSA of 2.50 beside a measured 1.82 — accepted silently". Now refused."""
    step = ld_step(sex="male", age=40, height="170", weight="70")
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step.id, record={"bsa": "2.50", "fludarabine_prescribed_mg": 91})
    assert set(refused.value.field_errors) == {"record.bsa", "record.fludarabine_prescribed_mg"}
    assert "Computed, not typed" in refused.value.field_errors["record.bsa"][0]
    assert Step.objects.get(pk=step.pk).record == {}


def test_without_a_height_and_weight_a_required_computed_field_says_what_is_missing(ld_step, nurse):
    step = ld_step(sex="male", age=40)
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step.id, record={})
    assert refused.value.field_errors == {
        "record.bsa": ["Cannot be computed: no height cm on file for the patient; no weight kg on file for the patient."]
    }


def test_a_computed_value_outside_the_fields_range_is_refused(ld_step, nurse):
    """issue 13: 154 typed in pounds as kg beside 170 cm → BSA 2.70: within 0.5–3, so the range alone does not
    catch it (the weight-change check of issue 13 will); 400 kg × 250 cm → 5.27 m² is outside and refused."""
    step = ld_step(sex="male", age=40, height="250", weight="400")
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step.id, record={})
    assert refused.value.field_errors == {"record.bsa": ["Computed as out of range: Must be from 0.5 to 3 m²."]}


def test_the_facts_are_the_patients_on_the_day_performed(ld_step, nurse, coordinator):
    """A height and weight measured after the day the step was performed did not dose that day."""
    step = ld_step(sex="male", age=40, height="170", weight="70", measured_days_ago=3)
    today = timezone.localdate()
    measurement_record(
        actor=coordinator,
        patient_id=step.journey.patient_id,
        measured_on=today,
        height_cm=Decimal("170"),
        weight_kg=Decimal("90"),
        weight_change_confirmed=True,  # +29 % in three days: confirmed, so it is on file
    )
    performed = timezone.now() - timedelta(days=2)
    done = step_complete(actor=nurse, step_id=step.id, performed_at=performed, record={})
    assert done.record["bsa"] == 1.82  # the 70 kg of three days ago, not today's 90 kg (2.06 m²)


def test_a_correction_computes_again_from_the_corrected_values(ld_step, nurse):
    step = ld_step(sex="female", age=60, height="165", weight="60")
    step_complete(actor=nurse, step_id=step.id, record={"creatinine": "1.2"})
    corrected = step_record_correct(
        actor=nurse, step_id=step.id, record={"creatinine": "0.8"}, notes="", reason="Creatinine of the wrong day"
    )
    assert corrected.record["creatinine_clearance"] == 70.8  # 80 × 60 / 57.6 × 0.85
    assert corrected.record["fludarabine_prescribed_mg"] == 41.5  # above 70: full dose


@pytest.mark.parametrize(
    "specs, words",
    [
        (
            [{"name": "x", "label": "X", "type": "decimal", "computed": {"by": "horoscope", "from": {}}}],
            "computed.by must be one of",
        ),
        (
            [{"name": "x", "label": "X", "type": "decimal", "computed": {"by": "dose_from_bsa", "from": {"bsa_m2": 1}}}],
            "needs dose_per_m2",
        ),
        (
            [
                {
                    "name": "x",
                    "label": "X",
                    "type": "decimal",
                    "computed": {"by": "body_surface_area", "from": {"height_cm": 1, "weight_kg": 1, "colour": 1}},
                }
            ],
            "takes no colour",
        ),
        (
            [
                {
                    "name": "x",
                    "label": "X",
                    "type": "decimal",
                    "computed": {"by": "body_surface_area", "from": {"height_cm": "patient.shoe_size", "weight_kg": 1}},
                }
            ],
            "patient facts are",
        ),
        (
            [
                {
                    "name": "x",
                    "label": "X",
                    "type": "decimal",
                    "computed": {"by": "dose_from_bsa", "from": {"dose_per_m2": 25, "bsa_m2": "record.bsa"}},
                },
                {"name": "bsa", "label": "BSA", "type": "decimal"},
            ],
            "not a field before it",
        ),
        (
            [
                {
                    "name": "x",
                    "label": "X",
                    "type": "decimal",
                    "per_m2": 25,
                    "computed": {"by": "dose_from_bsa", "from": {"dose_per_m2": 25, "bsa_m2": 1}},
                }
            ],
            "no must_be, per_m2 or override",
        ),
        ([{"name": "x", "label": "X", "type": "decimal", "computed": {"by": "dose_from_bsa"}}], "computed is"),
    ],
)
def test_a_bad_computed_spec_is_refused_in_words(specs, words):
    assert any(words in error for error in records.spec_errors(specs)), records.spec_errors(specs)


@pytest.mark.django_db
def test_the_form_shows_a_computed_field_read_only_with_its_formula_and_value(client, ld_step, nurse):
    step = ld_step(sex="male", age=40, height="170", weight="70")
    client.force_login(nurse)
    page = client.get(reverse("step_complete", args=[step.public_id])).content.decode()
    block = page[page.index('name="record.bsa"') - 400 : page.index('name="record.creatinine"')]
    assert "Body surface area (computed)" in block and 'value="1.82 m²"' in block
    assert "readonly" in block and "disabled" in block
    assert "Mosteller: √(170.0 cm × 70.0 kg / 3600)" in block
    dose = page[page.index('name="record.fludarabine_full_mg"') - 400 : page.index('name="record.fludarabine_prescribed_mg"')]
    assert "Calculated when you sign" in dose  # it needs the BSA of this very record


@pytest.mark.django_db
def test_signing_the_form_computes_and_stores_and_ignores_a_posted_computed_value(client, ld_step, nurse):
    step = ld_step(sex="male", age=40, height="170", weight="70")
    client.force_login(nurse)
    response = client.post(
        reverse("step_complete", args=[step.public_id]),
        {
            "performed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "record.bsa": "2.50",
            "record.creatinine": "1.0",
            "record.fludarabine_mg": "45.5",
            "signature_meaning": "performed",
            "password": "correct-horse-battery",
            "version": step.version,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    # A disabled input's posted value is ignored by the form (it cannot be typed there); the service computed it.
    assert Step.objects.get(pk=step.pk).record["bsa"] == 1.82


def test_the_openapi_schema_of_a_spec_is_generated_from_the_model():
    item = records.field_specs_openapi()["items"]
    assert set(item["properties"]) == {field.alias or name for name, field in records.FieldSpec.model_fields.items()}
    assert item["additionalProperties"] is False and item["required"] == ["name", "label", "type"]
    assert "body_surface_area" in item["properties"]["computed"]["properties"]["by"]["enum"]
    assert item["properties"]["min"] == {"type": "number"}  # OpenAPI 3.0: no null, no integer/number union
