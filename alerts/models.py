"""Clinical alerts: a finding that must reach a physician now (a CRS grade 2, any ICANS, a failed chain-of-
identity match, a positive pregnancy test), not at the next reminder scan.

An alert is raised once per finding (the unique `key`: a repeated task or two nurses recording at the same
moment make one alert), stays open until someone acknowledges it with a signature, and escalates to every
physician when nobody has by its `escalate_after`. Each message to a person on a channel is an
`AlertDelivery` row, claimed before it is sent, so a retry never sends it twice.

The app sits below journeys (journeys' services raise alerts): it refers to journeys' models by name only.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class AlertKind(models.TextChoices):
    CRS = "crs", "Cytokine release syndrome"
    ICANS = "icans", "Neurotoxicity (ICANS)"
    COI_MISMATCH = "coi_mismatch", "Chain-of-identity mismatch"
    PREGNANCY_POSITIVE = "pregnancy_positive", "Positive pregnancy test"
    ELIGIBILITY_FAILED = "eligibility_failed", "Eligibility criterion not met"
    CUSTODY_EXCURSION = "custody_excursion", "Custody excursion"
    SECONDARY_MALIGNANCY = "secondary_malignancy", "New malignancy"


class ClinicalAlert(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="alerts")
    journey = models.ForeignKey("journeys.Journey", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    step = models.ForeignKey("journeys.Step", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    # What raised it, e.g. "crs:<step public id>": the same finding raised again is the same alert.
    key = models.CharField(max_length=200, unique=True)
    # Words for the banner and the e-mail subject: clinical facts and ids, never the patient's name.
    summary = models.CharField(max_length=200)
    detail = models.JSONField(default=dict, blank=True)
    raised_at = models.DateTimeField()
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    escalate_after = models.DateTimeField(help_text="Unacknowledged by then, it goes to every physician.")
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledgement_note = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True) | Q(acknowledged_by__isnull=False),
                name="alert_acknowledged_has_signer",
            ),
        ]
        indexes = [
            # The escalation scan's question: "which open alerts are past their time?"
            models.Index(
                fields=["escalate_after"],
                condition=Q(acknowledged_at__isnull=True, escalated_at__isnull=True),
                name="alert_due_escalation_idx",
            ),
            models.Index(fields=["patient"], condition=Q(acknowledged_at__isnull=True), name="alert_open_patient_idx"),
        ]

    def __str__(self) -> str:
        return f"Alert {self.public_id} ({self.kind})"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None


class AlertChannel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Clinic pager webhook"


class AlertLevel(models.TextChoices):
    RAISED = "raised", "Raised"
    ESCALATED = "escalated", "Escalated"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "To send"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class AlertDelivery(models.Model):
    """One message about one alert to one person (or the pager) on one channel, at one level."""

    alert = models.ForeignKey(ClinicalAlert, on_delete=models.PROTECT, related_name="deliveries")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="alert_deliveries"
    )
    channel = models.CharField(max_length=16, choices=AlertChannel.choices)
    level = models.CharField(max_length=16, choices=AlertLevel.choices)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    send_after = models.DateTimeField()
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "recipient", "channel", "level"],
                condition=Q(recipient__isnull=False),
                name="alert_delivery_once_per_person",
            ),
            models.UniqueConstraint(
                fields=["alert", "channel", "level"], condition=Q(recipient__isnull=True), name="alert_delivery_once_to_pager"
            ),
            models.CheckConstraint(condition=~Q(state="sent") | Q(sent_at__isnull=False), name="alert_delivery_sent_has_time"),
        ]
        indexes = [
            models.Index(fields=["send_after"], condition=Q(state="pending"), name="alert_delivery_pending_idx"),
            models.Index(fields=["claimed_at"], condition=Q(state="sending"), name="alert_delivery_sending_idx"),
        ]
