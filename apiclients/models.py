"""Outside systems that call the REST API (an EHR integration engine, a payer, a registry) and what
the API remembers about their requests.

A key is shown once, when it is made; only its SHA-256 is stored, so a copy of the database does not
give anyone a working key.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from patients.models import Patient
from staff.roles import Role

DEFAULT_THROTTLE_RATE = "600/min"


class ApiClientRole(models.TextChoices):
    VIEWER = Role.VIEWER.value, "Viewer: reads patients, statuses and journeys"
    INTEGRATION = Role.INTEGRATION.value, "Integration: reads, and records step completions"
    MANUFACTURER = Role.MANUFACTURER.value, "Manufacturer: reads and updates its own maker's manufacturing orders"
    PAYER = Role.PAYER.value, "Payer: reads its own contracts' enrolments (status and dates only)"


class ApiClient(models.Model):
    """A named outside system. It acts through its own service user, so every write it makes is
    attributed to it in the journey's events and the history tables."""

    name = models.SlugField(max_length=60, unique=True)
    role = models.CharField(max_length=16, choices=ApiClientRole.choices, default=ApiClientRole.VIEWER)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client")
    key_prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, used to find it.")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole key, hex.")
    throttle_rate = models.CharField(
        max_length=20, default=DEFAULT_THROTTLE_RATE, help_text='Requests allowed per period, e.g. "600/min" or "10000/hour".'
    )
    # Least privilege (issue 12, 12): a new client sees no patient until patients are granted or this is switched
    # on. Clients made before keep what they had (the migration only changes the default).
    sees_all_patients = models.BooleanField(
        default=False,
        help_text="On: every patient. Off: only the patients granted to it (a payer sees its own insured).",
    )
    patients = models.ManyToManyField(
        Patient, blank=True, related_name="+", help_text="Patients this client may see when it does not see all."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"API client {self.name}"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IdempotentRequest(models.Model):
    """The first answer to a POST sent with an `Idempotency-Key`: a retry with the same key gets this
    answer back instead of recording the step a second time. Written in the same transaction as the
    change it describes, so the answer exists if and only if the change does."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path, If-Match and body.")
    response_status = models.PositiveSmallIntegerField()
    # Text, not JSONField: jsonb would reorder the keys, and a replay should be the first answer verbatim.
    response_body = models.TextField()
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]


class WebhookEvent(models.TextChoices):
    STAGE_CHANGED = "stage.changed", "A stage started or was completed"
    STEP_OVERDUE = "step.overdue", "A step became overdue"


class WebhookEndpoint(models.Model):
    """A URL an API client asked to be told at. Payloads carry ids only; the client reads the rest
    through the API with its key, so nothing clinical travels to a URL that might be misconfigured."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    # Kept in clear because signing needs it; shown once when the endpoint is made.
    secret = models.CharField(max_length=64)
    events = models.JSONField(default=list, help_text="Which WebhookEvent values to send.")
    is_active = models.BooleanField(default=True)
    # Journey events up to this id have been turned into deliveries (the scan's cursor).
    last_event_id = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Webhook {self.pk} of {self.client.name}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


class WebhookDelivery(models.Model):
    """One message to one endpoint. Created once (unique per endpoint and `dedupe_key`), then sent until
    the receiver answers 2xx or the attempts run out; a lost Celery task is picked up by the next scan."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=WebhookEvent.choices)
    dedupe_key = models.CharField(max_length=120)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=200, blank=True, help_text="HTTP status or error class; never a body.")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "dedupe_key"], name="webhook_delivery_once_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"), name="webhook_due_idx"),
        ]
