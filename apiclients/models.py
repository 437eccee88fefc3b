"""Outside systems that call the REST API (an EHR integration engine, a payer, a registry) and what
the API remembers about their requests.

A key is shown once, when it is made; only its SHA-256 is stored, so a copy of the database does not
give anyone a working key.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from patients.models import Patient
from staff.roles import Role

DEFAULT_THROTTLE_RATE = "600/min"


class ApiClientRole(models.TextChoices):
    VIEWER = Role.VIEWER.value, "Viewer: reads patients, statuses and journeys"
    INTEGRATION = Role.INTEGRATION.value, "Integration: reads, and records step completions"


class ApiClient(models.Model):
    """A named outside system. It acts through its own service user, so every write it makes is
    attributed to it in the journey's events and the history tables."""

    name = models.SlugField(max_length=60, unique=True)
    role = models.CharField(max_length=16, choices=ApiClientRole.choices, default=ApiClientRole.VIEWER)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client")
    key_prefix = models.CharField(max_length=16, unique=True, help_text="Public part of the key, used to find it.")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole key, hex.")
    throttle_rate = models.CharField(max_length=20, default=DEFAULT_THROTTLE_RATE,
                                     help_text='Requests allowed per period, e.g. "600/min" or "10000/hour".')
    sees_all_patients = models.BooleanField(
        default=True,
        help_text="Off: the client sees only the patients granted to it (a payer sees its own insured).",
    )
    patients = models.ManyToManyField(Patient, blank=True, related_name="+",
                                      help_text="Patients this client may see when it does not see all.")
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


