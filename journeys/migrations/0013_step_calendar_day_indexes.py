"""Partial indexes for the planning calendar: done steps by the time they were performed, and the few done
steps without that time by their due day. With step_pending_due_idx (pending steps by due day) the calendar's
three cases are each read through an index over the range shown, whatever the number of patients."""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0012_protocol_infusion_rest_days"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="step",
            index=models.Index(fields=["performed_at"], condition=Q(status="done"), name="step_done_performed_idx"),
        ),
        migrations.AddIndex(
            model_name="step",
            index=models.Index(
                fields=["due_on"], condition=Q(status="done", performed_at__isnull=True), name="step_done_undated_due_idx"
            ),
        ),
    ]
