"""What the registry app keeps: the audit of every export it hands out (a metrics table, the registry file)."""

from django.conf import settings
from django.db import models


class ExportKind(models.TextChoices):
    VEIN_TO_VEIN = "vein_to_vein", "Vein-to-vein time"
    TURNAROUND = "turnaround", "Manufacturing turnaround"
    ON_TIME = "on_time", "Steps on time"
    LENGTH_OF_STAY = "length_of_stay", "Length of stay"
    GRADES = "grades", "CRS and ICANS grades"
    FOLLOW_UP = "follow_up", "Follow-up completeness"
    STAGES = "stages", "Patients per stage"
    REGISTRY = "registry", "Registry export"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    NDJSON = "ndjson", "FHIR R4 NDJSON"


class ExportChannel(models.TextChoices):
    PAGE = "page", "Metrics page"
    API = "api", "API (registry client)"
    COMMAND = "command", "manage.py export_registry"


class RegistryExport(models.Model):
    """One export: who took what, when, through which door, under which filters, for how many rows (a metrics
    table) or patients (the registry file). Written before the first byte is streamed, so an export that
    breaks off half-way is still on record."""

    kind = models.CharField(max_length=20, choices=ExportKind.choices)
    format = models.CharField(max_length=8, choices=ExportFormat.choices, default=ExportFormat.CSV)
    channel = models.CharField(max_length=8, choices=ExportChannel.choices)
    # The command runs on the server without a signed-in user: it keeps the operating-system account instead.
    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    exported_by_label = models.CharField(max_length=150, help_text="The user, API client or server account.")
    exported_at = models.DateTimeField()
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-exported_at", "-id"]
        indexes = [models.Index(fields=["exported_at"], name="registry_export_at_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.exported_by_label} at {self.exported_at:%Y-%m-%d %H:%M}"


# The computed_by_label of a snapshot the beat task computed.
SCHEDULED = "scheduled"


class MetricsSnapshot(models.Model):
    """The metrics page's tables for one date range, as computed at `computed_at`: the page reads this row
    (one query) instead of aggregating over every step on each request, and says how old it is. The
    default range is refreshed by a Celery beat task; another range is computed the first time it is asked
    for, and again when it is older than METRICS_SNAPSHOT_MAX_AGE_MINUTES or someone asks to recompute."""

    # "all" for the default range (no dates), else "<from>..<to>" with "-" for an open end: one row per range.
    range_key = models.CharField(max_length=32, unique=True)
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    computed_at = models.DateTimeField()
    # Empty for the scheduled refresh; the user whose request computed it otherwise.
    computed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    computed_by_label = models.CharField(max_length=150, help_text='"scheduled", or the user who asked.')
    # How long the computation took: the background cost the page no longer pays.
    duration_ms = models.PositiveIntegerField(default=0)
    tables = models.JSONField()

    class Meta:
        ordering = ["range_key"]

    def __str__(self) -> str:
        return f"Metrics {self.range_key} as of {self.computed_at:%Y-%m-%d %H:%M}"

    @property
    def is_scheduled(self) -> bool:
        return self.computed_by_label == SCHEDULED
