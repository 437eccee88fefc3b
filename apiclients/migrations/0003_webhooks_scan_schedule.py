"""Under celery beat (DatabaseScheduler): the webhook scan every minute, the purge of stored
Idempotency-Key answers every hour."""

from django.db import migrations

TASK_NAME = "apiclients: webhooks scan"
PURGE_NAME = "apiclients: purge idempotency answers"


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={"task": "apiclients.tasks.webhooks_scan_task", "interval": every_minute}
    )
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name=PURGE_NAME, defaults={"task": "apiclients.tasks.idempotent_requests_purge_task", "interval": every_hour}
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[TASK_NAME, PURGE_NAME]).delete()


class Migration(migrations.Migration):
    dependencies = [("apiclients", "0002_webhooks"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(schedule, unschedule)]
