"""Reminders as a durable outbox, what they become in the app, and who wants what by email.

A reminder row is created once per (step, kind, recipient, channel) — the unique constraint makes a
second scan, a redelivered task or a second worker harmless — and is then claimed, delivered and
marked sent. Sending can fail and retry without losing or repeating the row (healthchecks' `Flip`).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from journeys.models import Step, StepTemplate


class ReminderKind(models.TextChoices):
    UPCOMING = "upcoming", "Coming up"
    DUE_TODAY = "due_today", "Due today"
    OVERDUE = "overdue", "Overdue"
    ESCALATION = "escalation", "Escalation"
    DIGEST = "digest", "Daily digest"


STEP_KINDS = (ReminderKind.UPCOMING, ReminderKind.DUE_TODAY, ReminderKind.OVERDUE, ReminderKind.ESCALATION)


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    IN_APP = "in_app", "In the app"
    WEBHOOK = "webhook", "Webhook"


class ReminderState(models.TextChoices):
    PENDING = "pending", "Scheduled"
    SENDING = "sending", "Being sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"
    CANCELLED = "cancelled", "Cancelled"


class Reminder(models.Model):
    """One message to one person on one channel about one step (or one day, for the digest)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.CASCADE, related_name="reminders")
    # The step's due day when the reminder was planned (or the day a digest covers). Part of the unique
    # key: when Day 0 moves, the step's reminders for the old date are cancelled and new ones planned.
    for_day = models.DateField()
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    state = models.CharField(max_length=16, choices=ReminderState.choices, default=ReminderState.PENDING)
    due_at = models.DateTimeField(help_text="When it is meant to go out.")
    send_after = models.DateTimeField(help_text="Not before: the due time, moved by a snooze or a retry's backoff.")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    cancel_reason = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["step", "kind", "recipient", "channel", "for_day"],
                condition=Q(step__isnull=False),
                name="reminder_once_per_step_kind_recipient_channel",
            ),
            models.UniqueConstraint(
                fields=["recipient", "for_day", "channel"],
                condition=Q(kind="digest"),
                name="reminder_one_digest_per_day",
            ),
            models.CheckConstraint(
                condition=Q(kind="digest", step__isnull=True) | (~Q(kind="digest") & Q(step__isnull=False)),
                name="reminder_step_unless_digest",
            ),
            models.CheckConstraint(condition=~Q(state="sent") | Q(sent_at__isnull=False), name="reminder_sent_has_time"),
            models.CheckConstraint(condition=~Q(state="cancelled") | ~Q(cancel_reason=""), name="reminder_cancel_has_reason"),
        ]
        indexes = [
            # The sender's question: "what is due now?", and the reclaim of claims whose worker died.
            # (Lookups by step and kind use the unique constraint's index, which starts with them.)
            models.Index(fields=["send_after"], condition=Q(state="pending"), name="reminder_pending_send_idx"),
            models.Index(fields=["claimed_at"], condition=Q(state="sending"), name="reminder_sending_claim_idx"),
            models.Index(fields=["claim_token"], condition=Q(claim_token__isnull=False), name="reminder_claim_token_idx"),
            models.Index(fields=["due_at"], name="reminder_due_idx"),
        ]

    def __str__(self) -> str:
        return f"Reminder {self.public_id} ({self.kind}, {self.channel}, {self.state})"


class ReminderEvent(models.Model):
    """Audit of what a person did to a reminder (snooze, cancel) and of a send that gave up."""

    class Action(models.TextChoices):
        SNOOZED = "snoozed", "Snoozed"
        CANCELLED = "cancelled", "Cancelled"
        GAVE_UP = "gave_up", "Gave up after repeated failures"

    reminder = models.ForeignKey(Reminder, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]


class Notification(models.Model):
    """What a person sees in the app's bell: one row per delivered group of reminders."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    # [{"text": ..., "journey": <public_id>, "step": <public_id>, "link": ...}]; ids, never names.
    items = models.JSONField(default=list, blank=True)
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "created_at"], name="notification_recipient_idx"),
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
        ]

    def __str__(self) -> str:
        return f"Notification {self.public_id}"


class UserNotificationPreference(models.Model):
    """Which kinds reach a person by email; the app always shows them. No row: email on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="preference_once_per_user_kind")]


class StepReminderPolicy(models.Model):
    """Per step template: how long before the step the 'coming up' reminder goes, and whether the
    morning-of-the-day one does. No row: the clinic's defaults from settings."""

    step_template = models.OneToOneField(StepTemplate, on_delete=models.CASCADE, related_name="reminder_policy")
    upcoming_lead_hours = models.PositiveIntegerField(null=True, blank=True, help_text="Blank: no 'coming up' reminder.")
    remind_on_the_day = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "step reminder policies"


class ScanRun(models.Model):
    """One row per overdue scan: the health view's 'last scan' and what it did."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    flagged = models.PositiveIntegerField(default=0)
    unflagged = models.PositiveIntegerField(default=0)
    reminders_created = models.PositiveIntegerField(default=0)
    reminders_cancelled = models.PositiveIntegerField(default=0)
    # A sweep over every step (first scan, new day, hourly), not only what changed since the last scan.
    full = models.BooleanField(default=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["started_at"], name="scanrun_started_idx")]
