"""Stage 5's visits record by indication (issue 11): fields asked only for their indications, field sets in
protocol files, scores computed from their items and refused off their scales, a remission state only where its
criteria hold, and a new malignancy that raises a clinical alert."""

from datetime import date

import pytest
from django.urls import reverse

from alerts.models import AlertKind, ClinicalAlert
from carclinic.errors import InvalidInput
from clinical import disease_activity as da
from journeys import protocol_files, records
from journeys.models import StageStatus, Step, StepStatus
from journeys.protocol_files import InvalidProtocolFile, content_hash, parse, to_toml
from journeys.services import journey_start, step_complete
from tests.factories import PatientFactory

# --- a field asked by indication ------------------------------------------------------------------

MG_ITEM = {"name": "mg_adl_talking", "label": "MG-ADL: Talking", "type": "integer", "min": 0, "max": 3, "required": True}
SPECS = [
    {"name": "prednisone_mg_day", "label": "Prednisone", "type": "decimal", "min": 0, "max": 1000},
    {**MG_ITEM, "indications": ["myasthenia_gravis"]},
]


def facts(indication):
    return records.RecordFacts(indication=indication)


def test_a_field_of_an_indication_is_asked_and_required_only_for_it():
    assert records.record_errors(SPECS, {"prednisone_mg_day": "5"}, facts=facts("sle")) == ({"prednisone_mg_day": 5}, {})
    assert records.record_errors(SPECS, {"prednisone_mg_day": "5"}, facts=facts("myasthenia_gravis"))[1] == {
        "record.mg_adl_talking": ["Required for this step."]
    }
    assert records.record_errors(SPECS, {"mg_adl_talking": "2"}, facts=facts("myasthenia_gravis")) == ({"mg_adl_talking": 2}, {})


def test_a_value_sent_for_another_indications_field_is_refused():
    _, errors = records.record_errors(SPECS, {"mg_adl_talking": "2"}, facts=facts("sle"))
    assert errors == {"record.mg_adl_talking": ["Not recorded for this patient's indication."]}
    # An empty input of another indication's field (a form) says nothing.
    assert records.record_errors(SPECS, {"mg_adl_talking": ""}, facts=facts("sle")) == ({}, {})


def test_fields_by_indication_make_the_caller_fetch_the_patients_facts():
    assert records.needs_patient_facts(SPECS)
    assert not records.needs_patient_facts(SPECS[:1])
    assert [spec.name for spec in records.for_patient(SPECS, facts("sle"))] == ["prednisone_mg_day"]


def test_an_unknown_indication_in_a_spec_is_refused():
    errors = records.spec_errors([{**MG_ITEM, "indications": ["gout"]}])
    assert errors and errors[0].startswith("Field “mg_adl_talking”: indications")
    assert records.spec_errors([{**MG_ITEM, "indications": ["myositis"]}]) == []


def test_the_openapi_schema_of_a_spec_lists_the_indications():
    schema = records.field_specs_openapi()
    assert schema["items"]["properties"]["indications"]["items"]["enum"] == [
        "sle",
        "lupus_nephritis",
        "myasthenia_gravis",
        "systemic_sclerosis",
        "multiple_sclerosis",
        "myositis",
        "other",
    ]


def test_a_yes_no_field_may_alert_on_yes_and_a_number_still_needs_its_threshold():
    malignancy = {
        "name": "new_malignancy",
        "label": "New malignancy",
        "type": "boolean",
        "alert": {"kind": "secondary_malignancy"},
    }
    assert records.spec_errors([malignancy]) == []
    assert records.alert_findings([malignancy], {"new_malignancy": True})[0] | {} == {
        "field": "new_malignancy",
        "label": "New malignancy",
        "kind": "secondary_malignancy",
        "value": 1,
        "shown": "yes",
        "escalate_after_minutes": 30,
    }
    assert records.alert_findings([malignancy], {"new_malignancy": False}) == []
    assert records.spec_errors([{**malignancy, "alert": {"kind": "x", "from": 1}}])
    assert records.spec_errors([{"name": "grade", "label": "Grade", "type": "integer", "alert": {"kind": "crs"}}])


# --- field sets in a protocol file ----------------------------------------------------------------

WITH_SETS = """\
name = "Sets"
planned_vein_to_vein_days = 21

[[steps]]
stage = 5
code = "visit-1"
name = "Visit 1"
anchor = "day0"
offset_days = 30
responsible_role = "nurse"
field_sets = ["labs", "safety"]

[[steps.record_fields]]
name = "notes_extra"
label = "Anything else"
type = "text"

[[steps]]
stage = 5
code = "visit-2"
name = "Visit 2"
anchor = "day0"
offset_days = 60
responsible_role = "nurse"
field_sets = ["labs"]

[[field_sets.labs.record_fields]]
name = "igg"
label = "IgG"
type = "decimal"
unit = "g/L"

[[field_sets.safety.record_fields]]
name = "new_malignancy"
label = "New malignancy"
type = "boolean"
"""

EXPANDED = """\
name = "Sets"
planned_vein_to_vein_days = 21

[[steps]]
stage = 5
code = "visit-1"
name = "Visit 1"
anchor = "day0"
offset_days = 30
responsible_role = "nurse"

[[steps.record_fields]]
name = "igg"
label = "IgG"
type = "decimal"
unit = "g/L"

[[steps.record_fields]]
name = "new_malignancy"
label = "New malignancy"
type = "boolean"

[[steps.record_fields]]
name = "notes_extra"
label = "Anything else"
type = "text"

[[steps]]
stage = 5
code = "visit-2"
name = "Visit 2"
anchor = "day0"
offset_days = 60
responsible_role = "nurse"

[[steps.record_fields]]
name = "igg"
label = "IgG"
type = "decimal"
unit = "g/L"
"""


def test_a_step_names_field_sets_and_the_loader_expands_them_sets_first():
    protocol = parse(WITH_SETS)
    assert [[spec["name"] for spec in step.record_fields] for step in protocol.steps] == [
        ["igg", "new_malignancy", "notes_extra"],
        ["igg"],
    ]
    document = protocol.model_dump(mode="json")
    assert "field_sets" not in document and all("field_sets" not in step for step in document["steps"])


def test_a_file_with_field_sets_hashes_as_the_same_file_written_out():
    with_sets, written_out = parse(WITH_SETS).model_dump(mode="json"), parse(EXPANDED).model_dump(mode="json")
    assert with_sets == written_out
    assert content_hash(with_sets) == content_hash(written_out)
    # The dump writes the fields expanded, and reads back to the same content.
    assert parse(to_toml(with_sets)).model_dump(mode="json") == with_sets


def test_an_unknown_or_repeated_field_set_is_refused_by_place_and_line():
    text = WITH_SETS.replace('field_sets = ["labs"]', 'field_sets = ["labs", "lab", "labs"]')
    with pytest.raises(InvalidProtocolFile) as refused:
        parse(text)
    line = text.splitlines().index('field_sets = ["labs", "lab", "labs"]') + 1
    assert [str(problem) for problem in refused.value.problems] == [
        f"steps[1].field_sets[1]: no field set is named “lab” (line {line})",
        f"steps[1].field_sets[2]: “labs” is listed twice (line {line})",
    ]


def test_a_bad_field_in_a_set_is_reported_where_the_set_writes_it():
    text = WITH_SETS.replace('type = "decimal"\nunit = "g/L"', 'type = "decimal"\nunit = "g/L"\nchoices = [["a", "b"]]')
    with pytest.raises(InvalidProtocolFile) as refused:
        parse(text)
    [problem] = refused.value.problems
    assert problem.where == "field_sets.labs.record_fields[0]"
    assert problem.message == "choices are for choice fields only"
    assert problem.line == WITH_SETS.splitlines().index("[[field_sets.labs.record_fields]]") + 1


def test_a_name_used_by_a_set_and_by_the_step_is_refused():
    text = WITH_SETS.replace('name = "notes_extra"\nlabel = "Anything else"', 'name = "igg"\nlabel = "IgG again"')
    with pytest.raises(InvalidProtocolFile, match=r"steps\[0\].record_fields: Field “igg”: the name is used twice"):
        parse(text)


def test_the_shipped_stage_5_is_written_with_field_sets_and_stages_1_to_4_without():
    text = (protocol_files.SHIPPED_DIR / "cd19-car-t-autoimmune.toml").read_text()
    protocol = parse(text)
    by_code = {step.code: step for step in protocol.steps}
    # Stages 1 to 3 name no set; stage 4's monitoring days name the bedside sheet (days +1…+14).
    assert all(not step.field_sets for step in protocol.steps if step.stage < 4)
    assert {step.code for step in protocol.steps if step.stage == 4 and step.field_sets} == {
        f"monitoring-day-{day}" for day in range(1, 15)
    }
    assert set(protocol.field_sets) == {"visit_labs", "disease_activity", "safety", "malignancy", "contact", "bedside"}
    names = {code: [spec["name"] for spec in step.record_fields] for code, step in by_code.items()}
    # The names other helpers read stay.
    for code in ("visit-day-14", "visit-month-3", "ltfu-year-5"):
        assert {"cd19_b_cells", "igg", "creatinine", "egfr", "disease_activity", "infection_since_last_visit"} <= set(names[code])
    for code in ("remission-month-3", "remission-month-12", "remission-month-24"):
        assert {"remission", "remission_drug_free", "disease_activity", "physician_global", "prednisone_mg_day"} <= set(
            names[code]
        )
    # A new malignancy is asked from month 3 on, at every visit and contact.
    asked = [step.code for step in protocol.steps if "new_malignancy" in names[step.code]]
    assert asked[0] == "visit-month-3" and "visit-month-2" not in asked and "ltfu-year-15" in asked
    assert len(text.splitlines()) < 4200  # the sets keep the file from exploding


# --- the shipped visits, recorded ------------------------------------------------------------------


@pytest.fixture
def visit(coordinator, protocol):
    """A pending stage-5 step of a journey of a patient of the given indication, stage 5 open."""

    def make(indication: str, code: str) -> Step:
        patient = PatientFactory(indication=indication)
        journey = journey_start(
            actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=date.today()
        )
        # Stages 1–4 are other tests' business: open stage 5 as if they were done.
        journey.stages.filter(number=5).update(status=StageStatus.IN_PROGRESS)
        return journey.steps.select_related("template").get(template__code=code)

    return make


def refused(call) -> dict:
    with pytest.raises(InvalidInput) as error:
        call()
    return error.value.field_errors


SLEDAI = {f"sledai_{name}": False for name in da.SLEDAI_2K_WEIGHTS}
SLE_ASSESSMENT = {**SLEDAI, "physician_global": "0.2", "prednisone_mg_day": "0"}


def test_doris_remission_with_a_sledai_of_12_is_refused(visit, physician):
    step = visit("sle", "remission-month-3")
    active = {
        **SLE_ASSESSMENT,
        "sledai_arthritis": True,
        "sledai_proteinuria": True,
        "sledai_rash": True,
        "sledai_low_complement": True,
    }
    errors = refused(lambda: step_complete(actor=physician, step_id=step.id, record={**active, "remission": "doris"}))
    assert errors == {
        "record.remission": [
            "DORIS remission needs a clinical SLEDAI of 0 (here 10), a physician global below 0.5 (here 0.2) "
            "and prednisone at most 5 mg/day (here 0)."
        ]
    }
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING
    done = step_complete(actor=physician, step_id=step.id, record={**active, "remission": "active"})
    assert (done.record["sledai_2k"], done.record["clinical_sledai"], done.record["disease_activity"]) == (12, 10, 12)
    assert (done.record["remission"], done.record["remission_criteria"]) == ("active", "neither")


def test_doris_remission_is_recorded_where_it_holds_and_drug_free_with_it(visit, physician):
    step = visit("lupus_nephritis", "remission-month-3")
    serology_only = {**SLE_ASSESSMENT, "sledai_low_complement": True, "sledai_increased_dna_binding": True}
    done = step_complete(
        actor=physician, step_id=step.id, record={**serology_only, "remission": "doris", "remission_drug_free": True}
    )
    assert (done.record["sledai_2k"], done.record["clinical_sledai"], done.record["remission_criteria"]) == (4, 0, "doris")
    assert done.record["remission_drug_free"] is True


def test_doris_and_lldas_are_refused_for_myasthenia_gravis(visit, physician):
    step = visit("myasthenia_gravis", "remission-month-3")
    items = {f"mg_adl_{name}": 0 for name in da.MG_ADL_ITEMS}
    for state, name in (("doris", "DORIS remission"), ("lldas", "LLDAS")):
        errors = refused(
            lambda state=state: step_complete(actor=physician, step_id=step.id, record={**items, "remission": state})
        )
        assert errors == {
            "record.remission": [f"{name} is defined for SLE and lupus nephritis only: record active or not assessable."]
        }
    # A lupus item is not asked of this patient.
    errors = refused(
        lambda: step_complete(actor=physician, step_id=step.id, record={**items, "sledai_rash": False, "remission": "active"})
    )
    assert errors == {"record.sledai_rash": ["Not recorded for this patient's indication."]}
    done = step_complete(actor=physician, step_id=step.id, record={**items, "remission": "active"})
    assert (done.record["mg_adl"], done.record["disease_activity"], done.record["remission_criteria"]) == (0, 0, "not_applicable")


@pytest.mark.parametrize(
    "indication, record, field, message",
    [
        # issue 11's examples, each refused by the input that carries it
        ("myasthenia_gravis", {"mg_adl_talking": 50}, "record.mg_adl_talking", "Must be from 0 to 3."),
        (
            "multiple_sclerosis",
            {"edss": "3.3"},
            "record.edss",
            "EDSS is 0, or 1.0 to 10 in steps of 0.5 (Kurtzke 1983), not 3.3.",
        ),
        ("multiple_sclerosis", {"edss": "37"}, "record.edss", "Must be from 0 to 10."),
        (
            "multiple_sclerosis",
            {"edss": "0.5"},
            "record.edss",
            "EDSS is 0, or 1.0 to 10 in steps of 0.5 (Kurtzke 1983), not 0.5.",
        ),
        ("systemic_sclerosis", {"mrss_face": 80}, "record.mrss_face", "Must be from 0 to 3."),
    ],
)
def test_a_score_off_its_scale_is_refused_with_a_clear_message(visit, nurse, indication, record, field, message):
    step = visit(indication, "visit-month-6")
    errors = refused(lambda: step_complete(actor=nurse, step_id=step.id, record={**record, "new_malignancy": False}))
    assert errors == {field: [message]}


def test_the_visit_computes_each_indications_score_into_disease_activity_and_converts_units(visit, nurse):
    step = visit("systemic_sclerosis", "visit-month-6")
    sites = {f"mrss_{name}": 0 for name in da.MRSS_SITES} | {"mrss_fingers_right": 2, "mrss_fingers_left": 2, "mrss_face": 1}
    labs = {"igg_measured": "850", "igg_unit": "mg/dL", "creatinine_measured": "1.2", "creatinine_unit": "mg/dL"}
    done = step_complete(actor=nurse, step_id=step.id, record={**sites, **labs, "new_malignancy": False})
    assert (done.record["mrss"], done.record["disease_activity"]) == (5, 5)
    assert (done.record["igg"], done.record["creatinine"]) == (8.5, 106)  # 850 mg/dL = 8.5 g/L; 1.2 mg/dL × 88.4


def test_a_lab_value_without_its_unit_is_refused_at_the_unit(visit, nurse):
    step = visit("sle", "visit-day-14")
    errors = refused(lambda: step_complete(actor=nurse, step_id=step.id, record={"creatinine_measured": "80"}))
    assert errors == {"record.creatinine_unit": ["Say the unit of the value."]}


def test_myositis_records_ck_and_mmt8_and_no_activity_total(visit, nurse):
    step = visit("myositis", "visit-month-6")
    groups = {f"mmt8_{name}": 9 for name in da.MMT8_GROUPS}
    done = step_complete(actor=nurse, step_id=step.id, record={**groups, "ck": 850, "new_malignancy": False})
    assert (done.record["mmt8"], done.record["ck"]) == (72, 850)
    assert "disease_activity" not in done.record


def test_a_new_malignancy_at_month_3_raises_a_clinical_alert(visit, nurse, django_capture_on_commit_callbacks):
    step = visit("sle", "visit-month-3")
    assert refused(lambda: step_complete(actor=nurse, step_id=step.id, record={})) == {
        "record.new_malignancy": ["Required for this step."]
    }
    with django_capture_on_commit_callbacks(execute=True):
        step_complete(
            actor=nurse, step_id=step.id, record={"new_malignancy": "yes", "malignancy_type": "T-cell lymphoma, skin biopsy"}
        )
    alert = ClinicalAlert.objects.get()
    assert (alert.kind, alert.step_id, alert.patient_id) == (AlertKind.SECONDARY_MALIGNANCY, step.id, step.journey.patient_id)
    assert alert.summary == "New malignancy since the last contact: yes, recorded at Follow-up visit, month 3."


def test_no_malignancy_raises_no_alert(visit, nurse):
    step = visit("sle", "visit-month-3")
    step_complete(actor=nurse, step_id=step.id, record={"new_malignancy": False})
    assert not ClinicalAlert.objects.exists()


def test_the_month_3_form_asks_only_the_patients_indication(client, visit, nurse):
    step = visit("myasthenia_gravis", "visit-month-3")
    client.force_login(nurse)
    page = client.get(reverse("step_complete", args=[step.public_id])).content.decode()
    assert 'name="record.mg_adl_talking"' in page and 'name="record.new_malignancy"' in page
    assert 'name="record.sledai_rash"' not in page and 'name="record.edss"' not in page
    assert "MG-ADL (computed)" in page


def test_the_correction_form_asks_only_the_patients_indication_too(client, visit, nurse):
    step = visit("systemic_sclerosis", "visit-day-14")
    step_complete(actor=nurse, step_id=step.id, record={"mrss_face": 1})
    client.force_login(nurse)
    page = client.get(reverse("step_correct", args=[step.public_id])).content.decode()
    assert 'name="record.mrss_face"' in page and 'name="record.mg_adl_talking"' not in page


def test_the_timeline_shows_a_score_not_its_items():
    specs = [
        {"name": "sledai_rash", "label": "Rash", "type": "boolean", "indications": ["sle"]},
        {
            "name": "sledai_2k",
            "label": "SLEDAI-2K",
            "type": "integer",
            "indications": ["sle"],
            "computed": {"by": "sledai_2k", "from": {"rash": "record.sledai_rash"}},
        },
        {"name": "new_malignancy", "label": "New malignancy", "type": "boolean"},
    ]
    record = {"sledai_rash": True, "sledai_2k": 2, "new_malignancy": False}
    assert records.summary(specs, record) == "SLEDAI-2K 2 (computed) · New malignancy no"
