"""Writes of the contracts: payers, contracts, enrolments, the stored status refresh and the export audit.
Each write is one transaction and leaves a history row (who, when, the fields as they became)."""

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from carclinic.errors import InvalidInput, check_model
from contracts import selectors
from contracts.models import Contract, ContractEnrolment, ContractExport, ContractStatus, Payer, RefreshCursor
from journeys.models import Journey, JourneyEvent
from staff.roles import Action, Role, authorize

log = logging.getLogger("carclinic.contracts")

# A change into one of these tells the patient's coordinator (or every coordinator) in the bell at once.
TOLD_STATUSES = (ContractStatus.AT_RISK, ContractStatus.FAILED)
REFRESH_CHUNK = 500
CURSOR_NAME = "journey-events"


@transaction.atomic
def payer_create(*, actor, name: str, contact: str = "") -> Payer:
    """A new payer."""
    authorize(actor, Action.MANAGE_CONTRACTS)
    payer = Payer(name=name.strip(), contact=contact.strip())
    check_model(payer, exclude=["api_user"])
    payer._history_user = actor
    payer.save()
    return payer


@transaction.atomic
def contract_create(
    *,
    actor,
    payer_id: int,
    name: str,
    price: Decimal,
    currency: str,
    remission_definition: str,
    milestone_months: int,
    rebate_kind: str,
    rebate_value: Decimal,
    starts_on: date,
    ends_on: date | None = None,
    product_id: int | None = None,
    product_name: str = "",
) -> Contract:
    """A new contract of a payer for one product."""
    authorize(actor, Action.MANAGE_CONTRACTS)
    if product_id is None and not product_name.strip():
        raise InvalidInput("Name the product.", field_errors={"product": ["Choose a product or type its name."]})
    contract = Contract(
        payer_id=payer_id,
        name=name.strip(),
        product_id=product_id,
        product_name=product_name.strip(),
        price=price,
        currency=(currency or "").strip().upper(),
        remission_definition=remission_definition,
        milestone_months=milestone_months,
        rebate_kind=rebate_kind,
        rebate_value=rebate_value,
        starts_on=starts_on,
        ends_on=ends_on,
    )
    check_model(contract)
    contract._history_user = actor
    contract.save()
    return contract


def enrolment_create(*, actor, contract_id: int, journey_id: int, now: datetime | None = None) -> ContractEnrolment:
    """Link a patient's journey to a contract (one contract per journey), with its status computed at once."""
    authorize(actor, Action.MANAGE_CONTRACTS)
    now = now or timezone.now()
    with transaction.atomic():
        contract = Contract.objects.filter(pk=contract_id).first()
        if contract is None:
            raise InvalidInput("No such contract.", field_errors={"contract": ["Choose a contract."]})
        journey = Journey.objects.select_for_update().filter(pk=journey_id).first()
        if journey is None:
            raise InvalidInput("No such journey.", field_errors={"journey": ["Choose a patient's journey."]})
        if ContractEnrolment.objects.filter(journey_id=journey_id).exists():
            raise InvalidInput(
                "This journey is already under a contract.", field_errors={"journey": ["Already under a contract."]}
            )
        enrolment = ContractEnrolment(contract=contract, journey=journey, enrolled_at=now, enrolled_by=actor)
        enrolment._history_user = actor
        try:
            with transaction.atomic():
                enrolment.save()
        except IntegrityError as error:  # a second enrolment made in the same moment by someone else
            raise InvalidInput(
                "This journey is already under a contract.", field_errors={"journey": ["Already under a contract."]}
            ) from error
        _refresh([enrolment.pk], now=now, actor=actor)
    enrolment.refresh_from_db()
    return enrolment


@dataclass(frozen=True)
class RefreshResult:
    looked_at: int
    changed: int
    told: int


def enrolments_refresh(*, enrolment_ids=None, now: datetime | None = None) -> RefreshResult:
    """Recompute and store the status of the given enrolments (all when None). Safe to run twice: a status
    that did not change writes nothing, tells nobody and leaves no history row."""
    now = now or timezone.now()
    ids = (
        list(ContractEnrolment.objects.values_list("id", flat=True).order_by("id"))
        if enrolment_ids is None
        else list(enrolment_ids)
    )
    looked_at = changed = told = 0
    for start in range(0, len(ids), REFRESH_CHUNK):
        with transaction.atomic():
            result = _refresh(ids[start : start + REFRESH_CHUNK], now=now, actor=None)
        looked_at += result.looked_at
        changed += result.changed
        told += result.told
    return RefreshResult(looked_at, changed, told)


def enrolments_refresh_changed(*, now: datetime | None = None) -> RefreshResult:
    """Refresh the enrolments whose journeys had an event (a step recorded, Day 0 moved, a withdrawal) since the
    last run. The cursor is claimed with a conditional update, so two workers never refresh the same events."""
    now = now or timezone.now()
    cursor, _ = RefreshCursor.objects.get_or_create(name=CURSOR_NAME)
    newest = JourneyEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    if newest <= cursor.last_event_id:
        return RefreshResult(0, 0, 0)
    claimed = RefreshCursor.objects.filter(pk=cursor.pk, last_event_id=cursor.last_event_id).update(last_event_id=newest)
    if claimed != 1:
        return RefreshResult(0, 0, 0)
    journey_ids = JourneyEvent.objects.filter(id__gt=cursor.last_event_id, id__lte=newest).values("journey_id")
    ids = ContractEnrolment.objects.filter(journey_id__in=journey_ids).values_list("id", flat=True)
    return enrolments_refresh(enrolment_ids=list(ids), now=now)


def _refresh(enrolment_ids, *, now: datetime, actor) -> RefreshResult:
    enrolments = list(
        selectors.enrolments_with_context()
        .select_related("journey__patient")
        .select_for_update(of=("self",))
        .filter(id__in=enrolment_ids)
    )
    standings = selectors.enrolment_standings(enrolments, now=now)
    changed = told = 0
    for enrolment in enrolments:
        standing = standings[enrolment.id]
        new = {
            "status": standing.status,
            "status_reason": standing.reason[:120],
            "status_since": standing.since,
            "milestone_on": standing.milestone_on,
            "infusion_on": enrolment.journey.day0_actual,
        }
        if all(getattr(enrolment, name) == value for name, value in new.items()):
            continue
        before = enrolment.status
        for name, value in new.items():
            setattr(enrolment, name, value)
        enrolment.refreshed_at = now
        enrolment.version += 1
        enrolment._history_user = actor
        enrolment._change_reason = f"Status {before} → {standing.status}" if before != standing.status else "Status recomputed"
        enrolment.save()
        changed += 1
        if before != standing.status and standing.status in TOLD_STATUSES:
            told += _tell_coordinators(enrolment, now=now)
    if changed:
        log.info("contract enrolments refreshed: %s changed of %s", changed, len(enrolments))
    return RefreshResult(len(enrolments), changed, told)


def _tell_coordinators(enrolment: ContractEnrolment, *, now: datetime) -> int:
    """The bell of the patient's coordinator (every active coordinator when none is named): no name in the
    title, the patient page one click away."""
    from notifications.models import Notification, ReminderKind
    from staff.models import User

    patient = enrolment.journey.patient
    if patient.coordinator_id:
        recipients = [patient.coordinator_id]
    else:
        recipients = list(User.objects.filter(groups__name=Role.COORDINATOR, is_active=True).values_list("id", flat=True))
    status = ContractStatus(enrolment.status).label.lower()
    Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=pk,
                kind=ReminderKind.ESCALATION if enrolment.status == ContractStatus.FAILED else ReminderKind.UPCOMING,
                title=f"Outcome contract {status}: {enrolment.contract.name}"[:200],
                body=f"{enrolment.status_reason} Milestone {enrolment.milestone_on:%d %b %Y}.",
                link=reverse("patient_detail", args=[patient.public_id]),
                created_at=now,
            )
            for pk in set(recipients)
        ]
    )
    return len(set(recipients))


def export_record(*, actor, filters: dict, row_count: int) -> ContractExport:
    """Record who exports the enrolment list before it is streamed (prices and statuses leave carclinic)."""
    authorize(actor, Action.VIEW_CONTRACTS)
    authorize(actor, Action.EXPORT_DATA)
    return ContractExport.objects.create(
        exported_by=actor,
        exported_at=timezone.now(),
        filters={k: v for k, v in filters.items() if v not in (None, "")},
        row_count=row_count,
    )


def payer_link_api_client(*, actor, payer_id: int, user) -> Payer:
    """Let an API client (role "payer") speak for a payer: it then reads this payer's enrolments only."""
    authorize(actor, Action.MANAGE_CONTRACTS)
    if Role.PAYER not in user.roles:
        raise InvalidInput("Not a payer's API client.", field_errors={"api_client": ["Make the client with role payer."]})
    with transaction.atomic():
        payer = Payer.objects.select_for_update().get(pk=payer_id)
        payer.api_user = user
        payer._history_user = actor
        payer.save()
    return payer
