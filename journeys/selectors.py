"""Every read the pages, the API and the workers share. Each returns a queryset (or a small dict) with its
joins already applied, so a list costs the same number of queries for 10 patients or 10,000."""

from datetime import date, datetime

from django.db.models import Case, Count, Exists, F, Func, OuterRef, Prefetch, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from clinical.body import age_in_years
from clinical.calculators import PatientFacts
from clinical.discharge import discharge_restrictions, length_of_stay_days
from journeys import protocol_files, records
from journeys.models import (
    OPEN_JOURNEY_STATUSES,
    Journey,
    JourneyEvent,
    JourneyStatus,
    Milestone,
    ProtocolTemplate,
    Stage,
    StageNumber,
    Step,
    StepStatus,
    late_condition,
)
from patients.models import Measurement, Patient


def steps_with_context() -> QuerySet[Step]:
    return Step.objects.select_related("template", "stage", "journey", "journey__patient", "completed_by")


def overdue_steps(*, now: datetime | None = None) -> QuerySet[Step]:
    """Steps late now (`Step.objects.overdue`), the latest first by lateness."""
    now = now or timezone.now()
    return steps_with_context().overdue(now).order_by("overdue_after", "id")


def steps_due_between(*, first_day: date, last_day: date) -> QuerySet[Step]:
    """Pending steps of active journeys due from `first_day` to `last_day`, inclusive."""
    return (
        steps_with_context()
        .filter(status=StepStatus.PENDING, due_on__gte=first_day, due_on__lte=last_day, journey__status=JourneyStatus.ACTIVE)
        .order_by("due_on", "template__position", "id")
    )


def patients_per_stage() -> dict[int, int]:
    """How many patients with an open journey stand in each of the five stages (zeros included)."""
    counts = dict.fromkeys(StageNumber.values, 0)
    rows = (
        Journey.objects.filter(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
        .values("current_stage")
        .annotate(patients=Count("id"))
    )
    for row in rows:
        counts[row["current_stage"]] = row["patients"]
    return counts


def open_journey_for_patient(*, patient_id: int) -> Journey | None:
    return (
        Journey.objects.select_related("patient", "protocol")
        .filter(patient_id=patient_id, status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
        .first()
    )


def journey_steps(*, journey_id: int) -> QuerySet[Step]:
    return (
        Step.objects.filter(journey_id=journey_id)
        .select_related("template", "stage", "completed_by")
        .order_by("due_on", "template__position", "id")
    )


def journey_events(*, journey_id: int) -> QuerySet[JourneyEvent]:
    return JourneyEvent.objects.filter(journey_id=journey_id).select_related("actor", "step__template")


def stage_step_counts(*, journey_id: int) -> QuerySet:
    """Per stage: how many steps, how many resolved, how many overdue now."""
    now = timezone.now()
    return (
        Step.objects.filter(journey_id=journey_id)
        .values("stage__number")
        .annotate(
            total=Count("id"),
            resolved=Count("id", filter=~Q(status=StepStatus.PENDING)),
            overdue=Count("id", filter=late_condition(now)),
        )
        .order_by("stage__number")
    )


# --- Pages: the coordinator's dashboard, the patient page, the nurse's list ------------------------
# Lists on a page are cut at a fixed length (with the full count beside them), so a page costs the
# same number of queries and about the same time for 100 patients or 10,000.

DASHBOARD_LIST_LIMIT = 25


def _dashboard_steps() -> QuerySet[Step]:
    return Step.objects.select_related(
        "template", "stage", "journey", "journey__patient", "journey__patient__coordinator", "journey__patient__nurse"
    )


def _dashboard_filters(journey: str, *, indication: str = "", stage: int | None = None, coordinator_id: int | None = None) -> Q:
    """The dashboard's filters (the patient's indication, the journey's stage, the coordinator), reached
    from a journey through the lookup prefix `journey`."""
    chosen = {"patient__indication": indication, "current_stage": stage, "patient__coordinator_id": coordinator_id}
    return Q(**{f"{journey}{lookup}": value for lookup, value in chosen.items() if value})


def filter_steps(steps: QuerySet[Step], **filters) -> QuerySet[Step]:
    """Narrow a step list by the dashboard's filters."""
    return steps.filter(_dashboard_filters("journey__", **filters))


def filter_journeys(journeys: QuerySet[Journey], **filters) -> QuerySet[Journey]:
    return journeys.filter(_dashboard_filters("", **filters))


def dashboard_overdue(*, now: datetime | None = None, **filters) -> QuerySet[Step]:
    """Steps late now (`Step.objects.overdue`), the latest first (earliest `overdue_after`)."""
    now = now or timezone.now()
    return filter_steps(_dashboard_steps().overdue(now), **filters).order_by("overdue_after", "id")


def dashboard_due(*, first_day: date, last_day: date, now: datetime | None = None, **filters) -> QuerySet[Step]:
    """Pending steps of active journeys due from `first_day` to `last_day` that are not late (those are in
    `dashboard_overdue`). A blocked step stays here: it cannot be late, its gate is."""
    now = now or timezone.now()
    steps = (
        _dashboard_steps()
        .filter(status=StepStatus.PENDING, due_on__gte=first_day, due_on__lte=last_day, journey__status=JourneyStatus.ACTIVE)
        .exclude(late_condition(now))
    )
    return filter_steps(steps, **filters).order_by("due_on", "id")


def dashboard_day0_at_risk(*, today: date, **filters) -> QuerySet[Journey]:
    """Active journeys whose product QC has not released by the protocol's lead time before lymphodepletion
    (`Journey.objects.day0_at_risk`), the one needed soonest first."""
    journeys = Journey.objects.day0_at_risk(today).select_related("patient", "protocol")
    return filter_journeys(journeys, **filters).order_by("release_needed_by", "id")


def first_rows(steps: QuerySet[Step], limit: int) -> list[Step]:
    """The first `limit` rows of a step list, picked by id in a subquery and joined only for those rows.

    On a busy day thousands of steps share a due date; joined to patient, journey and template before
    sorting, Postgres would drag every one of them through the sort. Choosing the ids first sorts narrow
    rows, and only the rows shown are joined. Still one query."""
    order = steps.query.order_by
    ids = steps.values("id")[:limit]
    return list(_dashboard_steps().filter(id__in=ids).order_by(*order))


def capped_count(queryset: QuerySet, cap: int) -> int:
    """How many rows, counting no further than `cap`: '500+' tells a coordinator as much as 2,731 does."""
    return queryset.values("id")[:cap].count()


def dashboard_pipeline(**filters) -> dict[int, int]:
    """Patients with an open journey per stage, under the dashboard's filters (zeros included)."""
    counts = dict.fromkeys(StageNumber.values, 0)
    journeys = filter_journeys(
        Journey.objects.filter(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD]),
        **{k: v for k, v in filters.items() if k != "stage"},
    )
    for row in journeys.values("current_stage").annotate(patients=Count("id")):
        counts[row["current_stage"]] = row["patients"]
    return counts


def _next_pending_step(field: str):
    from django.db.models import OuterRef, Subquery

    return Subquery(
        Step.objects.filter(journey=OuterRef("pk"), status=StepStatus.PENDING)
        .order_by("due_on", "template__position", "id")
        .values(field)[:1]
    )


def journeys_in_stage(*, stage: int | None = None, **filters) -> QuerySet[Journey]:
    """Open journeys (optionally of one stage) with their patient and the next pending step's name and date."""
    journeys = (
        Journey.objects.filter(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
        .select_related("patient", "patient__coordinator")
        .annotate(next_step_name=_next_pending_step("template__name"), next_step_due=_next_pending_step("due_on"))
    )
    # Ordered by a stored column (the date the product is needed), so the database sorts cheaply and computes
    # the next-step subqueries only for the rows it returns.
    return filter_journeys(journeys, stage=stage, **filters).order_by("day0_planned", "id")


def manufacturing_queue(*, stage: int | None = None, **filters) -> QuerySet[Journey]:
    """Journeys whose cells are at the plant: waiting for a slot, in production, or waiting for QC release.
    Under the dashboard's filters: a stage filter other than re-engineering leaves it empty."""
    if stage and stage != StageNumber.RE_ENGINEERING:
        return Journey.objects.none()
    return journeys_in_stage(stage=StageNumber.RE_ENGINEERING, **filters)


def patient_search(
    *,
    text: str,
    limit: int = DASHBOARD_LIST_LIMIT,
    indication: str = "",
    stage: int | None = None,
    coordinator_id: int | None = None,
):
    """Patients whose MRN contains `text` (any part, with or without its dashes), or whose name contains
    every word of it (accents folded, or letters spelled out: "Mueller" finds Müller); with the open
    journey's stage if any. Under the dashboard's filters: a stage filter keeps patients whose open journey
    stands in that stage."""
    from patients.models import mrn_search_key, name_search_key, name_spelled_key

    text = (text or "").strip()
    if not text:
        return Patient.objects.none()
    query = Q(mrn__icontains=text)
    if key := mrn_search_key(text):
        query |= Q(mrn_key__contains=key)
    compact = text.upper().replace(" ", "").replace("-", "")
    if len(compact) >= 10 and compact.isalnum():
        # A chain-of-identity id (typed or scanned, with or without its spaces): the patient whose cells carry it.
        # By relation name, so that journeys does not import manufacturing.
        query |= Q(pk__in=Patient.objects.filter(chains_of_identity__identifier=compact).values("pk"))
    name = Q()
    for word in text.split():
        folded, spelled = name_search_key(word), name_spelled_key(word)
        name &= Q(name_key__contains=folded) | Q(name_spelled_key__contains=spelled) if folded else Q()
    open_journeys = Journey.objects.filter(patient=OuterRef("pk"), status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
    patients = Patient.objects.filter(query | name)
    if indication:
        patients = patients.filter(indication=indication)
    if coordinator_id:
        patients = patients.filter(coordinator_id=coordinator_id)
    if stage:
        patients = patients.filter(Exists(open_journeys.filter(current_stage=stage)))
    return (
        patients.select_related("coordinator")
        .annotate(
            open_stage=Subquery(open_journeys.values("current_stage")[:1]),
            open_status=Subquery(open_journeys.values("status")[:1]),
        )
        .order_by("family_name", "given_name", "id")[:limit]
    )


def patient_journey(*, patient_id: int) -> Journey | None:
    """The journey the patient page shows: the open one, else the most recently started."""
    from django.db.models import Case, IntegerField, Value, When

    return (
        Journey.objects.select_related("protocol", "started_by")
        .with_release_needed_by()
        .filter(patient_id=patient_id)
        .annotate(
            is_open_rank=Case(
                When(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD], then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("is_open_rank", "-started_at")
        .first()
    )


def patient_timeline(*, journey: Journey) -> dict:
    """Everything the patient page shows about one journey: stages, steps by stage, and the audit history."""
    stages = list(journey.stages.order_by("number"))
    steps = list(journey_steps(journey_id=journey.id))
    by_stage: dict[int, list[Step]] = {stage.number: [] for stage in stages}
    for step in steps:
        step.journey = journey  # the overdue rule reads the journey's status
        by_stage[step.stage.number].append(step)
    events = list(journey_events(journey_id=journey.id).select_related("step__template")[:200])
    return {"stages": stages, "steps_by_stage": by_stage, "events": events}


def my_steps_today(*, user, today: date) -> QuerySet[Step]:
    """Steps the user's roles do, due today or already late, in stages under way on active journeys.

    A patient with a named nurse (or coordinator, or treating physician) shows on that person's list only; patients without one
    show to everyone of the role. The list starts from the user's own patients, so its cost follows the
    size of a caseload rather than of the clinic."""
    from staff.roles import Role

    roles = set(getattr(user, "roles", ()))
    active = Journey.objects.filter(status=JourneyStatus.ACTIVE)
    mine = Q(pk__in=[])
    for role, field in ((Role.NURSE, "nurse"), (Role.COORDINATOR, "coordinator"), (Role.PHYSICIAN, "physician")):
        if role in roles:
            caseload = active.filter(Q(**{f"patient__{field}": user}) | Q(**{f"patient__{field}__isnull": True}))
            mine |= Q(template__responsible_role=role, journey_id__in=caseload.values("id"))
    steps = _dashboard_steps().filter(mine, status=StepStatus.PENDING, due_on__lte=today, stage__status="in_progress")
    return steps.order_by("due_on", "overdue_after", "id")


# --- The REST API's reads -------------------------------------------------------------------------


def _count(queryset) -> Subquery:
    """A correlated COUNT(*) subquery, so a list annotates counts without joining and grouping."""
    return Coalesce(Subquery(queryset.order_by().annotate(n=Func(F("id"), function="COUNT")).values("n")[:1]), 0)


def patient_last_event_at() -> Subquery:
    return Subquery(JourneyEvent.objects.filter(journey__patient=OuterRef("pk")).order_by("-at").values("at")[:1])


def patients_with_last_change(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    # The latest of a change to the person and a transition of their journey.
    return patients.annotate(last_changed_at=Greatest("updated_at", Coalesce(patient_last_event_at(), "updated_at")))


def patients_for_api(*, patients: QuerySet[Patient], now: datetime | None = None) -> QuerySet[Patient]:
    """Patients with their open journey, overdue count and last change time: two queries, however many."""
    now = now or timezone.now()
    return (
        patients_with_last_change(patients.select_related("coordinator"))
        .annotate(
            overdue_count=_count(Step.objects.overdue(now).filter(journey__patient=OuterRef("pk"))),
        )
        .prefetch_related(
            Prefetch(
                "journeys",
                queryset=Journey.objects.filter(status__in=OPEN_JOURNEY_STATUSES).select_related("protocol"),
                to_attr="open_journeys",
            )
        )
    )


def patients_changed_since(patients: QuerySet[Patient], since: datetime) -> QuerySet[Patient]:
    """Patients whose record or journey changed at or after `since` (incremental sync)."""
    return patients.filter(
        Q(updated_at__gte=since) | Q(Exists(JourneyEvent.objects.filter(journey__patient=OuterRef("pk"), at__gte=since)))
    )


def patients_in_stage(patients: QuerySet[Patient], stage: int) -> QuerySet[Patient]:
    return patients.filter(
        Exists(Journey.objects.filter(patient=OuterRef("pk"), status__in=OPEN_JOURNEY_STATUSES, current_stage=stage))
    )


def journey_for_status(*, patient_id: int) -> Journey | None:
    """The patient's open journey, else the latest one; with its current stage's status."""
    return (
        Journey.objects.filter(patient_id=patient_id)
        .select_related("protocol")
        .with_release_needed_by()
        .annotate(
            current_stage_status=Subquery(
                Stage.objects.filter(journey=OuterRef("pk"), number=OuterRef("current_stage")).values("status")[:1]
            )
        )
        .order_by(Case(When(status__in=OPEN_JOURNEY_STATUSES, then=0), default=1), "-started_at")
        .first()
    )


def patient_status(*, patient: Patient, today: date | None = None, now: datetime | None = None) -> dict:
    """The one answer most outside systems want: stage, Day ±N, next step, what is overdue, last change.
    `patient` must come from `patients_for_api` (it carries `last_changed_at`)."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    journey = journey_for_status(patient_id=patient.pk)
    status = {
        "patient": patient,
        "journey": journey,
        "next_step": None,
        "overdue_steps": [],
        "day_number": None,
        "day0_at_risk": False,
        "last_changed_at": patient.last_changed_at,
    }
    if journey is None:
        return status
    status["day_number"] = journey.day_number(today)
    status["day0_at_risk"] = journey.is_day0_at_risk(today)
    status["next_step"], status["overdue_steps"] = _next_and_overdue_steps(journey, now)
    return status


def journey_with_stages(*, patient_id: int) -> Journey | None:
    """The patient's open (else latest) journey with its five stages and every step: three queries."""
    return (
        Journey.objects.filter(patient_id=patient_id)
        .select_related("protocol", "patient")
        .prefetch_related(
            Prefetch("stages", queryset=Stage.objects.order_by("number")),
            Prefetch(
                "steps",
                queryset=Step.objects.select_related("template", "stage", "completed_by").order_by(
                    "due_on", "template__position", "id"
                ),
            ),
        )
        .order_by(Case(When(status__in=OPEN_JOURNEY_STATUSES, then=0), default=1), "-started_at")
        .first()
    )


def steps_for_api(*, patients: QuerySet[Patient]) -> QuerySet[Step]:
    """Steps of the given patients' journeys, with everything a list row shows joined in."""
    return Step.objects.filter(journey__patient__in=patients).select_related(
        "template", "stage", "journey", "journey__patient", "completed_by"
    )


def steps_overdue_filter(steps: QuerySet[Step], overdue: bool, now: datetime | None = None) -> QuerySet[Step]:
    now = now or timezone.now()
    return steps.filter(late_condition(now)) if overdue else steps.exclude(late_condition(now))


def measurements_for_patient(*, patient_id: int) -> QuerySet[Measurement]:
    return Measurement.objects.filter(patient_id=patient_id).order_by("measured_on", "id")


def patient_facts(*, patient_id: int, on: date) -> PatientFacts:
    """What a computed record field may read about the patient on the day `on`: the latest height and
    weight measured on or before it (a later one did not dose that day), the age on it, the sex, the indication."""
    patient = Patient.objects.only("date_of_birth", "sex", "indication").get(pk=patient_id)
    measurement = Measurement.objects.filter(patient_id=patient_id, measured_on__lte=on).order_by("-measured_on", "-id").first()
    return PatientFacts(
        height_cm=measurement.height_cm if measurement else None,
        weight_kg=measurement.weight_kg if measurement else None,
        measured_on=measurement.measured_on if measurement else None,
        measurement_age_days=(on - measurement.measured_on).days if measurement else None,
        age_years=age_in_years(patient.date_of_birth, on) if patient.date_of_birth <= on else None,
        sex=patient.sex,
        indication=patient.indication,
    )


def record_facts(*, journey_id: int, patient_id: int, specs, on: date) -> records.RecordFacts | None:
    """The facts the computed fields of `specs` read on the day `on`: the patient's, and the records in force
    of the journey's done steps they name ("step.renal-dose-review.dose_percent"). None when nothing is computed."""
    if not records.needs_patient_facts(specs):
        return None
    done_steps = {}
    if codes := records.step_references(specs):
        for code, fields, record in Step.objects.filter(
            journey_id=journey_id, template__code__in=codes, status=StepStatus.DONE
        ).values_list("template__code", "template__record_fields", "record"):
            done_steps[code] = records.in_force(fields, record)
    facts = patient_facts(patient_id=patient_id, on=on)
    return records.RecordFacts(
        **{name: getattr(facts, name) for name in PatientFacts.__dataclass_fields__}, done_steps=done_steps
    )


def latest_measurement(*, patient_id: int) -> Measurement | None:
    """The height and weight a dose is calculated from today: the most recent."""
    return Measurement.objects.filter(patient_id=patient_id).order_by("-measured_on", "-id").first()


def _next_and_overdue_steps(journey: Journey, now: datetime) -> tuple[Step | None, list[Step]]:
    """The journey's next pending step and its overdue ones, in one query that reads only those rows."""
    if not journey.is_open:
        return None, []
    pending = Step.objects.filter(journey_id=journey.pk, status=StepStatus.PENDING)
    ordering = ("due_on", "template__position", "id")
    wanted = Q(pk=Subquery(pending.order_by(*ordering).values("pk")[:1])) | late_condition(now)
    rows = list(pending.filter(wanted).select_related("template", "stage").order_by(*ordering))
    if not rows:
        return None, []
    for row in rows:
        row.journey = journey
    # every row is pending, so the earliest of them is the earliest of all: the next step
    return rows[0], [row for row in rows if row.is_overdue(now)]


# --- protocols --------------------------------------------------------------------------------------


def protocol_version(*, name: str, version: int | None = None) -> ProtocolTemplate:
    """A protocol by name, at `version` or else its latest; ProtocolTemplate.DoesNotExist when there is none."""
    versions = ProtocolTemplate.objects.filter(name=name)
    if version is not None:
        return versions.get(version=version)
    latest = versions.order_by("-version").first()
    if latest is None:
        raise ProtocolTemplate.DoesNotExist(f"No protocol is named {name!r}.")
    return latest


def protocol_document(protocol: ProtocolTemplate) -> dict:
    """The version's content in the shape of a protocol file (journeys.protocol_files): what `dump_protocol`
    writes and what its content hash is computed from. Every schema field is read from its column."""
    document = {
        field: getattr(protocol, field) for field in protocol_files.stored_fields(protocol_files.ProtocolFile) if field != "steps"
    }
    step_fields = protocol_files.stored_fields(protocol_files.StepFile)
    steps = [{field: getattr(template, field) for field in step_fields} for template in protocol.step_templates.all()]
    document["steps"] = sorted(steps, key=protocol_files.step_order)
    return document


def protocol_versions_with_same_content(protocol: ProtocolTemplate) -> list[int]:
    """The other versions of this protocol whose content hash equals its own (a file loaded twice)."""
    if not protocol.content_hash:
        return []
    return list(
        ProtocolTemplate.objects.filter(name=protocol.name, content_hash=protocol.content_hash)
        .exclude(pk=protocol.pk)
        .order_by("version")
        .values_list("version", flat=True)
    )


def monitoring_grades(*, journey_id: int, besides_step_id: int | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(CRS grades, ICANS grades) of the journey's recorded monitoring days, the physician's grade where it
    differs from the computed one; for the physician's review of the highest so far."""
    crs, icans = [], []
    rows = (
        Step.objects.filter(journey_id=journey_id, status=StepStatus.DONE, record__has_key="crs_grade")
        .exclude(pk=besides_step_id)
        .values_list("record", flat=True)
    )
    for record in rows:
        for grades, name in ((crs, "crs_grade"), (icans, "icans_grade")):
            value = record.get(f"{name}_physician") or record.get(name)
            if value not in (None, "") and str(value).isdigit():
                grades.append(int(value))
    return tuple(crs), tuple(icans)


def dose_times(*, journey_id: int, field: str, besides_step_id: int | None = None) -> list:
    """When the journey's recorded steps gave a dose in record field `field` (tocilizumab), for its schedule."""
    rows = (
        Step.objects.filter(journey_id=journey_id, status=StepStatus.DONE, record__has_key=field)
        .exclude(pk=besides_step_id)
        .values_list("performed_at", "record")
    )
    return [performed_at for performed_at, record in rows if record.get(field)]


def discharge_summary(*, journey: Journey) -> dict | None:
    """What the patient takes home after the infusion: the discharge date and length of stay (once recorded), the
    restrictions with their last day computed from Day 0 and the protocol, whom to call. None before the infusion."""
    if journey.day0_actual is None:
        return None
    protocol = journey.protocol
    discharge = (
        Step.objects.filter(journey_id=journey.pk, template__milestone=Milestone.DISCHARGE, status=StepStatus.DONE)
        .values_list("record", flat=True)
        .first()
    )
    discharged_on = date.fromisoformat(discharge["discharge_date"]) if discharge and discharge.get("discharge_date") else None
    return {
        "day0": journey.day0_actual,
        "discharged_on": discharged_on,
        # A discharge dated before the infusion (recorded before the guard existed) has no length of stay.
        "length_of_stay_days": length_of_stay_days(journey.day0_actual, discharged_on)
        if discharged_on and discharged_on >= journey.day0_actual
        else None,
        "restrictions": discharge_restrictions(
            journey.day0_actual,
            proximity_days=protocol.proximity_restriction_days,
            proximity_hours=protocol.proximity_restriction_hours,
            driving_days=protocol.driving_restriction_days,
        ),
        "whom_to_call": protocol.discharge_whom_to_call,
    }
