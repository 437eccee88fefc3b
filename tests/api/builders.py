"""Many patients with journeys, fast: one journey through the real service, the rest copied row for row
(the same stages, steps and dates), so list tests can run at 1,000 patients in seconds."""

from django.utils import timezone

from journeys.models import Journey, JourneyEvent, Stage, Step
from patients.models import Patient
from tests.factories import PatientFactory


def patients_with_journeys(template_journey: Journey, count: int, **patient_fields) -> list[Patient]:
    patients = Patient.objects.bulk_create([PatientFactory.build(**patient_fields) for _ in range(count)])
    stages = list(template_journey.stages.all())
    steps = list(template_journey.steps.all())
    now = timezone.now()
    journeys = Journey.objects.bulk_create(
        [
            Journey(
                patient=patient,
                protocol_id=template_journey.protocol_id,
                status=template_journey.status,
                current_stage=template_journey.current_stage,
                leukapheresis_date=template_journey.leukapheresis_date,
                day0_planned=template_journey.day0_planned,
                started_at=now,
                started_by=template_journey.started_by,
            )
            for patient in patients
        ]
    )
    new_stages = Stage.objects.bulk_create(
        [
            Stage(journey=journey, number=stage.number, status=stage.status, started_at=stage.started_at)
            for journey in journeys
            for stage in stages
        ]
    )
    stage_of = {(stage.journey_id, stage.number): stage for stage in new_stages}
    number_of = {stage.pk: stage.number for stage in stages}
    Step.objects.bulk_create(
        [
            Step(
                journey=journey,
                stage=stage_of[(journey.pk, number_of[step.stage_id])],
                template_id=step.template_id,
                status=step.status,
                due_on=step.due_on,
                window_opens_on=step.window_opens_on,
                window_closes_on=step.window_closes_on,
                overdue_after=step.overdue_after,
                completed_at=step.completed_at,
            )
            for journey in journeys
            for step in steps
        ],
        batch_size=5000,
    )
    JourneyEvent.objects.bulk_create(
        [JourneyEvent(journey=journey, kind="journey_started", to_state="active", at=now) for journey in journeys]
    )
    return patients
