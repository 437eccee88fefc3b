"""The demo clinic's outcome contracts: one payer, two contracts, and every demo patient infused so far enrolled
under one of them, their statuses computed from what their remission visits recorded. Called by load_demo by
name (journeys does not import this app); safe to run again."""

from datetime import date
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.utils import timezone

from contracts import services
from contracts.models import Contract, ContractEnrolment, ContractStatus, Payer
from journeys import services as journey_services
from journeys.models import Journey, JourneyStatus, StepStatus
from staff.models import User
from staff.roles import Role

DEMO_PAYER = "Demo health insurer"


class Command(BaseCommand):
    help = "Load the demo clinic's payer, contracts and enrolments (skipped if there already)."

    def handle(self, *args, **options):
        actor = User.objects.filter(groups__name=Role.COORDINATOR, is_active=True).order_by("id").first()
        if actor is None:
            self.stdout.write("No coordinator to sign the demo contracts; run load_demo first.")
            return
        payer = Payer.objects.filter(name=DEMO_PAYER).first() or services.payer_create(
            actor=actor, name=DEMO_PAYER, contact="contracts@insurer.example"
        )
        doris = Contract.objects.filter(payer=payer, name="SLE: DORIS for 24 months").first() or services.contract_create(
            actor=actor,
            payer_id=payer.id,
            name="SLE: DORIS for 24 months",
            product_name="CD19 CAR-T (academic, Erlangen process)",
            price=Decimal("300000.00"),
            currency="EUR",
            remission_definition="doris",
            milestone_months=24,
            rebate_kind="percent",
            rebate_value=Decimal("50"),
            starts_on=date(2024, 1, 1),
        )
        lenient = Contract.objects.filter(payer=payer, name="Autoimmune: DORIS or LLDAS for 12 months").first() or (
            services.contract_create(
                actor=actor,
                payer_id=payer.id,
                name="Autoimmune: DORIS or LLDAS for 12 months",
                product_name="CD19 CAR-T (academic, Erlangen process)",
                price=Decimal("280000.00"),
                currency="EUR",
                remission_definition="doris_or_lldas",
                milestone_months=12,
                rebate_kind="amount",
                rebate_value=Decimal("100000.00"),
                starts_on=date(2024, 1, 1),
            )
        )
        infused = Journey.objects.filter(
            patient__mrn__startswith="DEMO", day0_actual__isnull=False, contract_enrolment__isnull=True
        ).order_by("day0_actual")
        for index, journey in enumerate(infused):
            contract = doris if index % 2 == 0 else lenient
            services.enrolment_create(actor=actor, contract_id=contract.id, journey_id=journey.id)
        self._every_status_shown(doris)
        counts = {status: ContractEnrolment.objects.filter(status=status).count() for status in ContractStatus.values}
        self.stdout.write("Demo contracts: " + ", ".join(f"{ContractStatus(s).label.lower()} {n}" for s, n in counts.items()))

    def _every_status_shown(self, contract: Contract) -> None:
        """The seeded visits put most patients in remission; so that the finance page shows a contract at risk and
        one failed, one patient's first remission visit is re-scored as active disease (never in remission yet:
        at risk) and another patient leaves the programme after the infusion (failed), both through journeys'
        services with a reason, as the ward would record them."""
        physician = User.objects.filter(groups__name=Role.PHYSICIAN, is_active=True).order_by("id").first()
        if physician is None:
            return
        today = timezone.localdate()
        enrolments = list(
            ContractEnrolment.objects.filter(contract=contract, status=ContractStatus.ON_TRACK, milestone_on__gt=today)
            .select_related("journey")
            .order_by("infusion_on")
        )
        if not ContractEnrolment.objects.filter(status=ContractStatus.AT_RISK).exists():
            for enrolment in enrolments:
                visits = list(
                    enrolment.journey.steps.filter(status=StepStatus.DONE, record__has_key="remission").order_by("due_on")
                )
                if len(visits) == 1:
                    first = visits[0]
                    journey_services.step_record_correct(
                        actor=physician,
                        step_id=first.id,
                        record={**first.record, "remission": "active", "disease_activity": "12"},
                        notes=first.notes,
                        reason="Re-scored at the review meeting: nephritis still active",
                    )
                    enrolments.remove(enrolment)
                    break
        if not ContractEnrolment.objects.filter(status=ContractStatus.FAILED).exists():
            for enrolment in enrolments:
                if enrolment.journey.status == JourneyStatus.ACTIVE:
                    journey_services.journey_withdraw(
                        actor=physician, journey_id=enrolment.journey_id, reason="Moved abroad; follow-up continues elsewhere"
                    )
                    break
        services.enrolments_refresh()
