"""Where one patient stands now: the answer outside systems poll most (`GET /api/v1/patients/{id}/status/`).

Two readings that must agree (tests/api/test_status_sql.py holds them together on the same data):
- `_patient_status_orm`: two ORM queries; what SQLite (`make run`) uses.
- `_patient_status_sql`: on PostgreSQL, one hand-written statement, one round trip. Its plan costs more than
  running it, so it is a server-side prepared statement (SQL `PREPARE` / `EXECUTE` through Django's own
  cursor), prepared once per database connection and per caller scope.

Only public APIs: `connection.cursor()`, `Model.from_db()`, `Model._meta`, the `connection_created` signal.
"""

import functools
import hashlib
import re
import weakref
from datetime import date, datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.db.backends.signals import connection_created
from django.db.models import Case, OuterRef, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, Greatest
from django.dispatch import receiver
from django.utils import timezone

from journeys.models import (
    OPEN_JOURNEY_STATUSES,
    Journey,
    JourneyEvent,
    JourneyStatus,
    ProtocolTemplate,
    Stage,
    StageNumber,
    StageStatus,
    Step,
    StepStatus,
    StepTemplate,
)
from journeys.selectors import _next_and_overdue_steps, patients_with_last_change
from patients.models import Patient


def patient_status_by_id(
    *, patients: QuerySet[Patient], public_id, now: datetime | None = None, today: date | None = None
) -> dict | None:
    """`selectors.patient_status` for the patient with this public id among `patients`, or None if not
    among them: {patient, journey, next_step, overdue_steps, day_number, day0_at_risk, last_changed_at}."""
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
    last_event = JourneyEvent.objects.filter(journey__patient_id=OuterRef("patient_id")).order_by("-at").values("at")[:1]
    journey = (
        journeys.select_related("patient")
        .with_release_needed_by()
        .annotate(
            current_stage_status=Subquery(
                Stage.objects.filter(journey=OuterRef("pk"), number=OuterRef("current_stage")).values("status")[:1]
            ),
            patient_last_changed_at=Greatest("patient__updated_at", Coalesce(Subquery(last_event), "patient__updated_at")),
        )
        .order_by(Case(When(status__in=OPEN_JOURNEY_STATUSES, then=0), default=1), "-started_at")
        .first()
    )
    if journey is None:
        patient = patients_with_last_change(patients).filter(public_id=public_id).first()
        return (
            None
            if patient is None
            else {
                "patient": patient,
                "journey": None,
                "next_step": None,
                "overdue_steps": [],
                "day_number": None,
                "day0_at_risk": False,
                "last_changed_at": patient.last_changed_at,
            }
        )
    next_step, overdue = _next_and_overdue_steps(journey, now)
    return {
        "patient": journey.patient,
        "journey": journey,
        "next_step": next_step,
        "overdue_steps": overdue,
        "day_number": journey.day_number(today),
        "day0_at_risk": journey.is_day0_at_risk(today),
        "last_changed_at": journey.patient_last_changed_at,
    }


# The columns each object of the status is built from, in the order the statement selects them. Only
# these are loaded: touching any other field would cost a query, which the query-count test would catch.
_STATUS_PATIENT_FIELDS = ("id", "public_id")
_STATUS_JOURNEY_FIELDS = (
    "id",
    "public_id",
    "patient_id",
    "status",
    "current_stage",
    "leukapheresis_date",
    "day0_planned",
    "day0_actual",
    "product_released_at",
    "product_expected_release_on",
    "product_out_of_specification",
)
_STATUS_STEP_FIELDS = (
    "id",
    "public_id",
    "journey_id",
    "stage_id",
    "template_id",
    "status",
    "due_on",
    "window_closes_on",
    "overdue_after",
    "overdue_since",
    "version",
)
_STATUS_TEMPLATE_FIELDS = ("id", "code", "name", "responsible_role", "position")
_STATUS_STAGE_FIELDS = ("id", "number", "status")


@functools.cache
def _status_statement() -> str:
    """Patient, last change, the open (else latest) journey with its current stage's status and the day its
    product is needed by (`release_needed_by`), and one row per pending step that is next or overdue
    (`late_condition`), in the order `_next_and_overdue_steps` gives them.
    Parameters, in order: now, the patient's public id, then those of the caller's scope (`{scope}`)."""
    patient, journey, event = Patient._meta.db_table, Journey._meta.db_table, JourneyEvent._meta.db_table
    stage, step, template = Stage._meta.db_table, Step._meta.db_table, StepTemplate._meta.db_table
    protocol = ProtocolTemplate._meta.db_table
    # Our own status constants, written into the text so the statement needs no parameters for them.
    open_statuses = ", ".join(f"'{status.value}'" for status in OPEN_JOURNEY_STATUSES)
    pending, active = f"'{StepStatus.PENDING.value}'", f"'{JourneyStatus.ACTIVE.value}'"
    under_way, lymphodepletion = f"'{StageStatus.IN_PROGRESS.value}'", int(StageNumber.LYMPHODEPLETION)
    step_columns = ", ".join(f"s.{Step._meta.get_field(name).column}" for name in _STATUS_STEP_FIELDS)
    row_step_columns = ", ".join(f"st.{Step._meta.get_field(name).column}" for name in _STATUS_STEP_FIELDS)
    # OFFSET 0 keeps each LATERAL subquery a per-row lookup by the ids on its left (index scans), so the
    # planner cannot flatten it into a hash join over every pending step of the clinic.
    return f"""
SELECT p.id, p.public_id, GREATEST(p.updated_at, COALESCE(last_event.at, p.updated_at)),
       j.id, j.public_id, j.patient_id, j.status, j.current_stage, j.leukapheresis_date, j.day0_planned,
       j.day0_actual, j.product_released_at, j.product_expected_release_on, j.product_out_of_specification,
       j.current_stage_status, j.release_needed_by,
       {row_step_columns}, st.template_id, st.code, st.name, st.responsible_role, st.position,
       st.stage_id, st.stage_number, st.stage_status
FROM {patient} p
LEFT JOIN LATERAL (
    SELECT max(e.at) AS at FROM {event} e
    WHERE e.journey_id IN (SELECT ej.id FROM {journey} ej WHERE ej.patient_id = p.id)
) last_event ON TRUE
LEFT JOIN LATERAL (
    SELECT j.id, j.public_id, j.patient_id, j.status, j.current_stage, j.leukapheresis_date, j.day0_planned,
           j.day0_actual, j.product_released_at, j.product_expected_release_on, j.product_out_of_specification,
           (SELECT g.status FROM {stage} g WHERE g.journey_id = j.id AND g.number = j.current_stage
            LIMIT 1) AS current_stage_status,
           (SELECT min(ls.due_on) FROM {step} ls JOIN {stage} lg ON lg.id = ls.stage_id
            WHERE ls.journey_id = j.id AND lg.number = {lymphodepletion})
           - (SELECT pr.release_lead_days FROM {protocol} pr WHERE pr.id = j.protocol_id) AS release_needed_by
    FROM {journey} j WHERE j.patient_id = p.id
    ORDER BY CASE WHEN j.status IN ({open_statuses}) THEN 0 ELSE 1 END, j.started_at DESC LIMIT 1
) j ON TRUE
LEFT JOIN LATERAL (
    SELECT n.id FROM {step} n JOIN {template} nt ON nt.id = n.template_id
    WHERE n.journey_id = j.id AND n.status = {pending} AND j.status IN ({open_statuses})
    ORDER BY n.due_on, nt.position, n.id LIMIT 1
) next_step ON TRUE
LEFT JOIN LATERAL (
    SELECT {step_columns}, t.code, t.name, t.responsible_role, t.position, g.number AS stage_number,
           g.status AS stage_status
    FROM {step} s JOIN {template} t ON t.id = s.template_id JOIN {stage} g ON g.id = s.stage_id
    WHERE s.journey_id = j.id AND s.status = {pending}
      AND (s.id = next_step.id OR (j.status = {active} AND g.status = {under_way} AND s.overdue_after <= %s))
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


def _loaded(model, names: tuple[str, ...], values):
    """A model instance holding only these fields, built as the ORM builds one from a row (`from_db`): any
    other field would be read from the database on first use, and the query-count test would see it."""
    ordered, positions = _model_order(model, names)
    return model.from_db(DEFAULT_DB_ALIAS, ordered, [values[i] for i in positions])


# The prepared statements of each database connection (Django's per-thread wrapper), by name. A new connection (a restart, an idle
# timeout, CONN_MAX_AGE) starts with none; PREPARE is not undone by a rollback, so a name once prepared on
# a connection stays valid for its life.
_prepared: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()


@receiver(connection_created)
def _forget_prepared(sender, connection, **kwargs):
    _prepared.pop(connection, None)


def _numbered(statement: str) -> str:
    """Django's `%s` placeholders as PostgreSQL's `$1, $2, …` (what PREPARE takes)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"%s", lambda _: f"${next(counter)}", statement).replace("%%", "%")


def _execute(cursor, statement: str, params: list) -> None:
    """Run `statement` prepared on this connection (planned once), or plainly when
    STATUS_PREPARED_STATEMENTS is off (a transaction-mode pooler such as PgBouncer in front of PostgreSQL
    hands each transaction another server connection, which would not know the name)."""
    if not settings.STATUS_PREPARED_STATEMENTS:
        cursor.execute(statement, params)
        return
    name = "carclinic_status_" + hashlib.sha1(statement.encode()).hexdigest()[:16]
    prepared = _prepared.setdefault(connections[DEFAULT_DB_ALIAS], set())  # this thread's connection
    if name not in prepared:
        cursor.execute(f"PREPARE {name} AS {_numbered(statement)}")
        prepared.add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)


def _read_rows(statement: str, params: list) -> list[tuple]:
    """Run a read-only statement; on a connection the server has dropped (a restart, an idle timeout),
    reconnect and run it once more. This stands in for Django's per-request health check (a SELECT 1
    round trip before the first query), which would cost this one-query request a second round trip."""
    for attempt in (1, 2):
        try:
            with connection.cursor() as cursor:
                _execute(cursor, statement, params)
                return cursor.fetchall()
        except (OperationalError, InterfaceError):
            if attempt == 2 or connection.in_atomic_block:
                raise
            connection.close()
    raise AssertionError("unreachable")


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
        return {
            "patient": patient,
            "journey": None,
            "next_step": None,
            "overdue_steps": [],
            "day_number": None,
            "day0_at_risk": False,
            "last_changed_at": last_changed_at,
        }
    journey_end = 3 + len(_STATUS_JOURNEY_FIELDS)
    journey = _loaded(Journey, _STATUS_JOURNEY_FIELDS, first[3:journey_end])
    journey.current_stage_status, journey.release_needed_by = first[journey_end], first[journey_end + 1]
    steps = []
    step_start = journey_end + 2
    step_end = step_start + len(_STATUS_STEP_FIELDS)
    for row in rows:
        if row[step_start] is None:
            break  # the journey has no pending step that is next or overdue
        step = _loaded(Step, _STATUS_STEP_FIELDS, row[step_start:step_end])
        template_id, code, name, role, position, stage_id, stage_number, stage_status = row[step_end:]
        step.template = _loaded(StepTemplate, _STATUS_TEMPLATE_FIELDS, (template_id, code, name, role, position))
        step.stage = _loaded(Stage, _STATUS_STAGE_FIELDS, (stage_id, stage_number, stage_status))
        step.journey = journey
        steps.append(step)
    # Every row is pending and the first is the earliest: the next step (as in `_next_and_overdue_steps`).
    return {
        "patient": patient,
        "journey": journey,
        "next_step": steps[0] if steps else None,
        "overdue_steps": [step for step in steps if step.is_overdue(now)],
        "day_number": journey.day_number(today),
        "day0_at_risk": journey.is_day0_at_risk(today),
        "last_changed_at": last_changed_at,
    }
