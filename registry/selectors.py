"""The clinic's metrics: each table in a constant number of queries, whatever the number of patients.

Counts and medians are computed by the database. On PostgreSQL a median and its quartiles are
`percentile_cont` (linear interpolation between the two nearest values); elsewhere (SQLite under
`make run`) the same query returns the per-row values, one query still, and `percentile_cont` below
computes the same numbers in Python. `in_sql=False` forces that path, so its tests run on PostgreSQL too.

Every table takes an optional date range (`since`, `until`, both inclusive), applied to the date that
places a row in time: Day 0 for vein-to-vein, length of stay and grades, the release for manufacturing
turnaround, the due date for steps and visits.
"""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateField,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.utils import timezone

from journeys.models import Journey, Stage, StageNumber, Step, StepStatus, late_condition
from manufacturing.models import ManufacturingOrder, OrderStatus
from patients.models import Indication
from registry.models import MetricsSnapshot

# Where the protocol records the discharge (stage 4): the step's code and its date field. Without the date,
# the day the step was performed stands in for it.
DISCHARGE_STEP = "discharge"
DISCHARGE_DATE_FIELD = "discharge_date"
# The monitoring days' ASTCT grades (stage 4); a physician's overruling grade wins over the computed one,
# as in journeys.selectors.monitoring_grades.
CRS_FIELD, ICANS_FIELD = "crs_grade", "icans_grade"
GRADES = ("0", "1", "2", "3", "4")
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
MAX_MONTHS = 36


# --- Arithmetic the database does ---------------------------------------------------------------------


class DaysBetweenDates(Func):
    """later − earlier, two dates, in whole days."""

    arity = 2
    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="CAST((%(expressions)s) AS double precision)", arg_joiner=" - ")

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="(julianday(%(expressions)s))", arg_joiner=") - julianday(")


class DaysBetweenTimes(Func):
    """later − earlier, two instants, in days with a fraction (a release 36 hours after receipt: 1.5)."""

    arity = 2
    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(
            compiler, connection, template="(EXTRACT(EPOCH FROM (%(expressions)s)) / 86400.0)", arg_joiner=" - "
        )

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="(julianday(%(expressions)s))", arg_joiner=") - julianday(")


class AsDate(Func):
    """An ISO date held as text (a record field), as a date."""

    arity = 1
    output_field = DateField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="CAST(%(expressions)s AS date)")

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="date(%(expressions)s)")


def percentiles_in_sql() -> bool:
    return connection.vendor == "postgresql"


def percentile_cont(ordered: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont in Python: position fraction × (n − 1), linear between neighbours."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """n, median, the interquartile range (q1–q3) and the extremes of a number of days."""

    n: int
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> "Spread":
        ordered = sorted(float(v) for v in values)
        if not ordered:
            return cls(0)
        return cls(
            len(ordered),
            percentile_cont(ordered, 0.5),
            percentile_cont(ordered, 0.25),
            percentile_cont(ordered, 0.75),
            ordered[0],
            ordered[-1],
        )


def _spreads(queryset, value, group_by: tuple[str, ...], in_sql: bool | None) -> dict[tuple, Spread]:
    """One query: the Spread of `value` per group (one group `()` when `group_by` is empty).

    The per-row values are a derived table that the quantiles read: each row's value (a subquery, an
    aggregate over the row's events) is computed once, not once per measure."""
    in_sql = percentiles_in_sql() if in_sql is None else in_sql
    rows = (
        queryset.annotate(metric_value=value).filter(metric_value__isnull=False).order_by().values_list(*group_by, "metric_value")
    )
    if in_sql:
        inner, params = rows.query.sql_with_params()
        groups = [f"g{index}" for index in range(len(group_by))]
        columns = ", ".join([*groups, "v"])
        keys = ", ".join(groups)
        statement = (
            f"SELECT {keys + ', ' if keys else ''}COUNT(v), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY v), percentile_cont(0.25) WITHIN GROUP (ORDER BY v), "
            "percentile_cont(0.75) WITHIN GROUP (ORDER BY v), MIN(v), MAX(v) "
            f"FROM ({inner}) AS per_row ({columns})" + (f" GROUP BY {keys} ORDER BY {keys}" if keys else "")
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            found = cursor.fetchall()
        spreads = {}
        for row in found:
            key, measures = tuple(row[: len(groups)]), row[len(groups) :]
            spreads[key] = (
                Spread(*[measures[0], *[None if m is None else float(m) for m in measures[1:]]]) if measures[0] else Spread(0)
            )
        return spreads if group_by else {(): spreads.get((), Spread(0))}
    grouped: dict[tuple, list[float]] = defaultdict(list)
    for *key, found in rows:
        grouped[tuple(key)].append(found)
    if not group_by:
        return {(): Spread.of(grouped.get((), []))}
    return {key: Spread.of(values) for key, values in sorted(grouped.items(), key=lambda item: [str(k) for k in item[0]])}


def _in_range(field: str, since: date | None, until: date | None) -> Q:
    condition = Q()
    if since:
        condition &= Q(**{f"{field}__gte": since})
    if until:
        condition &= Q(**{f"{field}__lte": until})
    return condition


def _instants_in_range(field: str, since: date | None, until: date | None) -> Q:
    """A date range on a timestamp: from the clinic's midnight of `since` to the one after `until`."""
    zone = timezone.get_current_timezone()
    condition = Q()
    if since:
        condition &= Q(**{f"{field}__gte": datetime.combine(since, time.min, tzinfo=zone)})
    if until:
        condition &= Q(**{f"{field}__lt": datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)})
    return condition


@dataclass(frozen=True)
class SpreadRow:
    label: str
    spread: Spread
    group: str = ""


def _by_indication(queryset, value, indication_field: str, in_sql) -> list[SpreadRow]:
    """The Spread per indication and then for all together: two queries."""
    per = _spreads(queryset, value, (indication_field,), in_sql)
    rows = [SpreadRow(Indication(key[0]).label if key[0] in Indication.values else key[0], spread) for key, spread in per.items()]
    rows.append(SpreadRow("All indications", _spreads(queryset, value, (), in_sql)[()]))
    return rows


# --- The tables ---------------------------------------------------------------------------------------


def vein_to_vein(*, since: date | None = None, until: date | None = None, in_sql: bool | None = None) -> list[SpreadRow]:
    """Days from the collection (the leukapheresis date, actual once collected) to the infusion (actual
    Day 0), of the journeys infused in the range, per indication and for all: two queries."""
    journeys = Journey.objects.filter(Q(day0_actual__isnull=False) & _in_range("day0_actual", since, until))
    return _by_indication(journeys, DaysBetweenDates(F("day0_actual"), F("leukapheresis_date")), "patient__indication", in_sql)


def turnaround(*, since: date | None = None, until: date | None = None, in_sql: bool | None = None) -> list[SpreadRow]:
    """Days from the material's receipt at the plant (the order's first move to "material received") to QC
    release, of the orders released in the range: per plant (grouped under its maker), then per maker.
    Two queries."""
    orders = ManufacturingOrder.objects.filter(Q(released_at__isnull=False) & _instants_in_range("released_at", since, until))
    orders = orders.annotate(received=Min("events__at", filter=Q(events__to_state=OrderStatus.MATERIAL_RECEIVED)))
    value = DaysBetweenTimes(F("released_at"), F("received"))
    per_plant = _spreads(orders, value, ("plant__maker__name", "plant__name"), in_sql)
    per_maker = _spreads(orders, value, ("plant__maker__name",), in_sql)
    rows = []
    for (maker,), spread in per_maker.items():
        rows.extend(SpreadRow(plant, plant_spread, maker) for (m, plant), plant_spread in per_plant.items() if m == maker)
        rows.append(SpreadRow(f"All plants of {maker}", spread, maker))
    return rows


def length_of_stay(*, since: date | None = None, until: date | None = None, in_sql: bool | None = None) -> list[SpreadRow]:
    """Days from the infusion (actual Day 0) to the discharge: the discharge step's `discharge_date`, else the
    day that step was performed; per indication and for all, by Day 0 in the range. Two queries."""
    discharge_day = Coalesce(
        Case(
            When(
                **{f"record__{DISCHARGE_DATE_FIELD}__regex": ISO_DATE},
                then=AsDate(KeyTextTransform(DISCHARGE_DATE_FIELD, "record")),
            ),
        ),
        AsDate(TruncDate(Coalesce("performed_at", "completed_at"))),
    )
    steps = Step.objects.filter(
        Q(template__code=DISCHARGE_STEP, status=StepStatus.DONE, journey__day0_actual__isnull=False)
        & _in_range("journey__day0_actual", since, until)
    )
    return _by_indication(
        steps, DaysBetweenDates(discharge_day, F("journey__day0_actual")), "journey__patient__indication", in_sql
    )


@dataclass(frozen=True)
class GradeRow:
    grade: str
    crs: int
    icans: int


def _graded(field: str):
    return Coalesce(
        NullIf(KeyTextTransform(f"{field}_physician", "record"), Value("", output_field=TextField())),
        KeyTextTransform(field, "record"),
        output_field=TextField(),
    )


def grades(*, since: date | None = None, until: date | None = None) -> tuple[list[GradeRow], int, int]:
    """How many infused patients had each grade as their highest CRS and ICANS grade over the monitoring
    days (the physician's grade where it overrules the computed one); and how many have none recorded
    (CRS, ICANS). Two queries: the infused journeys, and the highest grades per journey counted per grade
    pair (a derived table, so the database returns at most 36 rows, not one per patient)."""
    infused = Journey.objects.filter(Q(day0_actual__isnull=False) & _in_range("day0_actual", since, until))
    per_journey = (
        Step.objects.filter(
            Q(status=StepStatus.DONE, template__stage=StageNumber.INFUSION, journey__day0_actual__isnull=False)
            & _in_range("journey__day0_actual", since, until)
        )
        .annotate(crs=_graded(CRS_FIELD), icans=_graded(ICANS_FIELD))
        .filter(Q(crs__in=GRADES) | Q(icans__in=GRADES))
        .order_by()
        .values("journey_id")
        # Grades are the single digits "0"–"4": their text order is their number order.
        .annotate(
            top_crs=Max("crs", filter=Q(crs__in=GRADES)),
            top_icans=Max("icans", filter=Q(icans__in=GRADES)),
        )
        .values_list("top_crs", "top_icans")
    )
    inner, params = per_journey.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT crs, icans, COUNT(*) FROM ({inner}) AS per_journey (crs, icans) GROUP BY crs, icans", params)
        pairs = cursor.fetchall()
    total = infused.count()
    crs: dict[str, int] = defaultdict(int)
    icans: dict[str, int] = defaultdict(int)
    for top_crs, top_icans, count in pairs:
        crs[top_crs] += count
        icans[top_icans] += count
    rows = [GradeRow(grade, crs[grade], icans[grade]) for grade in GRADES]
    return rows, total - sum(row.crs for row in rows), total - sum(row.icans for row in rows)


@dataclass(frozen=True)
class OnTimeRow:
    stage: int
    label: str
    on_time: int
    late: int

    @property
    def counted(self) -> int:
        return self.on_time + self.late

    @property
    def rate(self) -> float | None:
        return self.on_time / self.counted if self.counted else None


def on_time(*, now: datetime, since: date | None = None, until: date | None = None) -> list[OnTimeRow]:
    """Per stage, of the steps due in the range: done on time (never late: `first_late_at`, which a moved
    Day 0 does not clear, is empty) against late (done late, late now, or late once and still pending).
    Skipped and not-applicable steps, and pending steps not yet late, are not counted. Two queries."""
    late_once = Q(first_late_at__isnull=False)
    in_range = _in_range("due_on", since, until)
    rows = (
        Step.objects.filter(in_range)
        .exclude(status__in=(StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE))
        .order_by()
        .values("template__stage")
        .annotate(on_time=Count("id", filter=Q(status=StepStatus.DONE) & ~late_once), late=Count("id", filter=late_once))
        .order_by("template__stage")
    )
    # Late now and never before: pending past their grace (the overdue scan's partial index answers it).
    late_now = dict(
        Step.objects.filter(in_range & late_condition(now) & ~late_once)
        .order_by()
        .values("template__stage")
        .annotate(n=Count("id"))
        .values_list("template__stage", "n")
    )
    rows = [{**row, "late": row["late"] + late_now.get(row["template__stage"], 0)} for row in rows]
    result = [
        OnTimeRow(row["template__stage"], StageNumber(row["template__stage"]).label, row["on_time"], row["late"]) for row in rows
    ]
    result.append(OnTimeRow(0, "All stages", sum(r.on_time for r in result), sum(r.late for r in result)))
    return result


@dataclass(frozen=True)
class FollowUpRow:
    year: int
    due: int
    done: int

    @property
    def rate(self) -> float | None:
        return self.done / self.due if self.due else None


def follow_up(*, now: datetime, since: date | None = None, until: date | None = None) -> list[FollowUpRow]:
    """Stage-5 visits whose window and grace have run out (so they were due), and how many of them were done,
    per year after Day 0 (Day +1…+365 is year 1, +366…+730 year 2). Visits closed as not applicable
    (a withdrawn journey) are not counted. One query."""
    rows = (
        Step.objects.filter(
            Q(template__stage=StageNumber.IMMUNE_RE_EDUCATION, overdue_after__lte=now) & _in_range("due_on", since, until)
        )
        .exclude(status=StepStatus.NOT_APPLICABLE)
        .annotate(year=(F("template__offset_days") - 1) / 365 + 1)
        .order_by()
        .values("year")
        .annotate(due=Count("id"), done=Count("id", filter=Q(status=StepStatus.DONE)))
        .order_by("year")
    )
    return [FollowUpRow(row["year"], row["due"], row["done"]) for row in rows]


def month_ends(*, today: date, since: date | None = None, until: date | None = None) -> list[date]:
    """The months of the stage table, as their first days: the range's months, else the last twelve."""
    last = (until or today).replace(day=1)
    first = since.replace(day=1) if since else _add_months(last, -11)
    months = []
    while first <= last and len(months) < MAX_MONTHS:
        months.append(first)
        first = _add_months(first, 1)
    return months


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class StageCountRow:
    stage: int
    label: str
    counts: list[int]


def stages_over_time(*, now: datetime, months: list[date]) -> list[StageCountRow]:
    """How many journeys were in each stage at the end of each month (or now, for the month not yet over):
    a stage holds a journey from its start to its completion, and no journey after the journey ended.
    The stage rows keep the instants of the STAGE_STARTED and STAGE_COMPLETED events (written with them,
    in one transaction), one row per stage, so this is one indexed aggregate rather than a replay of events.
    One query."""
    zone = timezone.get_current_timezone()
    ends = [min(datetime.combine(_add_months(month, 1), time.min, tzinfo=zone), now) for month in months]
    counts = {
        f"m{index}": Count(
            "id",
            filter=Q(started_at__lt=end)
            & (Q(completed_at__isnull=True) | Q(completed_at__gte=end))
            & (Q(journey__ended_at__isnull=True) | Q(journey__ended_at__gte=end)),
        )
        for index, end in enumerate(ends)
    }
    found = {
        row["number"]: row
        for row in Stage.objects.filter(started_at__isnull=False).order_by().values("number").annotate(**counts)
    }
    return [
        StageCountRow(number, label, [found.get(number, {}).get(f"m{index}", 0) for index in range(len(ends))])
        for number, label in StageNumber.choices
    ]


@dataclass(frozen=True)
class Metrics:
    vein_to_vein: list[SpreadRow]
    turnaround: list[SpreadRow]
    on_time: list[OnTimeRow]
    length_of_stay: list[SpreadRow]
    grades: list[GradeRow]
    grades_missing: tuple[int, int]
    follow_up: list[FollowUpRow]
    months: list[date]
    stages: list[StageCountRow]


def clinic_metrics(*, now: datetime, since: date | None = None, until: date | None = None, in_sql: bool | None = None) -> Metrics:
    """Every table of the metrics page: 12 queries, whatever the number of patients."""
    grade_rows, crs_missing, icans_missing = grades(since=since, until=until)
    months = month_ends(today=timezone.localdate(now), since=since, until=until)
    return Metrics(
        vein_to_vein=vein_to_vein(since=since, until=until, in_sql=in_sql),
        turnaround=turnaround(since=since, until=until, in_sql=in_sql),
        on_time=on_time(now=now, since=since, until=until),
        length_of_stay=length_of_stay(since=since, until=until, in_sql=in_sql),
        grades=grade_rows,
        grades_missing=(crs_missing, icans_missing),
        follow_up=follow_up(now=now, since=since, until=until),
        months=months,
        stages=stages_over_time(now=now, months=months),
    )


# --- The stored snapshot ------------------------------------------------------------------------------
# The page reads the tables from a MetricsSnapshot (registry.models) rather than computing them per request:
# their cost grows with the clinic, a snapshot's does not. Below: the tables to JSON and back, and the lookup.


def metrics_as_json(metrics: Metrics) -> dict:
    """The tables as JSON-ready data (dates as ISO text); `metrics_from_json` gives back an equal Metrics."""
    data = asdict(metrics)
    data["months"] = [month.isoformat() for month in metrics.months]
    data["grades_missing"] = list(metrics.grades_missing)
    return data


def _spread_rows(rows: list[dict]) -> list[SpreadRow]:
    return [SpreadRow(row["label"], Spread(**row["spread"]), row.get("group", "")) for row in rows]


def metrics_from_json(data: dict) -> Metrics:
    return Metrics(
        vein_to_vein=_spread_rows(data["vein_to_vein"]),
        turnaround=_spread_rows(data["turnaround"]),
        on_time=[OnTimeRow(**row) for row in data["on_time"]],
        length_of_stay=_spread_rows(data["length_of_stay"]),
        grades=[GradeRow(**row) for row in data["grades"]],
        grades_missing=tuple(data["grades_missing"]),
        follow_up=[FollowUpRow(**row) for row in data["follow_up"]],
        months=[date.fromisoformat(month) for month in data["months"]],
        stages=[StageCountRow(**row) for row in data["stages"]],
    )


def metrics_range_key(*, date_from: date | None, date_to: date | None) -> str:
    """The snapshot's unique key for a range: "all" for the page's default (no dates), else both ends."""
    if date_from is None and date_to is None:
        return "all"
    return f"{date_from.isoformat() if date_from else '-'}..{date_to.isoformat() if date_to else '-'}"


def metrics_snapshot_get(*, date_from: date | None, date_to: date | None) -> MetricsSnapshot | None:
    """The stored snapshot of a range, or None: one query, whatever the size of the clinic."""
    key = metrics_range_key(date_from=date_from, date_to=date_to)
    return MetricsSnapshot.objects.filter(range_key=key).first()


def metrics_snapshot_is_stale(snapshot: MetricsSnapshot, *, now=None) -> bool:
    """Older than METRICS_SNAPSHOT_MAX_AGE_MINUTES: the page recomputes it rather than show it."""
    now = now or timezone.now()
    return (now - snapshot.computed_at).total_seconds() > settings.METRICS_SNAPSHOT_MAX_AGE_MINUTES * 60
