"""A small clinic built row by row, so that every metric can be worked out by hand in the tests.

Rows are written directly (no services): the metrics read what services leave behind (stage instants,
`first_late_at`, records), and the tests set exactly those values.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from journeys import clock
from journeys.models import Journey, JourneyStatus, ProtocolTemplate, Stage, StageNumber, StageStatus, Step, StepStatus
from manufacturing.models import ManufacturingOrder, OrderEvent, OrderStatus
from tests.factories import PatientFactory

BERLIN = ZoneInfo("Europe/Berlin")


def at(*fields) -> datetime:
    """A moment in the clinic's local time."""
    return datetime(*fields, tzinfo=BERLIN)


def shipped_protocol() -> ProtocolTemplate:
    return ProtocolTemplate.objects.get(version=1, name__startswith="CD19")


def make_journey(
    *,
    indication: str = "sle",
    leukapheresis: date,
    day0: date | None,
    stages: dict[int, tuple[datetime, datetime | None]],
    status: str = JourneyStatus.ACTIVE,
    ended_at: datetime | None = None,
    protocol: ProtocolTemplate | None = None,
) -> Journey:
    """A journey with its five stage rows: `stages` maps a stage number to (started, completed or None);
    a stage not named has not started."""
    protocol = protocol or shipped_protocol()
    started = list(stages)
    journey = Journey.objects.create(
        patient=PatientFactory(indication=indication),
        protocol=protocol,
        status=status,
        current_stage=max(started) if started else 1,
        leukapheresis_date=leukapheresis,
        day0_planned=day0 or leukapheresis + timedelta(days=21),
        day0_actual=day0,
        started_at=at(leukapheresis.year, leukapheresis.month, leukapheresis.day) - timedelta(days=10),
        ended_at=ended_at,
    )
    for number in StageNumber.values:
        began, finished = stages.get(number, (None, None))
        Stage.objects.create(
            journey=journey,
            number=number,
            status=StageStatus.COMPLETED if finished else StageStatus.IN_PROGRESS if began else StageStatus.PENDING,
            started_at=began,
            completed_at=finished,
        )
    return journey


def add_step(
    journey: Journey,
    code: str,
    *,
    status: str = StepStatus.DONE,
    record: dict | None = None,
    performed_at: datetime | None = None,
    first_late_at: datetime | None = None,
    overdue_since: datetime | None = None,
    skip_reason: str = "",
) -> Step:
    """A step of the journey's protocol, dated from its anchor as journey_start dates it; a done step is
    performed on its due day at 10:00 unless `performed_at` says otherwise."""
    template = journey.protocol.step_templates.get(code=code)
    dates = clock.dates_for_template(template, journey.anchor_date(template.anchor))
    resolved = status != StepStatus.PENDING
    if resolved and performed_at is None:
        performed_at = at(dates.due_on.year, dates.due_on.month, dates.due_on.day, 10)
    return Step.objects.create(
        journey=journey,
        stage=journey.stages.get(number=template.stage),
        template=template,
        status=status,
        due_on=dates.due_on,
        window_opens_on=dates.window_opens_on,
        window_closes_on=dates.window_closes_on,
        overdue_after=dates.overdue_after,
        overdue_since=overdue_since,
        first_late_at=first_late_at,
        performed_at=performed_at if status == StepStatus.DONE else None,
        completed_at=performed_at if resolved else None,
        record=record or {},
        skip_reason=skip_reason or ("Not done" if status in (StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE) else ""),
    )


def add_released_order(journey: Journey, *, plant, product, received: list[datetime], released: datetime) -> ManufacturingOrder:
    """A released order whose material was received at the times given (the first one counts)."""
    order = ManufacturingOrder.objects.create(
        journey=journey,
        product=product,
        plant=plant,
        status=OrderStatus.RELEASED,
        released_at=released,
        created_at=received[0] - timedelta(days=3),
    )
    for moment in received:
        OrderEvent.objects.create(
            order=order, kind="status", from_state=OrderStatus.SLOT_CONFIRMED, to_state=OrderStatus.MATERIAL_RECEIVED, at=moment
        )
    OrderEvent.objects.create(
        order=order, kind="qc", from_state=OrderStatus.QC_TESTING, to_state=OrderStatus.RELEASED, at=released
    )
    return order


def utc(*fields) -> datetime:
    return datetime(*fields, tzinfo=UTC)
