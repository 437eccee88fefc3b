"""Reads of the contracts: the status of many enrolments computed in a constant number of queries, the money
at stake per contract and payer, and what a payer's API client may see."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db.models import BooleanField, Case, Count, QuerySet, Value, When
from django.utils import timezone

from clinical import contracts as rule
from contracts.models import Contract, ContractEnrolment, ContractStatus
from journeys.models import JourneyStatus, Step, StepStatus, StepTemplate, late_condition

REMISSION_FIELD = "remission"
SCORE_FIELD = "disease_activity"


def enrolments_with_context() -> QuerySet[ContractEnrolment]:
    return ContractEnrolment.objects.select_related("contract", "contract__payer", "contract__product", "journey")


def _remission_template_ids(protocol_ids) -> set[int]:
    """The step templates whose record carries the remission field: the remission visits."""
    return {
        template_id
        for template_id, specs in StepTemplate.objects.filter(protocol_id__in=protocol_ids).values_list("id", "record_fields")
        if any(spec.get("name") == REMISSION_FIELD for spec in specs or ())
    }


def _score(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def enrolment_standings(enrolments, *, now: datetime | None = None) -> dict[int, rule.ContractStanding]:
    """The contract status of each enrolment (loaded with its contract and journey) on `now`, by enrolment id.
    Three queries whatever the number: the remission templates, then every remission visit of the journeys,
    each marked late by journeys' one overdue rule."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    enrolments = list(enrolments)
    if not enrolments:
        return {}
    journeys = {e.journey_id: e.journey for e in enrolments}
    template_ids = _remission_template_ids({j.protocol_id for j in journeys.values()})
    visits = (
        Step.objects.filter(journey_id__in=journeys, template_id__in=template_ids)
        .annotate(is_late=Case(When(late_condition(now), then=Value(True)), default=Value(False), output_field=BooleanField()))
        .values("journey_id", "status", "record", "performed_at", "completed_at", "due_on", "overdue_after", "is_late")
        .order_by()
    )
    assessments, pending = defaultdict(list), defaultdict(list)
    for visit in visits:
        if visit["status"] == StepStatus.DONE:
            record = visit["record"] or {}
            if record.get(REMISSION_FIELD):
                on = timezone.localdate(visit["performed_at"] or visit["completed_at"])
                assessments[visit["journey_id"]].append(
                    rule.RemissionAssessment(
                        on=on, remission=record[REMISSION_FIELD], disease_activity=_score(record.get(SCORE_FIELD))
                    )
                )
        elif visit["status"] == StepStatus.PENDING:
            overdue_since = timezone.localdate(visit["overdue_after"]) if visit["is_late"] else None
            pending[visit["journey_id"]].append(rule.PendingVisit(due_on=visit["due_on"], overdue_since=overdue_since))
    standings = {}
    for enrolment in enrolments:
        journey = journeys[enrolment.journey_id]
        withdrawn_on = (
            timezone.localdate(journey.ended_at) if journey.status == JourneyStatus.WITHDRAWN and journey.ended_at else None
        )
        standings[enrolment.id] = rule.contract_status(
            infusion_on=journey.day0_actual,
            milestone_months=enrolment.contract.milestone_months,
            remission_definition=enrolment.contract.remission_definition,
            assessments=assessments[journey.id],
            pending_visits=pending[journey.id],
            withdrawn_on=withdrawn_on,
            today=today,
        )
    return standings


# --- The finance page ----------------------------------------------------------------------------


@dataclass
class Money:
    """The sums of one contract or payer in one currency."""

    currency: str
    enrolled: int = 0
    counts: dict = field(default_factory=lambda: dict.fromkeys(ContractStatus.values, 0))
    at_risk: Decimal = Decimal("0.00")  # the rebates at stake on enrolments at risk
    refunds_owed: Decimal = Decimal("0.00")  # the rebates of failed enrolments
    met: Decimal = Decimal("0.00")  # the price of enrolments whose outcome was met: earned in full

    def add(self, contract: Contract, status: str, count: int) -> None:
        self.enrolled += count
        self.counts[status] += count
        stake = contract.amount_at_stake
        if status == ContractStatus.AT_RISK:
            self.at_risk += stake * count
        elif status == ContractStatus.FAILED:
            self.refunds_owed += stake * count
        elif status == ContractStatus.MET:
            self.met += contract.price * count


def finance_overview() -> dict:
    """Money at stake per contract and per payer (and currency), from the stored statuses: two queries."""
    contracts = list(Contract.objects.select_related("payer", "product").order_by("payer__name", "name"))
    counts = ContractEnrolment.objects.values("contract_id", "status").annotate(n=Count("id")).order_by()
    per_contract = {c.id: Money(currency=c.currency) for c in contracts}
    by_id = {c.id: c for c in contracts}
    for row in counts:
        per_contract[row["contract_id"]].add(by_id[row["contract_id"]], row["status"], row["n"])
    per_payer: dict[tuple[str, str], Money] = {}
    for contract in contracts:
        money = per_contract[contract.id]
        payer = per_payer.setdefault((contract.payer.name, contract.currency), Money(currency=contract.currency))
        payer.enrolled += money.enrolled
        for status, n in money.counts.items():
            payer.counts[status] += n
        payer.at_risk += money.at_risk
        payer.refunds_owed += money.refunds_owed
        payer.met += money.met
    return {
        "contracts": [(contract, per_contract[contract.id]) for contract in contracts],
        "payers": [(name, currency, money) for (name, currency), money in sorted(per_payer.items())],
    }


def enrolment_list(*, status: str = "", contract_id: int | None = None) -> QuerySet[ContractEnrolment]:
    enrolments = enrolments_with_context().select_related("journey__patient")
    if status:
        enrolments = enrolments.filter(status=status)
    if contract_id:
        enrolments = enrolments.filter(contract_id=contract_id)
    return enrolments.order_by("milestone_on", "id")


def enrolment_for_journey(*, journey_id: int) -> ContractEnrolment | None:
    return enrolments_with_context().filter(journey_id=journey_id).first()


# --- A payer's API client ------------------------------------------------------------------------


def enrolments_for_payer_client(user) -> QuerySet[ContractEnrolment]:
    """Only the enrolments of the payer this client speaks for; none if it speaks for no payer."""
    if not getattr(user, "pk", None):
        return ContractEnrolment.objects.none()
    return enrolments_with_context().filter(contract__payer__api_user=user).order_by("milestone_on", "id")
