"""The shipped protocol's lymphodepletion sheet (issue 13, "Lymphodepletion sheet"): the renal dose review
computes the creatinine clearance (Cockcroft–Gault) and the dose percent of the protocol's renal band; each
LD day computes the BSA from a recent height and weight, the full and the prescribed dose, and refuses a
given dose outside the protocol's tolerance unless a physician says why. Worked examples: issue 13's Tests
section and ../shared/domain.md "Safety checks"."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from carclinic.errors import InvalidInput, NotPermitted
from journeys.errors import TransitionNotAllowed
from journeys.models import EventKind, JourneyEvent, Step, StepStatus
from journeys.services import journey_start, step_complete
from patients.models import Measurement
from tests.factories import PatientFactory, minimal_record, second_signer


def step_of(journey, code: str) -> Step:
    return Step.objects.select_related("template", "journey").get(journey=journey, template__code=code)


def complete_stage(journey, number: int, actor) -> None:
    while step := (
        Step.objects.filter(journey=journey, stage__number=number, status=StepStatus.PENDING)
        .select_related("template", "journey")
        .order_by("id")
        .first()
    ):
        step_complete(actor=actor, step_id=step.id, record=minimal_record(step), **second_signer(step))


def born_years_ago(years: int) -> date:
    today = timezone.localdate()
    return date(today.year - years, today.month, min(today.day, 28)) - timedelta(days=1)


@pytest.fixture
def ld_journey(coordinator, physician, protocol):
    """A journey of the shipped protocol at lymphodepletion (stage 3), for a patient of the given facts."""

    def make(*, sex="male", age=40, height="170", weight="70", measured_days_ago=0):
        patient = PatientFactory(sex=sex, date_of_birth=born_years_ago(age))
        journey = journey_start(
            actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=timezone.localdate()
        )
        for stage in (1, 2):
            complete_stage(journey, stage, physician)
        Measurement.objects.create(
            patient=patient,
            measured_on=timezone.localdate() - timedelta(days=measured_days_ago),
            height_cm=Decimal(height),
            weight_kg=Decimal(weight),
        )
        return journey

    return make


def give(actor, journey, code: str, record: dict, **extra) -> Step:
    """Record an LD day with the second signature it needs."""
    step = step_of(journey, code)
    return step_complete(actor=actor, step_id=step.id, record=record, **second_signer(step), **extra)


def review(journey, physician, creatinine="1.0", unit="mg/dL", **extra):
    return step_complete(
        actor=physician,
        step_id=step_of(journey, "renal-dose-review").id,
        record={"creatinine": creatinine, "creatinine_unit": unit, **extra},
    )


def test_170_cm_70_kg_gives_bsa_1_82_fludarabine_45_5_and_cyclophosphamide_1820(ld_journey, physician, nurse):
    """issue 13: 170 cm / 70 kg → BSA 1.82 m² (Mosteller, rounded to 0.01 first) → fludarabine 25 mg/m² × 1.82 m²
    = 45.5 mg/day, cyclophosphamide 1000 mg/m² × 1.82 m² = 1820 mg (1818 from the unrounded BSA)."""
    journey = ld_journey(sex="male", age=40)
    done_review = review(journey, physician)
    assert done_review.record["creatinine_clearance"] == 97.2 and done_review.record["dose_percent"] == 100
    day5 = give(nurse, journey, "ld-day-5", {"fludarabine_mg": "45.5"})
    assert day5.record == {"bsa": 1.82, "fludarabine_full_mg": 45.5, "fludarabine_prescribed_mg": 45.5, "fludarabine_mg": 45.5}
    give(nurse, journey, "ld-day-4", {"fludarabine_mg": "45.5"})
    day3 = give(nurse, journey, "ld-day-3", {"fludarabine_mg": "45.5", "cyclophosphamide_mg": "1820"})
    assert day3.record["cyclophosphamide_prescribed_mg"] == 1820


def test_a_woman_with_crcl_47_2_gets_fludarabine_33_2_mg_a_day(ld_journey, physician, nurse):
    """domain.md "Safety checks": woman, 60 y, 165 cm, 60 kg, creatinine 1.2 mg/dL → CrCl 47.2 mL/min (package
    insert band 30–70: −20 %); BSA 1.66 m² → fludarabine 41.5 mg/day, 33.2 mg/day at −20 %."""
    journey = ld_journey(sex="female", age=60, height="165", weight="60")
    done_review = review(journey, physician, creatinine="1.2")
    assert (done_review.record["creatinine_clearance"], done_review.record["dose_percent"]) == (47.2, 80)
    day5 = give(nurse, journey, "ld-day-5", {"fludarabine_mg": "33.2"})
    assert (day5.record["bsa"], day5.record["fludarabine_full_mg"], day5.record["fludarabine_prescribed_mg"]) == (
        1.66,
        41.5,
        33.2,
    )


def test_creatinine_in_micromol_per_litre_gives_the_same_clearance(ld_journey, physician):
    """1.2 mg/dL × 88.4 = 106.08 µmol/L: the same woman, the same 47.2 mL/min."""
    journey = ld_journey(sex="female", age=60, height="165", weight="60")
    assert review(journey, physician, creatinine="106.08", unit="µmol/L").record["creatinine_clearance"] == 47.2


@pytest.mark.parametrize(
    ("typed", "field", "words"),
    [
        ({"fludarabine_mg": "91"}, "record.fludarabine_mg", "91 is +100 % from the fludarabine prescribed 45.5"),
        ({"fludarabine_mg": "4.55"}, "record.fludarabine_mg", "4.55 is −90 % from the fludarabine prescribed 45.5"),
    ],
)
def test_a_fludarabine_dose_off_the_prescription_is_refused_and_nothing_written(
    ld_journey, physician, nurse, typed, field, words
):
    """issue 13: fludarabine recorded at 91 mg and at 4.55 mg where the sheet calculates 45.5 mg."""
    journey = ld_journey()
    review(journey, physician)
    step = step_of(journey, "ld-day-5")
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step.id, record=typed)
    assert list(refused.value.field_errors) == [field]
    assert words in refused.value.field_errors[field][0] and "±5 %" in refused.value.field_errors[field][0]
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


def test_cyclophosphamide_typed_in_grams_is_refused(ld_journey, physician, nurse):
    """issue 13: cyclophosphamide "1.82" (grams typed into the mg field) where the sheet calculates 1820 mg."""
    journey = ld_journey()
    review(journey, physician)
    for code in ("ld-day-5", "ld-day-4"):
        give(nurse, journey, code, {"fludarabine_mg": "45.5"})
    with pytest.raises(InvalidInput) as refused:
        give(nurse, journey, "ld-day-3", {"fludarabine_mg": "45.5", "cyclophosphamide_mg": "1.82"})
    assert list(refused.value.field_errors) == ["record.cyclophosphamide_mg"]


def test_within_5_percent_is_accepted(ld_journey, physician, nurse):
    """±5 % of 45.5 mg is 43.225 to 47.775 mg (both ends included): 47.7 passes."""
    journey = ld_journey()
    review(journey, physician)
    done = give(nurse, journey, "ld-day-5", {"fludarabine_mg": "47.7"})
    assert done.record["fludarabine_mg"] == 47.7


def test_outside_the_tolerance_only_a_physician_with_a_reason_records_it(ld_journey, physician, nurse, make_user):
    other_nurse = make_user("nurse")
    journey = ld_journey()
    review(journey, physician)
    step = step_of(journey, "ld-day-5")
    record = {"fludarabine_mg": "40", "dose_reason": "Vial of 50 mg, 40 mg drawn after the pharmacy's rounding"}
    with pytest.raises(NotPermitted):  # two nurses: no physician confirms it
        step_complete(
            actor=nurse,
            step_id=step.id,
            record=record,
            second_signer_username=other_nurse.username,
            second_signer_password="correct-horse-battery",
        )
    done = step_complete(actor=nurse, step_id=step.id, record=record, **second_signer(step))  # a physician signs too
    event = JourneyEvent.objects.get(step=step, kind=EventKind.STEP_DONE)
    assert event.detail["overrides"] == [
        {"field": "fludarabine_prescribed_mg", "computed": 45.5, "recorded": 40, "reason": record["dose_reason"]}
    ]
    assert done.record["fludarabine_mg"] == 40


def test_the_ld_days_wait_for_the_physicians_dose_review(ld_journey, nurse):
    """issue 13: "lymphodepletion day −5 recorded while the renal dose review was still pending"."""
    journey = ld_journey()
    with pytest.raises(TransitionNotAllowed, match="Creatinine clearance and lymphodepletion dose review"):
        give(nurse, journey, "ld-day-5", {"fludarabine_mg": "45.5"})


def test_a_400_day_old_weight_never_doses_chemotherapy(ld_journey, physician, nurse):
    """issue 13: "a 400-day-old weight used for dosing". The protocol allows 7 days: weigh the patient first."""
    journey = ld_journey(measured_days_ago=400)
    review(journey, physician)
    step = step_of(journey, "ld-day-5")
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step.id, record={"fludarabine_mg": "45.5"})
    assert refused.value.field_errors["record.bsa"][0].startswith("Weigh the patient first")
    assert "400 days old" in refused.value.field_errors["record.bsa"][0]
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


def test_below_30_ml_min_the_physician_decides_the_dose_with_a_reason(ld_journey, physician, nurse):
    """Package insert: below 30 mL/min fludarabine is not recommended, no dose is computed; the physician's
    decided percent, with its reason, is what the LD days prescribe from (woman 60 y 60 kg, creatinine 3.0 →
    CrCl 18.9 mL/min)."""
    journey = ld_journey(sex="female", age=60, height="165", weight="60")
    with pytest.raises(InvalidInput) as refused:
        review(journey, physician, creatinine="3.0", dose_percent_decided="50")
    assert "record.dose_reason" in refused.value.field_errors
    done = review(journey, physician, creatinine="3.0", dose_percent_decided="50", dose_reason="Haematology: 50 %")
    assert done.record["creatinine_clearance"] == 18.9 and "dose_percent" not in done.record
    day5 = give(nurse, journey, "ld-day-5", {"fludarabine_mg": "20.8"})
    assert day5.record["fludarabine_prescribed_mg"] == 20.8  # 41.5 mg × 50 % = 20.75, to 0.1 mg half up


# --- two-person signatures (issue 13: "the double check is optional free text (the recording nurse's own name
# passes), and an API key with no person behind it can record lymphodepletion and the COI check") -----------


def test_chemotherapy_is_signed_by_two_different_people(ld_journey, physician, nurse):
    journey = ld_journey()
    review(journey, physician)
    step = step_of(journey, "ld-day-5")
    record = {"fludarabine_mg": "45.5"}
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step.id, record=record)
    assert list(refused.value.field_errors) == ["second_signer_username"]
    with pytest.raises(InvalidInput) as refused:
        step_complete(
            actor=nurse,
            step_id=step.id,
            record=record,
            second_signer_username=nurse.username,
            second_signer_password="correct-horse-battery",
        )
    assert "different person" in refused.value.field_errors["second_signer_username"][0]
    with pytest.raises(InvalidInput) as refused:
        step_complete(
            actor=nurse, step_id=step.id, record=record, second_signer_username=physician.username, second_signer_password="wrong"
        )
    assert list(refused.value.field_errors) == ["second_signer_password"]
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING
    done = step_complete(
        actor=nurse,
        step_id=step.id,
        record=record,
        second_signer_username=physician.username,
        second_signer_password="correct-horse-battery",
    )
    assert (done.completed_by, done.second_signed_by) == (nurse, physician)
    event = JourneyEvent.objects.get(step=step, kind=EventKind.STEP_DONE)
    assert event.detail["second_signer"] == {"id": physician.pk, "name": str(physician)}


def test_the_shipped_coi_check_and_infusion_are_two_person_steps(protocol):
    two_person = set(protocol.step_templates.filter(two_person=True).values_list("code", flat=True))
    assert two_person == {"ld-day-5", "ld-day-4", "ld-day-3", "coi-check", "infusion"}


def test_the_ld_sheet_page_shows_the_formula_and_takes_a_second_signer(
    ld_journey, physician, nurse, client, django_assert_max_num_queries
):
    journey = ld_journey(sex="female", age=60, height="165", weight="60")
    review(journey, physician, creatinine="1.2")
    step = step_of(journey, "ld-day-5")
    client.force_login(nurse)
    url = f"/steps/{step.public_id}/complete/"
    page = client.get(url).content.decode()
    assert "25 mg/m² × 1.66 m² = 41.5 mg" in page and "41.5 mg × 80 % = 33.2 mg" in page
    assert 'name="second_signer_username"' in page and 'name="second_signer_password"' in page
    response = client.post(
        url,
        {
            "performed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "record.fludarabine_mg": "41.5",
            "signature_meaning": "performed",
            "password": "correct-horse-battery",
            "version": step.version,
            "second_signer_username": physician.username,
            "second_signer_password": "correct-horse-battery",
        },
    )
    assert response.status_code == 400
    assert "41.5 is +25 % from the fludarabine prescribed 33.2" in response.content.decode()
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING
    response = client.post(
        url,
        {
            "performed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "record.fludarabine_mg": "33.2",
            "signature_meaning": "performed",
            "password": "correct-horse-battery",
            "version": step.version,
            "second_signer_username": physician.username,
            "second_signer_password": "correct-horse-battery",
        },
    )
    assert response.status_code == 302
    done = Step.objects.get(pk=step.pk)
    assert (done.status, done.second_signed_by, done.record["fludarabine_mg"]) == (StepStatus.DONE, physician, 33.2)


# --- the infusion (issue 13: "an infusion dated before the QC release, before the lymphodepletion days, even 5
# days before leukapheresis, accepted"; "10 × 10⁶ cells/kg and a total of 5 × 10⁶ cells for 45 kg accepted") ---


@pytest.fixture
def at_infusion(ld_journey, physician, nurse):
    """A 45 kg patient whose lymphodepletion is done today and whose bag's COI is checked."""
    journey = ld_journey(sex="female", age=50, height="160", weight="45", measured_days_ago=6)
    complete_stage(journey, 3, physician)
    coi = step_of(journey, "coi-check")
    step_complete(actor=nurse, step_id=step_of(journey, "admission").id)
    step_complete(actor=nurse, step_id=coi.id, record=minimal_record(coi), **second_signer(coi))
    return journey


def infuse(journey, nurse, total="45", **extra):
    step = step_of(journey, "infusion")
    return step_complete(actor=nurse, step_id=step.id, record={"total_cells": total}, **second_signer(step), **extra)


def test_no_infusion_on_the_last_lymphodepletion_day_or_before_the_rest_days(at_infusion, nurse, time_machine):
    """The protocol's infusion_rest_days = 2: LD ends today, so the earliest infusion is in 3 days."""
    with pytest.raises(InvalidInput) as refused:
        infuse(at_infusion, nurse)
    assert "the protocol asks for 2 days of rest" in refused.value.field_errors["performed_at"][0]
    time_machine.move_to(timezone.now() + timedelta(days=2))
    with pytest.raises(InvalidInput):
        infuse(at_infusion, nurse)
    time_machine.move_to(timezone.now() + timedelta(days=1))
    Measurement.objects.create(
        patient_id=at_infusion.patient_id, measured_on=timezone.localdate(), height_cm=160, weight_kg=45
    )  # weighed again on Day 0
    done = infuse(at_infusion, nurse)
    assert done.status == StepStatus.DONE


def test_no_infusion_dated_before_the_release_or_the_collection(at_infusion, nurse):
    with pytest.raises(InvalidInput) as refused:
        infuse(at_infusion, nurse, performed_at=timezone.now() - timedelta(days=5))
    problems = refused.value.field_errors["performed_at"]
    assert any("Before the product's QC release" in problem for problem in problems)
    assert any("Before the collection (leukapheresis)" in problem for problem in problems)
    assert Step.objects.get(pk=step_of(at_infusion, "infusion").pk).status == StepStatus.PENDING


def test_the_cell_dose_per_kg_is_computed_and_the_total_checked_against_the_target(at_infusion, nurse, time_machine):
    """domain.md: target 1 × 10⁶/kg × 45 kg = 45 × 10⁶ expected; a bag of 5 × 10⁶ is refused; 45 → 1.0 × 10⁶/kg."""
    time_machine.move_to(timezone.now() + timedelta(days=1))  # the weight of 6 days ago is 7 days old
    with pytest.raises(InvalidInput) as refused:
        infuse(at_infusion, nurse, total="5")
    assert "5 is −89 % from the expected total" in refused.value.field_errors["record.total_cells"][0]
    with pytest.raises(InvalidInput) as refused:
        step_complete(actor=nurse, step_id=step_of(at_infusion, "infusion").id, record={"total_cells": "45", "dose_per_kg": "10"})
    assert "Computed, not typed" in refused.value.field_errors["record.dose_per_kg"][0]
    Measurement.objects.create(
        patient_id=at_infusion.patient_id, measured_on=timezone.localdate() + timedelta(days=2), height_cm=160, weight_kg=45
    )
    time_machine.move_to(timezone.now() + timedelta(days=2))
    done = infuse(at_infusion, nurse)
    assert (done.record["expected_total_cells"], done.record["dose_per_kg"]) == (45, 1)


def test_a_discharge_before_the_infusion_is_refused(at_infusion, physician):
    """issue 13: "a discharge 5 days before the infusion accepted". The shipped discharge waits for it."""
    with pytest.raises(TransitionNotAllowed, match="CAR-T infusion"):
        step_complete(actor=physician, step_id=step_of(at_infusion, "discharge").id)
