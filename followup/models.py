"""What follow-up keeps: the questionnaire links sent to patients in years 6–15, and the audit of each."""

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from journeys.models import Step
from patients.models import Patient


def hash_link_token(token: str) -> str:
    """Only the SHA-256 of a link's token is stored: a database dump does not hand out questionnaires."""
    return hashlib.sha256(token.encode()).hexdigest()


class QuestionnaireLink(models.Model):
    """One e-mailed link to a year's contact questionnaire. Created by staff; the e-mail task claims it and
    sets the token (its hash only); the patient's answer claims it once (`answered_at`); a nurse then
    signs the step with the answers prefilled (`reviewed_at`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    # Blank until the e-mail task claims the link: the raw token exists only in the e-mail it sends.
    token_hash = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answers = models.JSONField(default=dict, blank=True, help_text="The patient's answers, by the step's record fields.")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], condition=~Q(token_hash=""), name="questionnaire_token_unique"),
        ]

    def __str__(self) -> str:
        return f"Questionnaire link {self.public_id}"

    @property
    def awaiting_review(self) -> bool:
        return self.answered_at is not None and self.reviewed_at is None


class QuestionnaireEventKind(models.TextChoices):
    REQUESTED = "requested", "Link requested"
    SENT = "sent", "E-mail sent"
    ANSWERED = "answered", "Answered by the patient"
    REVIEWED = "reviewed", "Reviewed and signed by staff"


class QuestionnaireEvent(models.Model):
    """The audit of a link: who asked for it, when the e-mail went, when the patient answered, who signed."""

    link = models.ForeignKey(QuestionnaireLink, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=QuestionnaireEventKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    # The client address of an answer (rate limits and misuse), never the answers themselves.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
