"""The two lists every page leans on ("what is late?", "how many per stage?") cost the same number of
queries for ten patients as for a thousand."""

from datetime import date

from journeys.models import JourneyStatus, Step, StepStatus
from journeys.selectors import overdue_steps, patients_per_stage
from journeys.services import journey_hold, journey_start, step_complete
from tests.factories import PatientFactory, bulk_journeys

LEUKAPHERESIS = date(2026, 3, 3)


def read_overdue() -> list[tuple[str, str]]:
    # What a page does with each row: the patient's MRN and the step's name.
    return [(step.journey.patient.mrn, step.template.name) for step in list(overdue_steps())]


def test_overdue_and_per_stage_queries_stay_constant_from_10_to_1000_patients(
    at_clinic, coordinator, protocol, django_assert_num_queries
):
    at_clinic(2026, 3, 3, 9, 0)
    for _ in range(10):
        journey_start(
            actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
        )
    at_clinic(2026, 3, 10, 9, 0)  # a week on: the eligibility labs and sign-off are late everywhere

    with django_assert_num_queries(1):
        rows_for_10 = read_overdue()
    with django_assert_num_queries(1):
        per_stage_for_10 = patients_per_stage()
    assert len(rows_for_10) >= 10
    assert per_stage_for_10 == {1: 10, 2: 0, 3: 0, 4: 0, 5: 0}

    at_clinic(2026, 3, 3, 9, 0)
    bulk_journeys(protocol=protocol, count=990, leukapheresis_date=LEUKAPHERESIS, actor=coordinator)
    at_clinic(2026, 3, 10, 9, 0)

    with django_assert_num_queries(1):
        rows_for_1000 = read_overdue()
    with django_assert_num_queries(1):
        per_stage_for_1000 = patients_per_stage()
    assert len(rows_for_1000) > 10 * len(rows_for_10) // 2
    assert sum(per_stage_for_1000.values()) == 1000
    assert all(per_stage_for_1000[stage] >= 198 for stage in range(1, 6))


def test_overdue_lists_only_pending_steps_of_active_journeys_past_their_grace(at_clinic, coordinator, nurse, protocol):
    at_clinic(2026, 3, 3, 9, 0)
    late, held = (
        journey_start(
            actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
        )
        for _ in range(2)
    )
    journey_hold(actor=coordinator, journey_id=held.id, reason="Infection")
    step_complete(actor=nurse, step_id=Step.objects.get(journey=late, template__code="eligibility-labs").id)

    # Sign-off: leukapheresis −2, window to Day −1 (2 March), 24 h grace: late from 3 March 24:00 CET.
    at_clinic(2026, 3, 3, 23, 59)
    assert [s.template.code for s in overdue_steps()] == []
    at_clinic(2026, 3, 4, 0, 0)
    rows = list(overdue_steps())
    assert [(s.journey_id, s.template.code) for s in rows] == [(late.id, "eligibility-signoff")]
    assert all(s.status == StepStatus.PENDING and s.journey.status == JourneyStatus.ACTIVE for s in rows)


def test_patients_per_stage_counts_open_journeys_only(at_clinic, coordinator, protocol):
    at_clinic(2026, 3, 3, 9, 0)
    bulk_journeys(protocol=protocol, count=10, leukapheresis_date=LEUKAPHERESIS, stages=(1, 1, 3, 5, 5))
    assert patients_per_stage() == {1: 4, 2: 0, 3: 2, 4: 0, 5: 4}
    first = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=LEUKAPHERESIS
    )
    journey_hold(actor=coordinator, journey_id=first.id, reason="Infection")
    assert patients_per_stage()[1] == 5  # on hold still stands in its stage
    first.__class__.objects.filter(pk=first.pk).update(status=JourneyStatus.WITHDRAWN)
    assert patients_per_stage()[1] == 4


def test_my_steps_shows_a_physician_their_own_patients_and_those_without_a_treating_physician(
    at_clinic, coordinator, physician, make_user, protocol
):
    from journeys.selectors import my_steps_today

    colleague = make_user("physician")
    at_clinic(2026, 3, 3, 9, 0)
    mine, theirs, nobodys = (
        journey_start(
            actor=coordinator,
            patient_id=PatientFactory(physician=who).id,
            protocol_id=protocol.id,
            leukapheresis_date=LEUKAPHERESIS,
        )
        for who in (physician, colleague, None)
    )
    # A week on, the eligibility sign-off (a physician's step) is late on all three journeys.
    listed = {step.journey_id for step in my_steps_today(user=physician, today=date(2026, 3, 10))}
    assert listed == {mine.id, nobodys.id}
