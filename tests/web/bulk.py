"""Many patients at once, for query-count tests and the page benchmark.

Rows are written with bulk_create (no history rows, no events): the aim is a realistic spread of
journeys over the five stages, with some steps overdue, in seconds rather than the minutes that
`journey_start` plus `step_complete` per patient would take. It follows the same date rules
(`journeys.clock`) as the services, so the pages see what they would see in a clinic.
"""

from datetime import date, timedelta

from django.utils import timezone

from journeys import clock
from journeys.models import (
    Journey,
    Milestone,
    ProtocolTemplate,
    Stage,
    StageNumber,
    StageStatus,
    Step,
    StepStatus,
)
from patients.models import Indication, Patient, Sex

GIVEN = ["Anna", "Ben", "Clara", "David", "Elif", "Farid", "Greta", "Hannes", "Ines", "Jonas", "Katrin", "Lukas"]
FAMILY = ["Becker", "Schmidt", "Yilmaz", "Wagner", "Hoffmann", "Kaya", "Schulz", "Richter", "Wolf", "Neumann"]
INDICATIONS = [
    Indication.SLE,
    Indication.LUPUS_NEPHRITIS,
    Indication.MYASTHENIA_GRAVIS,
    Indication.SYSTEMIC_SCLEROSIS,
    Indication.MULTIPLE_SCLEROSIS,
]


def build_patients(
    count: int,
    *,
    prefix: str = "BULK",
    protocol: ProtocolTemplate | None = None,
    today: date | None = None,
    coordinator=None,
    nurse=None,
    overdue_every: int = 5,
    batch_size: int = 2000,
) -> list[Journey]:
    """Create `count` patients, each on an open journey; leukapheresis dates spread over ten weeks so every
    stage is populated; every `overdue_every`-th patient has its next step overdue."""
    protocol = protocol or ProtocolTemplate.objects.get(version=1, name__startswith="CD19")
    templates = list(protocol.step_templates.all())
    now = timezone.now()
    today = today or timezone.localdate(now)
    journeys: list[Journey] = []
    for start in range(0, count, batch_size):
        chunk = range(start, min(count, start + batch_size))
        patients = Patient.objects.bulk_create(
            [
                Patient(
                    mrn=f"{prefix}{i:07d}",
                    given_name=GIVEN[i % len(GIVEN)],
                    family_name=f"{FAMILY[i % len(FAMILY)]}{i}",
                    date_of_birth=date(1965 + i % 40, 1 + i % 12, 1 + i % 28),
                    sex=Sex.FEMALE if i % 3 else Sex.MALE,
                    indication=INDICATIONS[i % len(INDICATIONS)],
                    coordinator=coordinator,
                    nurse=nurse,
                )
                for i in chunk
            ]
        )
        plans = []
        for i, patient in zip(chunk, patients, strict=True):
            leukapheresis = today + timedelta(days=10 - (i * 37) % 70)  # spread over ten weeks, even for a few patients
            day0 = leukapheresis + timedelta(days=protocol.planned_vein_to_vein_days)
            dated = sorted(
                (
                    (template, clock.dates_for_template(template, leukapheresis if template.anchor == "leukapheresis" else day0))
                    for template in templates
                ),
                key=lambda pair: (pair[1].overdue_after, pair[0].position),
            )
            done = sum(1 for _, dates in dated if dates.overdue_after <= now)
            if overdue_every and i % overdue_every == 0 and done:
                done -= 1  # leave the earliest late step pending: it is overdue
            pending_stages = [template.stage for template, _ in dated[done:]]
            current = min(pending_stages) if pending_stages else StageNumber.IMMUNE_RE_EDUCATION
            released = any(t.milestone == Milestone.PRODUCT_RELEASED for t, _ in dated[:done])
            journey = Journey(
                patient=patient,
                protocol=protocol,
                leukapheresis_date=leukapheresis,
                day0_planned=day0,
                current_stage=current,
                started_at=now - timedelta(days=30),
                product_released_at=now - timedelta(days=1) if released else None,
            )
            plans.append((journey, dated, done, current))
        Journey.objects.bulk_create([plan[0] for plan in plans])
        stages = []
        for journey, _, _, current in plans:
            for number in StageNumber.values:
                status = (
                    StageStatus.COMPLETED
                    if number < current
                    else StageStatus.IN_PROGRESS
                    if number == current
                    else StageStatus.PENDING
                )
                stages.append(
                    Stage(
                        journey=journey,
                        number=number,
                        status=status,
                        started_at=now if status != StageStatus.PENDING else None,
                        completed_at=now if status == StageStatus.COMPLETED else None,
                    )
                )
        Stage.objects.bulk_create(stages)
        stage_of = {(stage.journey_id, stage.number): stage for stage in stages}
        steps = []
        for journey, dated, done, _ in plans:
            for index, (template, dates) in enumerate(dated):
                finished = index < done
                steps.append(
                    Step(
                        journey=journey,
                        stage=stage_of[(journey.id, template.stage)],
                        template=template,
                        status=StepStatus.DONE if finished else StepStatus.PENDING,
                        due_on=dates.due_on,
                        window_opens_on=dates.window_opens_on,
                        window_closes_on=dates.window_closes_on,
                        overdue_after=dates.overdue_after,
                        overdue_since=dates.overdue_after if not finished and dates.overdue_after <= now else None,
                        completed_at=dates.overdue_after - timedelta(hours=30) if finished else None,
                        performed_at=dates.overdue_after - timedelta(hours=30) if finished else None,
                        completed_by=nurse if finished else None,
                        signature_meaning="performed" if finished else "",
                    )
                )
        Step.objects.bulk_create(steps, batch_size=5000)
        journeys.extend(plan[0] for plan in plans)
    return journeys
