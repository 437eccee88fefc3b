"""Outcome-based contracts: payers, their contracts (price, remission definition, milestone, what comes back
if the outcome fails) and each treated patient's enrolment, whose status is stored so that the finance page
and the payer's API read it in one indexed query.

Journeys knows nothing of this app; the status is computed from journeys' steps by
`contracts.selectors` with the rule in `clinical.contracts`, and stored by `contracts.services`.
"""

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from clinical import contracts as rule
from journeys.models import Journey
from manufacturing.models import Product


class RemissionDefinition(models.TextChoices):
    DORIS = "doris", "DORIS remission"
    DORIS_OR_LLDAS = "doris_or_lldas", "DORIS remission or LLDAS"


class RebateKind(models.TextChoices):
    PERCENT = "percent", "Percentage of the price"
    AMOUNT = "amount", "Fixed amount"


class ContractStatus(models.TextChoices):
    AWAITING_INFUSION = rule.AWAITING_INFUSION, "Awaiting infusion"
    ON_TRACK = rule.ON_TRACK, "On track"
    AT_RISK = rule.AT_RISK, "At risk"
    MET = rule.MET, "Met"
    FAILED = rule.FAILED, "Failed"


class Payer(models.Model):
    """An insurer or health system that pays for the therapy under outcome-based contracts."""

    name = models.CharField(max_length=120, unique=True)
    contact = models.CharField(max_length=200, blank=True, help_text="Who to write to about the contracts (name, e-mail).")
    # The API client that speaks for this payer (role "payer"): it reads only this payer's contracts' enrolments.
    api_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="payer"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contract(models.Model):
    """What a payer pays for one product, and what comes back if remission does not hold to the milestone."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payer = models.ForeignKey(Payer, on_delete=models.PROTECT, related_name="contracts")
    name = models.CharField(max_length=120, help_text="How finance names it, e.g. 'AOK 2027 SLE'.")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    product_name = models.CharField(max_length=120, blank=True, help_text="When the product is not one of ours.")
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(
        max_length=3, validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code, three capitals (EUR, USD, CHF).")]
    )
    remission_definition = models.CharField(max_length=20, choices=RemissionDefinition.choices)
    milestone_months = models.PositiveSmallIntegerField(default=24, help_text="Months from the infusion (Day 0).")
    rebate_kind = models.CharField(max_length=10, choices=RebateKind.choices)
    rebate_value = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="Percent of the price, or an amount in the contract's currency."
    )
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="Blank: open-ended. Enrolments stay after it ends.")
    version = models.PositiveIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        ordering = ["payer__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["payer", "name"], name="contract_name_unique_per_payer"),
            models.CheckConstraint(condition=Q(price__gte=0), name="contract_price_not_negative"),
            models.CheckConstraint(condition=Q(rebate_value__gte=0), name="contract_rebate_not_negative"),
            models.CheckConstraint(
                condition=~Q(rebate_kind="percent") | Q(rebate_value__lte=100), name="contract_rebate_percent_at_most_100"
            ),
            models.CheckConstraint(
                condition=Q(milestone_months__gte=1, milestone_months__lte=180), name="contract_milestone_1_to_180_months"
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")), name="contract_ends_after_start"
            ),
            models.CheckConstraint(condition=~Q(product__isnull=True, product_name=""), name="contract_names_its_product"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.payer})"

    @property
    def product_label(self) -> str:
        return self.product.name if self.product_id else self.product_name

    @property
    def amount_at_stake(self):
        """What comes back to the payer for one enrolment whose outcome fails."""
        return rule.amount_at_stake(price=self.price, rebate_kind=self.rebate_kind, rebate_value=self.rebate_value)


class ContractEnrolment(models.Model):
    """One treated patient's journey under one contract, with its status as last computed."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="enrolments")
    journey = models.OneToOneField(Journey, on_delete=models.PROTECT, related_name="contract_enrolment")
    status = models.CharField(max_length=20, choices=ContractStatus.choices, default=ContractStatus.AWAITING_INFUSION)
    status_reason = models.CharField(max_length=120, blank=True)
    status_since = models.DateField(null=True, blank=True, help_text="The day the status's evidence dates from.")
    infusion_on = models.DateField(null=True, blank=True)
    milestone_on = models.DateField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    enrolled_at = models.DateTimeField()
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    version = models.PositiveIntegerField(default=1)
    # Every write (enrolment, status change) is a history row: who, when, and the fields as they were.
    history = HistoricalRecords(excluded_fields=["refreshed_at"])

    class Meta:
        ordering = ["milestone_on", "id"]
        indexes = [models.Index(fields=["contract", "status"], name="enrolment_contract_status_idx")]

    def __str__(self) -> str:
        return f"Enrolment {self.public_id}"


class ContractExport(models.Model):
    """One CSV export of the finance page: who took it, when, how many rows (as planning audits its exports).
    Written before the first byte is streamed."""

    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    exported_at = models.DateTimeField()
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-exported_at", "-id"]


class RefreshCursor(models.Model):
    """The last journey event the incremental refresh has looked at (one row), so an idle minute costs one query."""

    name = models.CharField(max_length=40, unique=True)
    last_event_id = models.BigIntegerField(default=0)
