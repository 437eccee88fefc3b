"""Every read the pages, the API and the workers share. Each returns a queryset (or a small dict) with its
joins already applied, so a list costs the same number of queries for 10 patients or 10,000."""

import functools
from datetime import date, datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection
from django.db.models import Case, Count, Exists, F, Func, OuterRef, Prefetch, Q, QuerySet, Subquery, When, signals
from django.db.models.base import ModelState
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from journeys.models import (
    OPEN_JOURNEY_STATUSES,
    Journey,
    JourneyEvent,
    JourneyStatus,
    Stage,
    StageNumber,
    Step,
    StepStatus,
    StepTemplate,
)
from patients.models import Measurement, Patient


def steps_with_context() -> QuerySet[Step]:
    return Step.objects.select_related("template", "stage", "journey", "journey__patient", "completed_by")


def overdue_steps(*, now: datetime | None = None) -> QuerySet[Step]:
    """Pending steps of active journeys whose window and grace have passed, the latest first by lateness."""
    now = now or timezone.now()
    return (
        steps_with_context()
        .filter(status=StepStatus.PENDING, overdue_after__lte=now, journey__status=JourneyStatus.ACTIVE)
        .order_by("overdue_after", "id")
    )


def steps_due_between(*, first_day: date, last_day: date) -> QuerySet[Step]:
    """Pending steps of active journeys due from `first_day` to `last_day`, inclusive."""
    return (
        steps_with_context()
        .filter(status=StepStatus.PENDING, due_on__gte=first_day, due_on__lte=last_day,
                journey__status=JourneyStatus.ACTIVE)
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
            overdue=Count("id", filter=Q(status=StepStatus.PENDING, overdue_after__lte=now)),
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


def _dashboard_filters(journey: str, *, indication: str = "", stage: int | None = None,
                       coordinator_id: int | None = None) -> Q:
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
    """Overdue steps of active journeys, the latest first (earliest `overdue_after`)."""
    now = now or timezone.now()
    steps = _dashboard_steps().filter(status=StepStatus.PENDING, overdue_after__lte=now,
                                      journey__status=JourneyStatus.ACTIVE)
    return filter_steps(steps, **filters).order_by("overdue_after", "id")


def dashboard_due(*, first_day: date, last_day: date, now: datetime | None = None, **filters) -> QuerySet[Step]:
    """Pending steps of active journeys due from `first_day` to `last_day` that are not overdue yet."""
    now = now or timezone.now()
    steps = _dashboard_steps().filter(status=StepStatus.PENDING, due_on__gte=first_day, due_on__lte=last_day,
                                      overdue_after__gt=now, journey__status=JourneyStatus.ACTIVE)
    return filter_steps(steps, **filters).order_by("due_on", "id")


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
    journeys = filter_journeys(Journey.objects.filter(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD]),
                               **{k: v for k, v in filters.items() if k != "stage"})
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


def manufacturing_queue(**filters) -> QuerySet[Journey]:
    """Journeys whose cells are at the plant: waiting for a slot, in production, or waiting for QC release."""
    return journeys_in_stage(stage=StageNumber.RE_ENGINEERING, **{k: v for k, v in filters.items() if k != "stage"})


def patient_search(*, text: str, limit: int = DASHBOARD_LIST_LIMIT):
    """Patients whose MRN starts with, or whose name contains, `text`; with the open journey's stage if any."""
    from django.db.models import OuterRef, Subquery

    from patients.models import Patient, name_search_key

    text = (text or "").strip()
    if not text:
        return Patient.objects.none()
    query = Q(mrn__istartswith=text)
    compact = text.upper().replace(" ", "").replace("-", "")
    if len(compact) >= 10 and compact.isalnum():
        # A chain-of-identity id (typed or scanned, with or without its spaces): the patient whose cells carry it.
        # By relation name, so that journeys does not import manufacturing.
        query |= Q(pk__in=Patient.objects.filter(chains_of_identity__identifier=compact).values("pk"))
    name = Q()
    for word in name_search_key(text).split():
        name &= Q(name_key__contains=word)
    open_journeys = Journey.objects.filter(patient=OuterRef("pk"), status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD])
    return (
        Patient.objects.filter(query | name)
        .select_related("coordinator")
        .annotate(open_stage=Subquery(open_journeys.values("current_stage")[:1]),
                  open_status=Subquery(open_journeys.values("status")[:1]))
        .order_by("family_name", "given_name", "id")[:limit]
    )


def patient_journey(*, patient_id: int) -> Journey | None:
    """The journey the patient page shows: the open one, else the most recently started."""
    from django.db.models import Case, IntegerField, Value, When

    return (
        Journey.objects.select_related("protocol", "started_by")
        .filter(patient_id=patient_id)
        .annotate(is_open_rank=Case(When(status__in=[JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD], then=Value(0)),
                                    default=Value(1), output_field=IntegerField()))
        .order_by("is_open_rank", "-started_at")
        .first()
    )


def patient_timeline(*, journey: Journey) -> dict:
    """Everything the patient page shows about one journey: stages, steps by stage, and the audit history."""
    stages = list(journey.stages.order_by("number"))
    steps = list(journey_steps(journey_id=journey.id))
    by_stage: dict[int, list[Step]] = {stage.number: [] for stage in stages}
    for step in steps:
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
    return Subquery(
        JourneyEvent.objects.filter(journey__patient=OuterRef("pk")).order_by("-at").values("at")[:1]
    )


def patients_with_last_change(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    # The latest of a change to the person and a transition of their journey.
    return patients.annotate(last_changed_at=Greatest("updated_at", Coalesce(patient_last_event_at(), "updated_at")))


def patients_for_api(*, patients: QuerySet[Patient], now: datetime | None = None) -> QuerySet[Patient]:
    """Patients with their open journey, overdue count and last change time: two queries, however many."""
    now = now or timezone.now()
    return (
        patients_with_last_change(patients.select_related("coordinator"))
        .annotate(
            overdue_count=_count(
                Step.objects.filter(journey__patient=OuterRef("pk"), status=StepStatus.PENDING,
                                    overdue_after__lte=now, journey__status=JourneyStatus.ACTIVE)
            ),
        )
        .prefetch_related(
            Prefetch("journeys", queryset=Journey.objects.filter(status__in=OPEN_JOURNEY_STATUSES)
                     .select_related("protocol"), to_attr="open_journeys")
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
    status = {"patient": patient, "journey": journey, "next_step": None, "overdue_steps": [],
              "day_number": None, "last_changed_at": patient.last_changed_at}
    if journey is None:
        return status
    status["day_number"] = journey.day_number(today)
    status["next_step"], status["overdue_steps"] = _next_and_overdue_steps(journey, now)
    return status


def journey_with_stages(*, patient_id: int) -> Journey | None:
    """The patient's open (else latest) journey with its five stages and every step: three queries."""
    return (
        Journey.objects.filter(patient_id=patient_id)
        .select_related("protocol", "patient")
        .prefetch_related(
            Prefetch("stages", queryset=Stage.objects.order_by("number")),
            Prefetch("steps", queryset=Step.objects.select_related("template", "stage", "completed_by")
                     .order_by("due_on", "template__position", "id")),
        )
        .order_by(Case(When(status__in=OPEN_JOURNEY_STATUSES, then=0), default=1), "-started_at")
        .first()
    )


def steps_for_api(*, patients: QuerySet[Patient]) -> QuerySet[Step]:
    """Steps of the given patients' journeys, with everything a list row shows joined in."""
    return (
        Step.objects.filter(journey__patient__in=patients)
        .select_related("template", "stage", "journey", "journey__patient", "completed_by")
    )


def steps_overdue_filter(steps: QuerySet[Step], overdue: bool, now: datetime | None = None) -> QuerySet[Step]:
    now = now or timezone.now()
    condition = Q(status=StepStatus.PENDING, overdue_after__lte=now, journey__status=JourneyStatus.ACTIVE)
    return steps.filter(condition) if overdue else steps.exclude(condition)


def measurements_for_patient(*, patient_id: int) -> QuerySet[Measurement]:
    return Measurement.objects.filter(patient_id=patient_id).order_by("measured_on", "id")


def latest_measurement(*, patient_id: int) -> Measurement | None:
    """The height and weight a dose is calculated from today: the most recent."""
    return Measurement.objects.filter(patient_id=patient_id).order_by("-measured_on", "-id").first()


def _next_and_overdue_steps(journey: Journey, now: datetime) -> tuple[Step | None, list[Step]]:
    """The journey's next pending step and its overdue ones, in one query that reads only those rows."""
    if not journey.is_open:
        return None, []
    pending = Step.objects.filter(journey_id=journey.pk, status=StepStatus.PENDING)
    ordering = ("due_on", "template__position", "id")
    wanted = Q(pk=Subquery(pending.order_by(*ordering).values("pk")[:1]))
    if journey.status == JourneyStatus.ACTIVE:
        wanted |= Q(overdue_after__lte=now)
    rows = list(pending.filter(wanted).select_related("template", "stage").order_by(*ordering))
    if not rows:
        return None, []
    # every row is pending, so the earliest of them is the earliest of all: the next step
    overdue = [row for row in rows if journey.status == JourneyStatus.ACTIVE and row.overdue_after <= now]
    return rows[0], overdue


def patient_status_by_id(*, patients: QuerySet[Patient], public_id, now: datetime | None = None,
                         today: date | None = None) -> dict | None:
    """`patient_status` for the patient with this public id among `patients`, or None if not among them.

    The call outside systems poll most. On PostgreSQL it is one hand-written statement (one round trip,
    nothing for Django to compile); elsewhere (SQLite under `make run`) two ORM queries. A test runs both
    on the same data and holds them to the same answer."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    read = _patient_status_sql if connection.vendor == "postgresql" else _patient_status_orm
    return read(patients=patients, public_id=public_id, now=now, today=today)


def _patient_status_orm(*, patients: QuerySet[Patient], public_id, now: datetime, today: date) -> dict | None:
    """Two small queries: the journey (with its patient, current stage status and the patient's last
    change), then the next and the overdue steps."""
    journeys = Journey.objects.filter(patient__public_id=public_id)
    if patients.query.has_filters():
        journeys = journeys.filter(patient__in=patients)
    last_event = (JourneyEvent.objects.filter(journey__patient_id=OuterRef("patient_id"))
                  .order_by("-at").values("at")[:1])
    journey = (
        journeys.select_related("patient")
        .annotate(
            current_stage_status=Subquery(Stage.objects.filter(journey=OuterRef("pk"), number=OuterRef("current_stage"))
                                          .values("status")[:1]),
            patient_last_changed_at=Greatest("patient__updated_at", Coalesce(Subquery(last_event), "patient__updated_at")),
        )
        .order_by(Case(When(status__in=OPEN_JOURNEY_STATUSES, then=0), default=1), "-started_at")
        .first()
    )
    if journey is None:
        patient = patients_with_last_change(patients).filter(public_id=public_id).first()
        return None if patient is None else {"patient": patient, "journey": None, "next_step": None,
                                             "overdue_steps": [], "day_number": None,
                                             "last_changed_at": patient.last_changed_at}
    next_step, overdue = _next_and_overdue_steps(journey, now)
    return {"patient": journey.patient, "journey": journey, "next_step": next_step, "overdue_steps": overdue,
            "day_number": journey.day_number(today), "last_changed_at": journey.patient_last_changed_at}


# The columns each object of the status is built from, in the order the statement selects them. Only
# these are loaded: touching any other field would cost a query, which the query-count test would catch.
_STATUS_PATIENT_FIELDS = ("id", "public_id")
_STATUS_JOURNEY_FIELDS = ("id", "public_id", "patient_id", "status", "current_stage", "leukapheresis_date",
                          "day0_planned", "day0_actual")
_STATUS_STEP_FIELDS = ("id", "public_id", "journey_id", "stage_id", "template_id", "status", "due_on",
                       "window_closes_on", "overdue_after", "overdue_since", "version")
_STATUS_TEMPLATE_FIELDS = ("id", "code", "name", "responsible_role", "position")
_STATUS_STAGE_FIELDS = ("id", "number")


@functools.cache
def _status_statement() -> str:
    """Patient, last change, the open (else latest) journey with its current stage's status, and one row
    per pending step that is next or overdue, in the order `_next_and_overdue_steps` gives them.
    Parameters, in order: now, the patient's public id, then those of the caller's scope (`{scope}`)."""
    patient, journey, event = Patient._meta.db_table, Journey._meta.db_table, JourneyEvent._meta.db_table
    stage, step, template = Stage._meta.db_table, Step._meta.db_table, StepTemplate._meta.db_table
    # Our own status constants, written into the text so the statement needs no parameters for them.
    open_statuses = ", ".join(f"'{status.value}'" for status in OPEN_JOURNEY_STATUSES)
    pending, active = f"'{StepStatus.PENDING.value}'", f"'{JourneyStatus.ACTIVE.value}'"
    step_columns = ", ".join(f"s.{Step._meta.get_field(name).column}" for name in _STATUS_STEP_FIELDS)
    row_step_columns = ", ".join(f"st.{Step._meta.get_field(name).column}" for name in _STATUS_STEP_FIELDS)
    # OFFSET 0 keeps each LATERAL subquery a per-row lookup by the ids on its left (index scans), so the
    # planner cannot flatten it into a hash join over every pending step of the clinic.
    return f"""
SELECT p.id, p.public_id, GREATEST(p.updated_at, COALESCE(last_event.at, p.updated_at)),
       j.id, j.public_id, j.patient_id, j.status, j.current_stage, j.leukapheresis_date, j.day0_planned,
       j.day0_actual, j.current_stage_status,
       {row_step_columns}, st.template_id, st.code, st.name, st.responsible_role, st.position,
       st.stage_id, st.stage_number
FROM {patient} p
LEFT JOIN LATERAL (
    SELECT max(e.at) AS at FROM {event} e
    WHERE e.journey_id IN (SELECT ej.id FROM {journey} ej WHERE ej.patient_id = p.id)
) last_event ON TRUE
LEFT JOIN LATERAL (
    SELECT j.id, j.public_id, j.patient_id, j.status, j.current_stage, j.leukapheresis_date, j.day0_planned,
           j.day0_actual,
           (SELECT g.status FROM {stage} g WHERE g.journey_id = j.id AND g.number = j.current_stage
            LIMIT 1) AS current_stage_status
    FROM {journey} j WHERE j.patient_id = p.id
    ORDER BY CASE WHEN j.status IN ({open_statuses}) THEN 0 ELSE 1 END, j.started_at DESC LIMIT 1
) j ON TRUE
LEFT JOIN LATERAL (
    SELECT n.id FROM {step} n JOIN {template} nt ON nt.id = n.template_id
    WHERE n.journey_id = j.id AND n.status = {pending} AND j.status IN ({open_statuses})
    ORDER BY n.due_on, nt.position, n.id LIMIT 1
) next_step ON TRUE
LEFT JOIN LATERAL (
    SELECT {step_columns}, t.code, t.name, t.responsible_role, t.position, g.number AS stage_number
    FROM {step} s JOIN {template} t ON t.id = s.template_id JOIN {stage} g ON g.id = s.stage_id
    WHERE s.journey_id = j.id AND s.status = {pending}
      AND (s.id = next_step.id OR (j.status = {active} AND s.overdue_after <= %s))
    OFFSET 0
) st ON TRUE
WHERE p.public_id = %s {{scope}}
ORDER BY st.due_on, st.position, st.id
"""


@functools.cache
def _model_order(model, names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """`names` in the model's field order (as `Model.from_db` wants them), and where each one is in `names`."""
    ordered = tuple(field.attname for field in model._meta.concrete_fields if field.attname in names)
    assert len(ordered) == len(names), f"not all of {names} are columns of {model.__name__}"
    return ordered, tuple(names.index(name) for name in ordered)


def _loaded(model, names: tuple[str, ...], values) -> object:
    """A model instance holding only these fields, as the ORM builds one from a row; any other field
    would be read from the database on first use (and the query-count test would see it)."""
    ordered, positions = _model_order(model, names)
    if signals.pre_init.receivers or signals.post_init.receivers:
        return model.from_db(DEFAULT_DB_ALIAS, ordered, [values[i] for i in positions])
    # What `from_db` ends with, without `Model.__init__` walking every field to skip the deferred ones
    # (a fifth of the status call's Python time): a deferred field is one missing from `__dict__`. Only
    # while no pre_init/post_init receiver would miss the call.
    instance = model.__new__(model)
    instance.__dict__.update(zip(ordered, [values[i] for i in positions]))
    state = instance._state = ModelState()
    state.adding, state.db = False, DEFAULT_DB_ALIAS
    return instance


def _prepared_cursor():
    """A cursor that runs its statement as a server-side prepared statement, planned once per database
    connection (the plan of this statement costs more than running it). Django turns psycopg's automatic
    preparation off for the sake of transaction-mode poolers; with one in front of PostgreSQL, set
    STATUS_PREPARED_STATEMENTS = False. Wrapped as Django wraps its own cursors, so the statement is
    logged and counted like any other."""
    if not getattr(settings, "STATUS_PREPARED_STATEMENTS", True):
        return connection.cursor()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # psycopg prepares nothing while the threshold is None, even when asked. A threshold no statement
        # reaches keeps automatic preparation off (Django's cursors bind on the client and never prepare),
        # so only statements run with prepare=True, like this one, are prepared.
        raw.prepare_threshold = 2**31 - 1
    cursor = _preparing_cursor_class()(raw)
    cursor.log_query = connection.queries_logged
    return connection._prepare_cursor(cursor)


def _read_rows(statement: str, params: list) -> list[tuple]:
    """Run a read-only statement; on a connection the server has dropped (a restart, an idle timeout),
    reconnect and run it once more. This stands in for Django's per-request health check (a SELECT 1
    round trip before the first query), which would cost this one-query request a second round trip."""
    for attempt in (1, 2):
        try:
            with _prepared_cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall()
        except (OperationalError, InterfaceError):
            if attempt == 2 or connection.in_atomic_block:
                raise
            connection.close()
    raise AssertionError("unreachable")


@functools.cache
def _preparing_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor  # PostgreSQL only

    class PreparingCursor(ServerBindingCursor):
        log_query = False

        def execute(self, query, params=None, **options):
            result = super().execute(query, params, prepare=True)
            if self.log_query and self._query is None:
                # psycopg keeps the statement's text only when it did not run it prepared; Django's query
                # log (DEBUG, the query-count tests) reads it from there.
                self._query = self._convert_query(query, params)
            return result

    return PreparingCursor


def _patient_status_sql(*, patients: QuerySet[Patient], public_id, now: datetime, today: date) -> dict | None:
    """One round trip on PostgreSQL; the same answer as `_patient_status_orm`."""
    params = [now, public_id]
    scope = ""
    if patients.query.has_filters():
        # The caller's scope exactly as its queryset says; compiled only for clients that have one.
        scope_sql, scope_params = patients.order_by().values("pk").query.sql_with_params()
        scope = f"AND p.id IN ({scope_sql})"
        params.extend(scope_params)
    rows = _read_rows(_status_statement().replace("{scope}", scope), params)
    if not rows:
        return None
    first = rows[0]
    patient = _loaded(Patient, _STATUS_PATIENT_FIELDS, first[0:2])
    last_changed_at = first[2]
    if first[3] is None:
        return {"patient": patient, "journey": None, "next_step": None, "overdue_steps": [], "day_number": None,
                "last_changed_at": last_changed_at}
    journey = _loaded(Journey, _STATUS_JOURNEY_FIELDS, first[3:11])
    journey.current_stage_status = first[11]
    steps = []
    step_end = 12 + len(_STATUS_STEP_FIELDS)
    for row in rows:
        if row[12] is None:
            break  # the journey has no pending step that is next or overdue
        step = _loaded(Step, _STATUS_STEP_FIELDS, row[12:step_end])
        template_id, code, name, role, position, stage_id, stage_number = row[step_end:]
        step.template = _loaded(StepTemplate, _STATUS_TEMPLATE_FIELDS, (template_id, code, name, role, position))
        step.stage = _loaded(Stage, _STATUS_STAGE_FIELDS, (stage_id, stage_number))
        steps.append(step)
    # Every row is pending and the first is the earliest: the next step (as in `_next_and_overdue_steps`).
    active = journey.status == JourneyStatus.ACTIVE
    return {"patient": patient, "journey": journey, "next_step": steps[0] if steps else None,
            "overdue_steps": [step for step in steps if active and step.overdue_after <= now],
            "day_number": journey.day_number(today), "last_changed_at": last_changed_at}
