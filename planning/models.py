"""What planning keeps: the audit of every export, and the secret addresses of the calendar feeds."""

import hashlib

from django.conf import settings
from django.db import models


class CalendarKind(models.TextChoices):
    """What a calendar entry asks of the ward that day (which step templates count as which kind:
    `planning.selectors.calendar_kinds_by_template`)."""

    COLLECTION = "collection", "Collection"
    LYMPHODEPLETION = "lymphodepletion", "Lymphodepletion starts"
    INFUSION = "infusion", "Infusion (Day 0)"
    DISCHARGE = "discharge", "Discharge"
    FOLLOW_UP = "follow_up", "Follow-up visit"


class ExportKind(models.TextChoices):
    OVERDUE = "overdue", "Overdue steps"
    DUE_THIS_WEEK = "due_this_week", "Steps due in the next 7 days"
    GRID = "grid", "Record-status grid"
    CALENDAR = "calendar", "Calendar"
    REMINDER_LOG = "reminder_log", "Reminder log"


class DataExport(models.Model):
    """One CSV export: who took what out of carclinic, when, under which filters, how many rows. Written
    before the first byte is streamed, so an export that breaks off half-way is still on record."""

    kind = models.CharField(max_length=20, choices=ExportKind.choices)
    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    exported_at = models.DateTimeField()
    filters = models.JSONField(default=dict, blank=True, help_text="The filters and range the export was taken under.")
    row_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-exported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.exported_by} at {self.exported_at:%Y-%m-%d %H:%M}"


def hash_feed_token(token: str) -> str:
    """Only the SHA-256 of a feed token is stored: a database dump does not hand out calendar addresses."""
    return hashlib.sha256(token.encode()).hexdigest()


class CalendarFeedToken(models.Model):
    """A user's secret calendar address. The token is shown once, when created; revoking it ends the feed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    token_hash = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=80, blank=True, help_text="Where the feed is used, e.g. 'Phone calendar'.")
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Calendar feed of {self.user} ({self.label or 'no label'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
