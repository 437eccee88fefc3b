"""Reads of follow-up: a patient's derived status and chart series, the dashboard's malignancies, the links."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from clinical.reconstitution import (
    BCellCourse,
    IgGStatus,
    RemissionCourse,
    b_cell_course,
    igg_status,
    malignancy_reported,
    remission_course,
)
from followup.models import QuestionnaireLink
from journeys.models import Journey, StageNumber, Step, StepStatus

# The record keys follow-up reads (stage 5 of the shipped protocol); older records may lack any of them.
FOLLOWUP_KEYS = (
    "cd19_b_cells",
    "igg",
    "disease_activity",
    "remission",
    "remission_drug_free",
    "new_malignancy",
    "malignancy_type",
    "igg_replacement",
)
# Every value the new_malignancy field has meant "yes" in some protocol version (a yes/no, or a choice).
MALIGNANCY_YES = (True, "yes", "suspected", "confirmed")
QUESTIONNAIRE_STEP_PREFIX = "ltfu-year-"
QUESTIONNAIRE_YEARS = range(6, 16)
MALIGNANCY_LIST_LIMIT = 50


def questionnaire_step_codes() -> list[str]:
    """Years 6–15: the annual "contact or questionnaire" steps (FDA LTFU guidance 2020)."""
    return [f"{QUESTIONNAIRE_STEP_PREFIX}{year}" for year in QUESTIONNAIRE_YEARS]


@dataclass(frozen=True)
class Visit:
    """One done step that recorded something follow-up reads: when (the day it was performed), and the values."""

    on: date
    day: int  # days from Day 0
    name: str
    record: dict


@dataclass
class FollowUpStatus:
    day0: date
    visits: list[Visit]
    b_cells: BCellCourse
    igg: IgGStatus
    remission: RemissionCourse
    drug_free: bool | None
    malignancies: list[Visit] = field(default_factory=list)

    def series(self, key: str) -> list[tuple[Visit, Decimal]]:
        return [(visit, Decimal(str(visit.record[key]))) for visit in self.visits if visit.record.get(key) is not None]


def _visit_day(step: dict) -> date:
    performed = step["performed_at"]
    return timezone.localdate(performed) if performed else step["due_on"]


def journey_visits(*, journey: Journey) -> list[Visit]:
    """The journey's done steps whose record holds a follow-up value, in the order they were performed: one query.
    Earlier stages count too (a CD19+ count before lymphodepletion is the chart's baseline before Day 0)."""
    rows = (
        Step.objects.filter(journey_id=journey.id, status=StepStatus.DONE, record__has_any_keys=list(FOLLOWUP_KEYS))
        .order_by()
        .values("performed_at", "due_on", "record", "template__name")
    )
    visits = [
        Visit(on=(on := _visit_day(row)), day=journey.day_number(on), name=row["template__name"], record=row["record"] or {})
        for row in rows
    ]
    return sorted(visits, key=lambda visit: (visit.on, visit.name))


def followup_status(*, journey: Journey) -> FollowUpStatus:
    """A patient's B-cell course, IgG, remission and malignancies from the journey's records (one query)."""
    visits = journey_visits(journey=journey)

    def dated(key: str):
        return [(visit.on, visit.record.get(key)) for visit in visits if key in visit.record]

    replacement = [visit.record["igg_replacement"] for visit in visits if visit.record.get("igg_replacement") is not None]
    drug_free = [visit.record["remission_drug_free"] for visit in visits if visit.record.get("remission_drug_free") is not None]
    return FollowUpStatus(
        day0=journey.day0,
        visits=visits,
        b_cells=b_cell_course(
            [(on, value) for on, value in dated("cd19_b_cells") if value is not None],
            aplasia_below_per_ul=settings.FOLLOWUP_B_CELL_APLASIA_BELOW_PER_UL,
        ),
        igg=igg_status(
            [(on, value) for on, value in dated("igg") if value is not None],
            low_below_g_l=settings.FOLLOWUP_IGG_LOW_BELOW_G_L,
            on_replacement=bool(replacement and replacement[-1]),
        ),
        remission=remission_course(dated("remission")),
        drug_free=drug_free[-1] if drug_free else None,
        malignancies=[visit for visit in visits if malignancy_reported(visit.record.get("new_malignancy"))],
    )


def malignancy_steps() -> QuerySet[Step]:
    """Done steps that recorded a new malignancy, newest first, with their patient: one query, any number."""
    return (
        Step.objects.filter(status=StepStatus.DONE, stage__number=StageNumber.IMMUNE_RE_EDUCATION)
        .filter(
            Q(record__new_malignancy=True)
            | Q(record__new_malignancy__in=[value for value in MALIGNANCY_YES if isinstance(value, str)])
        )
        .select_related("journey__patient", "template")
        .order_by("-performed_at", "-id")
    )


def questionnaire_links(*, journey: Journey) -> list[QuestionnaireLink]:
    """The journey's questionnaire links, newest first, with their step: one query."""
    return list(QuestionnaireLink.objects.filter(step__journey_id=journey.id).select_related("step__template"))


def questionnaire_steps(*, journey: Journey, today: date) -> list[Step]:
    """The journey's pending years 6–15 contact steps whose window has opened, earliest first: one query."""
    return list(
        Step.objects.filter(
            journey_id=journey.id,
            status=StepStatus.PENDING,
            template__code__in=questionnaire_step_codes(),
            window_opens_on__lte=today,
        )
        .select_related("template")
        .order_by("due_on")
    )
