"""Once added the record fields of the shipped default in place; now a no-op, kept so existing databases
stay consistent. The fields are in journeys/protocols/cd19-car-t-autoimmune.toml (see 0003)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("journeys", "0004_step_record_fields")]
    operations = []
