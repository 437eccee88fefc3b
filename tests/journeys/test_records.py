"""What a step records at completion: the specs as protocol data, the values judged by journeys.records,
stored with the step in the same transaction and shown in the audit."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from carclinic.errors import InvalidInput
from journeys import records
from journeys.models import EventKind, JourneyEvent, Step, StepStatus, StepTemplate
from journeys.services import journey_start, protocol_new_version, step_complete
from tests.factories import PatientFactory, lymphodepletion_earlier, make_protocol, minimal_record, second_signer

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
        "label": "CRS grade (ASTCT)",
        "type": "choice",
        "short": "CRS grade",
        "required": True,
        "choices": [["0", "Grade 0: no CRS", "0"], ["1", "Grade 1: fever ≥ 38 °C", "1"], ["2", "Grade 2", "2"]],
    },
    {"name": "ice_score", "label": "ICE score", "type": "integer", "min": 0, "max": 10, "short": "ICE"},
    {"name": "steroids_given", "label": "Steroids given", "type": "boolean", "short": "Steroids"},
    {"name": "bag_id", "label": "Bag id", "type": "text", "max_length": 20},
    {"name": "discharge_date", "label": "Discharge date", "type": "date", "short": "Discharged"},
]


def error_keys(call) -> dict:
    with pytest.raises(InvalidInput) as refused:
        call()
    return refused.value.field_errors


# --- the specs -------------------------------------------------------------------------------------


def test_every_spec_of_the_shipped_protocol_is_valid_and_the_key_steps_have_their_fields(protocol):
    templates = {t.code: t for t in protocol.step_templates.all()}
    for template in templates.values():
        assert records.spec_errors(template.record_fields) == [], template.code
        template.full_clean()
    names = {code: {spec["name"] for spec in t.record_fields} for code, t in templates.items()}
    assert {"cd3_count", "pregnancy_test", "infection_screen"} <= names["eligibility-labs"]
    assert {"coi_id", "bag_id", "cd3_yield"} <= names["leukapheresis"]
    assert {"lot_number", "viability", "car_expression", "vector_copy_number"} <= names["qc-release"]
    assert {
        "bsa",
        "fludarabine_prescribed_mg",
        "fludarabine_mg",
        "cyclophosphamide_prescribed_mg",
        "cyclophosphamide_mg",
        "dose_reason",
    } <= names["ld-day-3"]
    assert {"temperature_max", "crs_grade", "ice_score", "icans_grade", "tocilizumab_mg"} <= names["monitoring-day-7"]
    assert {"cd19_b_cells", "igg", "disease_activity", "infection_since_last_visit"} <= names["visit-month-12"]
    assert names["remission-month-24"] >= {"remission"}
    required = {(code, spec["name"]) for code, t in templates.items() for spec in t.record_fields if spec.get("required")}
    assert {
        ("leukapheresis", "coi_id"),
        ("qc-release", "lot_number"),
        ("coi-check", "coi_match"),
        ("monitoring-day-1", "crs_grade"),
        ("monitoring-day-1", "icans_grade"),
    } <= required
    tocilizumab = next(s for s in templates["monitoring-day-1"].record_fields if s["name"] == "tocilizumab_mg")
    assert (tocilizumab["min"], tocilizumab["max"], tocilizumab["unit"]) == (0, 800, "mg")


@pytest.mark.parametrize(
    "specs, words",
    [
        ([{"name": "x", "label": "X", "type": "percent"}], "type must be one of"),
        ([{"name": "x", "label": "X", "type": "text"}, {"name": "x", "label": "Y", "type": "text"}], "used twice"),
        ([{"name": "Bad Name", "label": "X", "type": "text"}], "lower-case"),
        ([{"name": "x", "label": "X", "type": "integer", "min": 10, "max": 1}], "min is greater than max"),
        ([{"name": "x", "label": "X", "type": "integer", "min": 0.5}], "whole number"),
        ([{"name": "x", "label": "X", "type": "text", "min": 0}], "numbers only"),
        ([{"name": "x", "label": "X", "type": "choice"}], "needs a list"),
        ([{"name": "x", "label": "X", "type": "choice", "choices": [["a", "A"], ["a", "B"]]}], "used twice"),
        ([{"name": "x", "label": "", "type": "text"}], "label is required"),
        ([{"name": "x", "label": "X", "type": "text", "colour": "red"}], "unknown keys colour"),
        ([{"name": "x", "label": "X", "type": "decimal", "step": 0}], "greater than zero"),
        ([{"name": "x", "label": "X", "type": "text", "per_m2": 25}], "numbers only"),
        ([{"name": "x", "label": "X", "type": "decimal", "per_m2": -25}], "greater than zero"),
        ({"name": "x"}, "must be a list"),
    ],
)
def test_a_bad_spec_is_refused_with_words_for_the_protocol_editor(protocol, specs, words):
    assert any(words in message for message in records.spec_errors(specs))
    template = StepTemplate(
        protocol=protocol,
        stage=1,
        code="extra",
        name="Extra",
        anchor="day0",
        offset_days=0,
        responsible_role="nurse",
        record_fields=specs,
    )
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert "record_fields" in refused.value.message_dict


def test_a_new_protocol_version_keeps_the_record_fields(protocol, superuser):
    copy = protocol_new_version(actor=superuser, protocol_id=protocol.id)
    original = protocol.step_templates.get(code="monitoring-day-1").record_fields
    assert copy.step_templates.get(code="monitoring-day-1").record_fields == original != []


# --- the values, type by type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, stored",
    [
        (
            {"crs_grade": "1", "temperature_max": "38.2", "ice_score": "10"},
            {"crs_grade": "1", "temperature_max": 38.2, "ice_score": 10},
        ),
        ({"crs_grade": "0", "temperature_max": 37, "ice_score": 9}, {"crs_grade": "0", "temperature_max": 37, "ice_score": 9}),
        ({"crs_grade": "0", "temperature_max": "38,5"}, {"crs_grade": "0", "temperature_max": 38.5}),  # a German comma
        ({"crs_grade": "0", "steroids_given": False}, {"crs_grade": "0", "steroids_given": False}),
        ({"crs_grade": "0", "steroids_given": "yes"}, {"crs_grade": "0", "steroids_given": True}),
        ({"crs_grade": "0", "bag_id": "  B-17  "}, {"crs_grade": "0", "bag_id": "B-17"}),
        ({"crs_grade": "0", "discharge_date": "2026-03-31"}, {"crs_grade": "0", "discharge_date": "2026-03-31"}),
        ({"crs_grade": "0", "discharge_date": date(2026, 3, 31)}, {"crs_grade": "0", "discharge_date": "2026-03-31"}),
        ({"crs_grade": "0", "ice_score": "", "bag_id": None}, {"crs_grade": "0"}),  # left empty: left out
    ],
)
def test_good_values_are_stored_normalised(raw, stored):
    assert records.clean_record(VITALS, raw) == stored


@pytest.mark.parametrize(
    "raw, field, words",
    [
        ({"crs_grade": "0", "temperature_max": 45}, "temperature_max", "from 34 to 43 °C"),
        ({"crs_grade": "0", "temperature_max": "hot"}, "temperature_max", "Enter a number"),
        ({"crs_grade": "0", "temperature_max": "NaN"}, "temperature_max", "Enter a number"),
        ({"crs_grade": "0", "ice_score": 11}, "ice_score", "from 0 to 10"),
        ({"crs_grade": "0", "ice_score": -1}, "ice_score", "from 0 to 10"),
        ({"crs_grade": "0", "ice_score": "7.5"}, "ice_score", "whole number"),
        ({"crs_grade": "0", "ice_score": True}, "ice_score", "Enter a number"),
        ({"crs_grade": "5"}, "crs_grade", "Choose one of"),
        ({"crs_grade": 1}, "crs_grade", "Choose one of"),  # a choice is sent as its value string
        ({}, "crs_grade", "Required"),
        ({"crs_grade": "  "}, "crs_grade", "Required"),
        ({"crs_grade": "0", "steroids_given": "maybe"}, "steroids_given", "yes or no"),
        ({"crs_grade": "0", "bag_id": "B" * 21}, "bag_id", "At most 20"),
        ({"crs_grade": "0", "bag_id": 17}, "bag_id", "Enter text"),
        ({"crs_grade": "0", "discharge_date": "31.03.2026"}, "discharge_date", "YYYY-MM-DD"),
        ({"crs_grade": "0", "discharge_date": "2026-02-30"}, "discharge_date", "YYYY-MM-DD"),
        ({"crs_grade": "0", "heart_rate": 80}, "heart_rate", "no such field"),
    ],
)
def test_a_wrong_value_is_refused_next_to_its_field(raw, field, words):
    errors = error_keys(lambda: records.clean_record(VITALS, raw))
    assert list(errors) == [f"record.{field}"]
    assert words in errors[f"record.{field}"][0]


def test_a_record_that_is_not_an_object_is_refused_as_a_whole():
    assert list(error_keys(lambda: records.clean_record(VITALS, ["0"]))) == ["record"]


def test_a_step_without_fields_takes_an_empty_record_and_nothing_else():
    assert records.clean_record([], None) == {} == records.clean_record([], {})
    assert list(error_keys(lambda: records.clean_record([], {"x": 1}))) == ["record.x"]


def test_the_timeline_summary_is_short_and_in_the_specs_order():
    record = {"ice_score": 10, "crs_grade": "1", "temperature_max": 38.2, "steroids_given": False, "discharge_date": "2026-03-31"}
    assert records.summary(VITALS, record) == "Tmax 38.2 °C · CRS grade 1 · ICE 10 · Steroids no · Discharged 31 Mar 2026"
    assert records.summary(VITALS, {}) == ""
    assert records.summary(VITALS, {"temperature_max": 37}) == "Tmax 37.0 °C"  # as precise as its input


# --- through the service ---------------------------------------------------------------------------


@pytest.fixture
def vitals_step(coordinator):
    protocol = make_protocol(
        name="Records protocol",
        steps=[
            dict(stage=1, code="vitals", anchor="leukapheresis", offset_days=0, responsible_role="nurse", record_fields=VITALS),
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
    return journey.steps.select_related("template").get(template__code="vitals")


def test_the_record_is_stored_with_the_step_its_event_and_its_history_row(vitals_step, nurse):
    done = step_complete(
        actor=nurse, step_id=vitals_step.id, record={"crs_grade": "1", "temperature_max": "38.2", "ice_score": 10}
    )
    expected = {"crs_grade": "1", "temperature_max": 38.2, "ice_score": 10}
    assert Step.objects.get(pk=done.pk).record == expected
    event = JourneyEvent.objects.get(step=vitals_step, kind=EventKind.STEP_DONE)
    assert event.detail["record"] == expected and event.actor == nurse
    created, changed = vitals_step.history.order_by("history_id")
    assert (changed.history_user, changed.record) == (nurse, expected)
    delta = changed.diff_against(created)
    assert {change.field: (change.old, change.new) for change in delta.changes}["record"] == ({}, expected)


def test_a_bad_record_leaves_the_step_pending_and_writes_nothing(vitals_step, nurse):
    counts = (JourneyEvent.objects.count(), Step.history.count())
    errors = error_keys(
        lambda: step_complete(actor=nurse, step_id=vitals_step.id, record={"crs_grade": "9", "ice_score": 12, "pulse": 80})
    )
    assert set(errors) == {"record.crs_grade", "record.ice_score", "record.pulse"}
    step = Step.objects.get(pk=vitals_step.pk)
    assert (step.status, step.record, step.version, step.completed_at) == (StepStatus.PENDING, {}, vitals_step.version, None)
    assert (JourneyEvent.objects.count(), Step.history.count()) == counts
    assert list(error_keys(lambda: step_complete(actor=nurse, step_id=vitals_step.id))) == ["record.crs_grade"]


def test_the_shipped_leukapheresis_step_needs_its_coi_id(journey, nurse, physician):
    for code in ("eligibility-labs", "eligibility-signoff"):
        step_complete(actor=physician, step_id=journey.steps.get(template__code=code).id)
    collection = journey.steps.select_related("template").get(template__code="leukapheresis")
    assert list(error_keys(lambda: step_complete(actor=nurse, step_id=collection.id))) == ["record.coi_id"]
    assert Step.objects.get(pk=collection.pk).status == StepStatus.PENDING
    done = step_complete(
        actor=nurse, step_id=collection.id, record={**minimal_record(collection), "cd3_yield": "4.25", "volume_collected": "180"}
    )
    assert done.record == {"coi_id": "TEST-0001", "cd3_yield": 4.25, "volume_collected": 180}


def test_the_default_protocol_walks_to_the_end_with_minimal_records(journey, physician):
    """Every shipped step accepts what minimal_record gives it: the fixture other tests rely on is sound."""
    while (
        step := journey.steps.select_related("template")
        .filter(status=StepStatus.PENDING, stage__status="in_progress")
        .order_by("id")
        .first()
    ):
        step_complete(
            actor=physician, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )
    journey.refresh_from_db()
    assert journey.status == "completed"
    assert journey.steps.filter(status=StepStatus.DONE).count() == journey.steps.count()


def test_a_dose_per_m2_is_calculated_from_the_body_surface_area():
    fludarabine = {"name": "fludarabine_mg", "label": "Fludarabine", "type": "decimal", "unit": "mg", "step": 0.1, "per_m2": 25}
    assert records.calculated_dose(fludarabine, Decimal("1.72")) == "25 mg/m² × 1.72 m² = 43.0 mg"
    assert records.calculated_dose(fludarabine, None) == ""
    assert records.calculated_dose({**fludarabine, "per_m2": None}, Decimal("1.72")) == ""


def test_admin_refuses_a_bad_spec_next_to_the_step_and_saves_a_good_one(client, superuser):
    import json

    from django.urls import reverse

    protocol = make_protocol(
        name="Admin records", steps=[dict(stage=1, code="labs", anchor="leukapheresis", offset_days=-3, responsible_role="nurse")]
    )
    template = protocol.step_templates.get()
    client.force_login(superuser)

    def post(record_fields):
        row = {
            "id": template.pk,
            "protocol": protocol.pk,
            "position": 0,
            "stage": 1,
            "code": "labs",
            "name": "Labs",
            "anchor": "leukapheresis",
            "offset_days": -3,
            "window_before_days": 0,
            "window_after_days": 0,
            "grace_hours": 0,
            "responsible_role": "nurse",
            "required": "on",
            "milestone": "",
            "record_fields": json.dumps(record_fields),
        }
        data = {
            "name": protocol.name,
            "version": 1,
            "description": "",
            "indication": "",
            "planned_vein_to_vein_days": 21,
            "release_lead_days": 1,
            "infusion_rest_days": 2,
            "minimum_age_years": 18,
            "consents_required": '["treatment"]',
            "proximity_restriction_days": 14,
            "proximity_restriction_hours": 2,
            "driving_restriction_days": 14,
            "is_active": "on",
            "step_templates-TOTAL_FORMS": 1,
            "step_templates-INITIAL_FORMS": 1,
            "step_templates-MIN_NUM_FORMS": 0,
            "step_templates-MAX_NUM_FORMS": 1000,
            **{f"step_templates-0-{key}": value for key, value in row.items()},
        }
        return client.post(reverse("admin:journeys_protocoltemplate_change", args=[protocol.pk]), data)

    refused = post([{"name": "cd3", "label": "CD3+", "type": "integer", "min": 5, "max": 1}])
    assert refused.status_code == 200 and "min is greater than max" in refused.content.decode()
    template.refresh_from_db()
    assert template.record_fields == []
    good = [{"name": "cd3", "label": "CD3+", "type": "integer", "unit": "/µL", "min": 0, "max": 10000}]
    assert post(good).status_code == 302
    template.refresh_from_db()
    assert template.record_fields == good


def _to_stage_4(journey, actor):
    """Every step of stages 1–3 done with a minimal record, so the infusion stage is under way."""
    while (
        step := journey.steps.select_related("template")
        .filter(status=StepStatus.PENDING, stage__status="in_progress", stage__number__lt=4)
        .order_by("id")
        .first()
    ):
        step_complete(
            actor=actor, step_id=step.id, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )


def test_a_failed_coi_check_is_refused_and_the_infusion_cannot_be_recorded_before_a_passed_one(journey, physician):
    from journeys.errors import TransitionNotAllowed

    _to_stage_4(journey, physician)
    check = journey.steps.select_related("template").get(template__code="coi-check")
    infusion = journey.steps.get(template__code="infusion")
    with pytest.raises(TransitionNotAllowed, match="Chain-of-identity check"):
        step_complete(
            actor=physician,
            step_id=infusion.id,
            record=minimal_record(infusion),
            **second_signer(infusion),
            **lymphodepletion_earlier(infusion),
        )

    mismatch = lambda: step_complete(actor=physician, step_id=check.id, record={"coi_match": "no"})  # noqa: E731
    assert list(error_keys(mismatch)) == ["record.coi_match"]
    with pytest.raises(InvalidInput) as refused:
        mismatch()
    assert "do not infuse" in refused.value.field_errors["record.coi_match"][0]
    assert Step.objects.get(pk=check.pk).status == StepStatus.PENDING

    step_complete(actor=physician, step_id=check.id, record={"coi_match": "yes"}, **second_signer(check))
    assert (
        step_complete(
            actor=physician,
            step_id=infusion.id,
            record=minimal_record(infusion),
            **second_signer(infusion),
            **lymphodepletion_earlier(infusion),
        ).status
        == StepStatus.DONE
    )


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"name": "ok", "label": "OK", "type": "text", "must_be": True}, "must_be is true or false, for yes/no fields only"),
        ({"name": "ok", "label": "OK", "type": "boolean", "must_be": "yes"}, "must_be is true or false"),
    ],
)
def test_must_be_only_fits_a_yes_no_field(spec, words):
    assert any(words in error for error in records.spec_errors([spec]))


@pytest.mark.django_db
def test_a_step_cannot_wait_for_itself_or_for_a_step_the_protocol_lacks(protocol):
    infusion = protocol.step_templates.get(code="infusion")
    assert infusion.done_after == "coi-check"
    infusion.full_clean()
    for code, words in (("infusion", "cannot wait for itself"), ("no-such-step", "No step of this protocol")):
        infusion.done_after = code
        with pytest.raises(ValidationError, match=words):
            infusion.full_clean()
