"""The demo clinic's outcome contracts: one payer, two contracts, and every demo patient infused so far enrolled
under one of them, their statuses computed from what their remission visits recorded. Called by load_demo by
name (journeys does not import this app); safe to run again."""

from datetime import date
from decimal import Decimal

from django.core.management.base import BaseCommand

from contracts import services
from contracts.models import Contract, ContractEnrolment, ContractStatus, Payer
from journeys.models import Journey
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
        counts = {status: ContractEnrolment.objects.filter(status=status).count() for status in ContractStatus.values}
        self.stdout.write("Demo contracts: " + ", ".join(f"{ContractStatus(s).label.lower()} {n}" for s, n in counts.items()))
