"""The CSV exports: each is a header and a generator of rows, read from the database in chunks so that an
export of 10,000 patients streams with flat memory. The views write the audit row first (services)."""

import csv
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from django.utils import timezone

from journeys import selectors as journey_selectors
from notifications import selectors as notification_selectors
from planning import selectors
from planning.models import CalendarKind

CHUNK = 500


class _Echo:
    """A file-like object whose write returns the line, for csv.writer inside a streamed response."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterator[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


def _cell(value) -> str:
    """Plain text, and never a formula: a cell starting with = + - @ is prefixed so a spreadsheet shows it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, date):
        value = value.isoformat()
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


PATIENT_HEADER = ["MRN", "Family name", "Given name", "Date of birth"]


def _patient(patient) -> list:
    return [patient.mrn, patient.family_name, patient.given_name, patient.date_of_birth]


# --- The dashboard lists ---------------------------------------------------------------------------

STEP_HEADER = [*PATIENT_HEADER, "Stage", "Step", "Due on", "Overdue after", "Responsible"]


def _step_row(step) -> list:
    return [
        *_patient(step.journey.patient),
        step.template.stage,
        step.template.name,
        step.due_on,
        step.overdue_after,
        step.template.get_responsible_role_display(),
    ]


def overdue_steps(*, now: datetime, **filters):
    steps = journey_selectors.dashboard_overdue(now=now, **filters)
    return steps.count(), STEP_HEADER, (_step_row(step) for step in steps.iterator(chunk_size=CHUNK))


def due_this_week(*, now: datetime, **filters):
    today = timezone.localdate(now)
    steps = journey_selectors.dashboard_due(first_day=today, last_day=today + timedelta(days=7), now=now, **filters)
    return steps.count(), STEP_HEADER, (_step_row(step) for step in steps.iterator(chunk_size=CHUNK))


# --- The calendar range ----------------------------------------------------------------------------

CALENDAR_HEADER = ["Date", "Kind", *PATIENT_HEADER, "Step", "Status"]


def calendar_range(*, first_day: date, last_day: date, **filters):
    steps = (
        selectors.calendar_steps(first_day=first_day, last_day=last_day, **filters)
        .select_related("template", "journey__patient")
        .order_by("day", "kind", "journey__patient__family_name", "id")
    )
    rows = (
        [step.day, CalendarKind(step.kind).label, *_patient(step.journey.patient), step.template.name, step.get_status_display()]
        for step in steps.iterator(chunk_size=CHUNK)
    )
    return steps.count(), CALENDAR_HEADER, rows


# --- The grid --------------------------------------------------------------------------------------


def grid(*, stage: int | None = None, now: datetime, **filters):
    """One row per patient, one column per step; the columns are the protocol's steps (of one stage or all)
    as the journeys carry them, found from the first chunk onwards (protocol versions share step codes)."""
    from journeys.models import StepTemplate

    journeys = selectors.grid_journeys(**filters)
    templates = (
        StepTemplate.objects.filter(protocol__journeys__in=journeys.values("id"))
        .order_by("stage", "position")
        .values_list("code", "name")
        .distinct()
    )
    columns: dict[str, str] = {}
    for code, name in templates:
        columns.setdefault(code, name)
    codes = list(columns)

    def rows():
        chunk = []
        for journey in journeys.iterator(chunk_size=CHUNK):
            chunk.append(journey)
            if len(chunk) == CHUNK:
                yield from _grid_chunk(chunk, codes, stage, now)
                chunk = []
        if chunk:
            yield from _grid_chunk(chunk, codes, stage, now)

    if stage:
        codes_in_stage = set(StepTemplate.objects.filter(stage=stage, code__in=codes).values_list("code", flat=True))
        codes = [code for code in codes if code in codes_in_stage]
    header = [*PATIENT_HEADER, "Stage now", *[columns[code] for code in codes]]
    return journeys.count(), header, rows()


def _grid_chunk(journeys, codes, stage, now):
    cells: dict[int, dict[str, str]] = {}
    for step in selectors.grid_cells(journey_ids=[j.id for j in journeys], stage=stage, now=now):
        cells.setdefault(step.journey_id, {})[step.template.code] = step.state
    for journey in journeys:
        mine = cells.get(journey.id, {})
        yield [*_patient(journey.patient), journey.current_stage, *[mine.get(code, "") for code in codes]]


# --- The reminder log ------------------------------------------------------------------------------

REMINDER_HEADER = ["Due at", "Kind", "State", "Recipient", "Channel", *PATIENT_HEADER, "Step", "Sent at"]


def reminder_log(*, now: datetime, state: str | None = None, kind: str | None = None):
    reminders = notification_selectors.clinic_reminder_log(now=now, state=state or None, kind=kind or None)

    def row(reminder):
        patient = reminder.step.journey.patient if reminder.step_id else None
        return [
            reminder.due_at,
            reminder.get_kind_display(),
            reminder.get_state_display(),
            reminder.recipient,
            reminder.get_channel_display(),
            *(_patient(patient) if patient else ["", "", "", ""]),
            reminder.step.template.name if reminder.step_id else "",
            reminder.sent_at,
        ]

    return reminders.count(), REMINDER_HEADER, (row(reminder) for reminder in reminders.iterator(chunk_size=CHUNK))
