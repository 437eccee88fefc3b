from datetime import date, timedelta

import factory
import factory.random
from faker import Faker

from patients.models import Indication, Patient, Sex
from staff.models import User

_fake = Faker()


def reseed(seed: str) -> None:
    """Make the factories' random names and dates repeat from run to run (factory_boy's and ours)."""
    factory.random.reseed_random(seed)
    _fake.seed_instance(seed)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@clinic.test")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient
        skip_postgeneration_save = True

    mrn = factory.Sequence(lambda n: f"MRN{n:07d}")
    given_name = factory.Faker("first_name")
    # A real surname with a fixed-width serial: tests assert one patient's name is on a page and
    # another's is not, and a bare "Chan" or "Day" also hides inside "Channel" or "Day +12".
    family_name = factory.Sequence(lambda n: f"{_fake.last_name()}-{n:05d}")
    date_of_birth = factory.Faker("date_between", start_date=date(1960, 1, 1), end_date=date(2004, 12, 31))
    sex = Sex.FEMALE
    indication = Indication.SLE

    @factory.post_generation
    def consents(obj, create, extracted, **kwargs):
        """Eligible by default: the treatment consent on file, as a journey's start asks. `consents=[]` for none,
        or a list of kinds."""
        if not create:
            return
        from patients.models import Consent, ConsentKind

        kinds = [ConsentKind.TREATMENT] if extracted is None else extracted
        for kind in kinds:
            Consent.objects.create(patient=obj, kind=kind, signed_on=date(2020, 1, 1), document_version="v1")


# --- Journeys ------------------------------------------------------------------------------------
# A small protocol for rules the shipped one cannot show (optional steps), and a bulk builder for
# query-count tests that need a thousand journeys without a thousand calls to journey_start.


def make_protocol(*, name: str = "Test protocol", steps: list[dict] | None = None, vein_to_vein: int = 21):
    """A protocol with one or a few steps per stage; `steps` overrides the default list."""
    from journeys.models import Anchor, Milestone, ProtocolTemplate, StepTemplate

    protocol = ProtocolTemplate.objects.create(name=name, version=1, planned_vein_to_vein_days=vein_to_vein)
    default = [
        dict(stage=1, code="labs", anchor=Anchor.LEUKAPHERESIS, offset_days=-3, responsible_role="nurse"),
        dict(
            stage=1,
            code="collect",
            anchor=Anchor.LEUKAPHERESIS,
            offset_days=0,
            responsible_role="nurse",
            milestone=Milestone.COLLECTION,
        ),
        dict(stage=1, code="extra-photo", anchor=Anchor.LEUKAPHERESIS, offset_days=0, responsible_role="nurse", required=False),
        dict(
            stage=2,
            code="release",
            anchor=Anchor.DAY0,
            offset_days=-7,
            window_before_days=5,
            window_after_days=2,
            responsible_role="coordinator",
            milestone=Milestone.PRODUCT_RELEASED,
        ),
        dict(stage=3, code="ld", anchor=Anchor.DAY0, offset_days=-5, responsible_role="nurse", grace_hours=6),
        dict(stage=4, code="infuse", anchor=Anchor.DAY0, offset_days=0, responsible_role="nurse", milestone=Milestone.INFUSION),
        dict(stage=4, code="optional-check", anchor=Anchor.DAY0, offset_days=1, responsible_role="nurse", required=False),
        dict(
            stage=5,
            code="visit",
            anchor=Anchor.DAY0,
            offset_days=28,
            window_before_days=3,
            window_after_days=3,
            responsible_role="physician",
            grace_hours=24,
        ),
    ]
    for position, spec in enumerate(steps or default):
        spec = {"name": spec["code"].replace("-", " ").title(), "position": position, **spec}
        StepTemplate.objects.create(protocol=protocol, **spec)
    return protocol


def bulk_journeys(*, protocol, count: int, leukapheresis_date: date, actor=None, stages=(1, 2, 3, 4, 5)):
    """`count` patients, each with a journey laid out as journey_start lays it out (same dates from
    journeys.clock), spread over `stages`: earlier stages completed with their steps done, the current one
    in progress. Plain bulk_create: history rows are not what these tests count."""
    from django.utils import timezone

    from journeys import clock
    from journeys.models import Journey, Stage, StageNumber, StageStatus, Step, StepStatus

    now = timezone.now()
    templates = list(protocol.step_templates.all())
    prefix = Patient.objects.count()
    patients = Patient.objects.bulk_create([PatientFactory.build(mrn=f"BULK{prefix + i:08d}") for i in range(count)])
    day0 = leukapheresis_date + timedelta(days=protocol.planned_vein_to_vein_days)
    journeys = Journey.objects.bulk_create(
        [
            Journey(
                patient=patient,
                protocol=protocol,
                leukapheresis_date=leukapheresis_date,
                day0_planned=day0,
                started_at=now,
                started_by=actor,
                current_stage=stages[i % len(stages)],
                product_released_at=now if stages[i % len(stages)] >= StageNumber.LYMPHODEPLETION else None,
            )
            for i, patient in enumerate(patients)
        ]
    )
    stage_rows = []
    for journey in journeys:
        for number in StageNumber.values:
            if number < journey.current_stage:
                stage_rows.append(
                    Stage(journey=journey, number=number, status=StageStatus.COMPLETED, started_at=now, completed_at=now)
                )
            elif number == journey.current_stage:
                stage_rows.append(Stage(journey=journey, number=number, status=StageStatus.IN_PROGRESS, started_at=now))
            else:
                stage_rows.append(Stage(journey=journey, number=number))
    stage_rows = Stage.objects.bulk_create(stage_rows, batch_size=2000)
    stage_by_key = {(stage.journey_id, stage.number): stage for stage in stage_rows}
    steps = []
    for journey in journeys:
        for template in templates:
            dates = clock.dates_for_template(template, journey.anchor_date(template.anchor))
            done = template.stage < journey.current_stage
            steps.append(
                Step(
                    journey=journey,
                    stage=stage_by_key[(journey.id, template.stage)],
                    template=template,
                    due_on=dates.due_on,
                    window_opens_on=dates.window_opens_on,
                    window_closes_on=dates.window_closes_on,
                    overdue_after=dates.overdue_after,
                    status=StepStatus.DONE if done else StepStatus.PENDING,
                    completed_at=now if done else None,
                    completed_by=actor if done else None,
                )
            )
    Step.objects.bulk_create(steps, batch_size=2000)
    return journeys


# --- Step records --------------------------------------------------------------------------------

# Plausible typed values where the field's minimum would compute an impossible result (creatinine 0.1 mg/dL
# gives a clearance of ~970 mL/min, outside the field's range).
PLAUSIBLE = {"creatinine": "1.0"}


def minimal_record(step_or_template, *, on: date | None = None) -> dict:
    """The least a step's template requires to be recorded (its required fields, plausibly filled):
    for tests about something other than the record itself. Computed fields are left to the service. Given a
    step whose fields compute from the patient's height and weight, it makes sure the patient has a recent
    one (measured on `on`, default the step's due day or today) and gives each dose within_percent of its
    prescription exactly the prescribed value."""
    from journeys import records, selectors
    from patients.models import Measurement

    template = getattr(step_or_template, "template", step_or_template)
    values = {"text": "TEST-0001", "boolean": True, "date": date(2026, 3, 3).isoformat()}
    record = {}
    for spec in template.record_fields:
        if not spec.get("required") or spec.get("computed"):
            continue
        if spec["type"] == "choice":
            record[spec["name"]] = spec["choices"][0][0]
        elif spec["type"] in ("integer", "decimal"):
            # An eligibility criterion met: the least value that meets it.
            least = (spec.get("criterion") or {}).get("at_least", spec.get("min", 0))
            record[spec["name"]] = PLAUSIBLE.get(spec["name"], least)
        elif spec["type"] == "boolean":
            # A finding answered "no" (no hypotension: no CRS alert), a safety check the way it must be.
            record[spec["name"]] = spec.get("must_be", False)
        else:
            record[spec["name"]] = values[spec["type"]]
    if template.milestone == "discharge" and "discharge_date" in record:
        # A discharge comes on or after the infusion: walk-through tests infuse today.
        record["discharge_date"] = (on or date.today()).isoformat()
    journey = getattr(step_or_template, "journey", None)
    if journey is None or not records.needs_patient_facts(template.record_fields):
        return record
    day = on or (
        date.today() - timedelta(days=LD_DONE_DAYS_AGO)
        if step_or_template.stage.number == 3
        else min(step_or_template.due_on or date.today(), date.today())
    )
    if not Measurement.objects.filter(
        patient_id=journey.patient_id, measured_on__lte=day, measured_on__gte=day - timedelta(days=7)
    ).exists():
        Measurement.objects.create(patient_id=journey.patient_id, measured_on=day, height_cm=170, weight_kg=70)
    facts = selectors.record_facts(journey_id=journey.pk, patient_id=journey.patient_id, specs=template.record_fields, on=day)
    so_far = dict(record)
    for spec in records.parse_specs(template.record_fields):
        if spec.computed is not None:
            try:
                value = spec.computed_value(so_far, facts)
            except ValueError:
                value = None
            if value is not None:
                so_far[spec.name] = value
        elif spec.within_percent is not None and spec.required and so_far.get(spec.within_percent.of) is not None:
            record[spec.name] = so_far[spec.name] = so_far[spec.within_percent.of]
    return record


SECOND_SIGNER_PASSWORD = "correct-horse-battery"  # UserFactory's


def second_signer(step) -> dict:
    """The second signature a two-person step needs (chemotherapy, the COI check, the infusion), by a
    physician who signs nothing else in the tests ({} for any other step): `step_complete(..., **second_signer(step))`."""
    from django.contrib.auth.models import Group

    template = getattr(step, "template", step)
    if not template.two_person:
        return {}
    user = User.objects.filter(username="second-signer").first()
    if user is None:
        user = UserFactory(username="second-signer", first_name="Sam", last_name="Second")
        user.groups.add(*Group.objects.filter(name__in=("physician", "nurse")))
    return {"second_signer_username": user.username, "second_signer_password": SECOND_SIGNER_PASSWORD}


# Walk-through tests record lymphodepletion this many days ago, so that today's infusion keeps the protocol's rest
# days after it (infusion_rest_days = 2).
LD_DONE_DAYS_AGO = 3


def lymphodepletion_earlier(step) -> dict:
    """performed_at for a lymphodepletion step of a walk-through test ({} for any other): `step_complete(...,
    **lymphodepletion_earlier(step))`, with minimal_record measuring the patient on that day."""
    from django.utils import timezone

    if getattr(step, "stage", None) is None or step.stage.number != 3:
        return {}
    return {"performed_at": timezone.now() - timedelta(days=LD_DONE_DAYS_AGO)}


# A monitoring day on which nothing is wrong: every ASTCT component at its calm value (CRS 0, ICANS 0).
CALM_MONITORING_DAY = {
    "temperature_max": "36.8",
    "fever_masked": "no",
    "hypotension": "no",
    "vasopressors": "none",
    "vasopressin": "no",
    "oxygen": "none",
    "ice_orientation": 4,
    "ice_naming": 3,
    "ice_commands": 1,
    "ice_writing": 1,
    "ice_attention": 1,
    "consciousness": "alert",
    "seizure": "none",
    "motor": "none",
    "cerebral_oedema": "none",
}
