"""A small protocol with two remission visits, journeys infused on a given Day 0 (laid out in bulk), and a
contract to enrol them under. Visits are recorded by updating the rows: these tests are about the contract
status, not about recording a step (journeys' tests cover that)."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from contracts.models import Contract, ContractEnrolment, Payer
from journeys.models import Step, StepStatus
from tests.factories import bulk_journeys, make_protocol

REMISSION_FIELDS = [
    {
        "name": "remission",
        "label": "Remission status",
        "type": "choice",
        "choices": [["doris", "DORIS"], ["lldas", "LLDAS"], ["active", "Active disease"], ["not_assessable", "Not assessable"]],
        "required": True,
    },
    {"name": "disease_activity", "label": "Score", "type": "decimal", "min": 0, "max": 105},
]
BERLIN = ZoneInfo("Europe/Berlin")


def remission_protocol():
    return make_protocol(
        name="Contract test protocol",
        steps=[
            dict(
                stage=1, code="collect", anchor="leukapheresis", offset_days=0, responsible_role="nurse", milestone="collection"
            ),
            dict(
                stage=2,
                code="release",
                anchor="day0",
                offset_days=-7,
                responsible_role="coordinator",
                milestone="product_released",
            ),
            dict(stage=3, code="ld", anchor="day0", offset_days=-5, responsible_role="nurse"),
            dict(stage=4, code="infuse", anchor="day0", offset_days=0, responsible_role="nurse", milestone="infusion"),
            dict(
                stage=5,
                code="remission-month-3",
                anchor="day0",
                offset_days=90,
                window_before_days=7,
                window_after_days=7,
                grace_hours=48,
                responsible_role="physician",
                record_fields=REMISSION_FIELDS,
            ),
            dict(stage=5, code="visit-month-6", anchor="day0", offset_days=180, responsible_role="physician"),
            dict(
                stage=5,
                code="remission-month-24",
                anchor="day0",
                offset_days=730,
                window_before_days=30,
                window_after_days=30,
                grace_hours=72,
                responsible_role="physician",
                record_fields=REMISSION_FIELDS,
            ),
        ],
    )


def infused_journeys(*, protocol, count: int, day0: date):
    journeys = bulk_journeys(
        protocol=protocol, count=count, leukapheresis_date=day0 - timedelta(days=protocol.planned_vein_to_vein_days), stages=(5,)
    )
    for journey in journeys:
        journey.day0_actual = journey.day0_planned
    type(journeys[0]).objects.bulk_update(journeys, ["day0_actual"])
    return journeys


def record_visit(journey, code: str, remission: str, score="0", on: date | None = None):
    step = Step.objects.get(journey=journey, template__code=code)
    moment = datetime.combine(on or step.due_on, time(10), tzinfo=BERLIN)
    Step.objects.filter(pk=step.pk).update(
        status=StepStatus.DONE,
        record={"remission": remission, "disease_activity": score},
        performed_at=moment,
        completed_at=moment,
    )


def make_contract(*, payer: Payer | None = None, name="AOK SLE 2026", definition="doris", **fields) -> Contract:
    payer = payer or Payer.objects.create(name=f"Payer of {name}")
    values = dict(
        payer=payer,
        name=name,
        product_name="Erlangen CD19 CAR-T",
        price=Decimal("300000.00"),
        currency="EUR",
        remission_definition=definition,
        milestone_months=24,
        rebate_kind="percent",
        rebate_value=Decimal("50"),
        starts_on=date(2025, 1, 1),
    )
    values.update(fields)
    return Contract.objects.create(**values)


def enrol_all(contract, journeys, *, now=None):
    from django.utils import timezone

    return ContractEnrolment.objects.bulk_create(
        [ContractEnrolment(contract=contract, journey=j, enrolled_at=now or timezone.now()) for j in journeys]
    )
