"""Once created the shipped default protocol; now a no-op, kept so existing databases stay consistent.

The shipped protocol is a data file, journeys/protocols/cd19-car-t-autoimmune.toml, loaded on `migrate`
by journeys.apps (post_migrate). On a database where this migration ran, version 1 came from here; its
content equals the file's, so `migrate` finds it and loads nothing new.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("journeys", "0002_initial")]
    operations = []
