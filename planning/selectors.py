"""Reads for the calendar, the feed, the record-status grid and the exports. Each page costs a fixed number
of queries whatever the number of patients: counts are grouped in the database, and lists are cut."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import BooleanField, Case, CharField, Count, F, Func, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone

from journeys.models import (
    OPEN_JOURNEY_STATUSES,
    Journey,
    Milestone,
    StageNumber,
    Step,
    StepStatus,
    StepTemplate,
    blocked_condition,
    late_condition,
)
from journeys.selectors import filter_journeys, filter_steps
from planning.models import CalendarKind

# How many entries a calendar day lists by name; the load count beside it always counts them all.
CALENDAR_ENTRIES_PER_DAY = 12
GRID_PATIENTS_PER_PAGE = 50
DISCHARGE_STEP_CODE = "discharge"


def calendar_kinds_by_template() -> dict[int, str]:
    """{step template id: CalendarKind} for every protocol version, derived from protocol data alone:

    - collection: the template whose milestone is `collection` (cells collected);
    - lymphodepletion starts: in stage 3, the first step (by position) a nurse gives — the first
      chemotherapy day, which takes a chair. The physician's dose review before it is not a chair;
      a stage 3 without a nurse's step falls back to its first step;
    - infusion: the template whose milestone is `infusion` (Day 0), a bed;
    - discharge: the template coded `discharge`;
    - follow-up visit: every step of stage 5 (visits, remission assessments, long-term follow-up).

    One query, over the templates only (a few dozen per protocol version), never over patients."""
    templates = StepTemplate.objects.order_by("protocol_id", "stage", "position", "id").values_list(
        "id", "protocol_id", "stage", "code", "milestone", "responsible_role"
    )
    kinds: dict[int, str] = {}
    first_of_stage3: dict[int, int] = {}
    first_nurse_of_stage3: dict[int, int] = {}
    for template_id, protocol_id, stage, code, milestone, role in templates:
        if milestone == Milestone.COLLECTION:
            kinds[template_id] = CalendarKind.COLLECTION
        elif milestone == Milestone.INFUSION:
            kinds[template_id] = CalendarKind.INFUSION
        elif code == DISCHARGE_STEP_CODE:
            kinds[template_id] = CalendarKind.DISCHARGE
        elif stage == StageNumber.IMMUNE_RE_EDUCATION:
            kinds[template_id] = CalendarKind.FOLLOW_UP
        elif stage == StageNumber.LYMPHODEPLETION:
            first_of_stage3.setdefault(protocol_id, template_id)
            if role == "nurse":
                first_nurse_of_stage3.setdefault(protocol_id, template_id)
    for protocol_id, template_id in first_of_stage3.items():
        kinds[first_nurse_of_stage3.get(protocol_id, template_id)] = CalendarKind.LYMPHODEPLETION
    return kinds


def _kind_expression(kinds: dict[int, str]) -> Case:
    by_kind: dict[str, list[int]] = defaultdict(list)
    for template_id, kind in kinds.items():
        by_kind[kind].append(template_id)
    return Case(
        *[When(template_id__in=ids, then=Value(kind)) for kind, ids in by_kind.items()],
        default=Value(""),
        output_field=CharField(),
    )


class _KeyAmong(Func):
    """`id = ANY(ARRAY(subquery))`: the subquery runs once, then its rows are fetched by their key. Written
    as `id IN (subquery)`, the planner cannot tell how few ids the window keeps and joins every step."""

    template = "%(expressions)s)"
    arg_joiner = " = ANY("
    output_field = BooleanField()


def _calendar_day_expression():
    """A done step stands on the day it was performed (in the clinic's time zone); a pending one on its due day."""
    return Case(
        When(
            status=StepStatus.DONE,
            performed_at__isnull=False,
            then=TruncDate("performed_at", tzinfo=timezone.get_current_timezone()),
        ),
        default=F("due_on"),
    )


def calendar_steps(*, first_day: date, last_day: date, kinds: dict[int, str] | None = None, **filters) -> QuerySet[Step]:
    """The steps the calendar shows from `first_day` to `last_day`: done ones where they were performed,
    pending ones of open journeys where they are due; skipped and not-applicable ones are not on the ward's
    calendar. Annotated with `day` and `kind`; filtered by the dashboard's filters."""
    kinds = calendar_kinds_by_template() if kinds is None else kinds
    start = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    end = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), datetime.min.time()))
    steps = Step.objects.filter(template_id__in=list(kinds)).filter(
        Q(status=StepStatus.PENDING, due_on__gte=first_day, due_on__lte=last_day, journey__status__in=OPEN_JOURNEY_STATUSES)
        | Q(status=StepStatus.DONE, performed_at__gte=start, performed_at__lt=end)
        | Q(status=StepStatus.DONE, performed_at__isnull=True, due_on__gte=first_day, due_on__lte=last_day)
    )
    return filter_steps(steps, **filters).annotate(day=_calendar_day_expression(), kind=_kind_expression(kinds))


@dataclass
class CalendarDay:
    day: date
    load: dict[str, int]  # {kind: entries that day}
    entries: list[Step]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.entries)


def calendar(*, first_day: date, last_day: date, per_day: int = CALENDAR_ENTRIES_PER_DAY, **filters) -> list[CalendarDay]:
    """Every day from `first_day` to `last_day` with its load (entries by kind) and its first `per_day`
    entries, each with its patient. Three queries: the templates, the counts, the entries."""
    kinds = calendar_kinds_by_template()
    steps = calendar_steps(first_day=first_day, last_day=last_day, kinds=kinds, **filters)
    loads: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CalendarKind.values, 0))
    for row in steps.order_by().values("day", "kind").annotate(entries=Count("id")):
        loads[row["day"]][row["kind"]] = row["entries"]
    # The day's first entries are ranked over narrow rows (id, day, kind, name) in a subquery; only the rows
    # shown are then joined to their template and patient. Ranking the joined rows would sort every step of
    # the range, wide, through the window. Still one query.
    shown = (
        steps.order_by()
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("day")],
                order_by=[F("kind").asc(), F("journey__patient__family_name").asc(), F("id").asc()],
            )
        )
        .filter(rank__lte=per_day)
        .values("id")
    )
    # On PostgreSQL `id = ANY(ARRAY(…))`: the planner then fetches the few ids by key instead of joining every
    # step. SQLite (`make run`) has no arrays; `id IN (…)` is right for a clinic that size.
    chosen = _KeyAmong(F("id"), ArraySubquery(shown)) if connection.vendor == "postgresql" else Q(id__in=shown)
    entries = (
        Step.objects.filter(chosen)
        .annotate(day=_calendar_day_expression(), kind=_kind_expression(kinds))
        .select_related("template", "journey__patient")
        .order_by("day", "kind", "journey__patient__family_name", "id")
    )
    by_day: dict[date, list[Step]] = defaultdict(list)
    for step in entries:
        step.kind_label = CalendarKind(step.kind).label
        by_day[step.day].append(step)
    days = []
    day = first_day
    while day <= last_day:
        load = dict(loads.get(day) or dict.fromkeys(CalendarKind.values, 0))
        days.append(CalendarDay(day=day, load=load, entries=by_day.get(day, []), total=sum(load.values())))
        day += timedelta(days=1)
    return days


# --- The record-status grid --------------------------------------------------------------------------


class CellState:
    """A grid cell's state, in the words the page shows beside its colour."""

    DONE = "done"
    PENDING = "pending"
    LATE = "late"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    NOT_APPLICABLE = "not applicable"


def step_state_expression(now: datetime) -> Case:
    """A step's state for the grid, in SQL: the one overdue rule (`late_condition`) and the one blocked
    rule (`blocked_condition`) decide late and blocked; the rest is the stored status."""
    return Case(
        When(status=StepStatus.DONE, then=Value(CellState.DONE)),
        When(status=StepStatus.SKIPPED, then=Value(CellState.SKIPPED)),
        When(status=StepStatus.NOT_APPLICABLE, then=Value(CellState.NOT_APPLICABLE)),
        When(late_condition(now), then=Value(CellState.LATE)),
        When(blocked_condition(), then=Value(CellState.BLOCKED)),
        default=Value(CellState.PENDING),
        output_field=CharField(),
    )


def grid_journeys(**filters) -> QuerySet[Journey]:
    """The grid's rows: open journeys under the dashboard's filters, by patient name."""
    journeys = Journey.objects.filter(status__in=OPEN_JOURNEY_STATUSES).select_related("patient")
    return filter_journeys(journeys, **filters).order_by("patient__family_name", "patient__given_name", "id")


def grid_cells(*, journey_ids: list[int], stage: int | None = None, now: datetime | None = None) -> QuerySet[Step]:
    """The steps of these journeys (of one stage, or all), each with its `state` and its template. One query."""
    now = now or timezone.now()
    steps = Step.objects.filter(journey_id__in=journey_ids)
    if stage:
        steps = steps.filter(template__stage=stage)
    return (
        steps.annotate(state=step_state_expression(now))
        .select_related("template")
        .order_by("template__stage", "template__position", "id")
    )


def grid_rows(journeys: list[Journey], *, stage: int | None = None, now: datetime | None = None):
    """(columns, rows) for a page of journeys: columns are the step codes in protocol order (name, stage);
    each row is (journey, [step or None per column]). Protocol versions share codes, so one column holds the
    same step across versions."""
    cells = list(grid_cells(journey_ids=[journey.id for journey in journeys], stage=stage, now=now))
    columns: dict[str, StepTemplate] = {}
    by_journey: dict[int, dict[str, Step]] = defaultdict(dict)
    for step in sorted(cells, key=lambda s: (s.template.stage, s.template.position)):
        columns.setdefault(step.template.code, step.template)
        by_journey[step.journey_id][step.template.code] = step
    codes = list(columns)
    rows = [(journey, [by_journey[journey.id].get(code) for code in codes]) for journey in journeys]
    return list(columns.values()), rows
