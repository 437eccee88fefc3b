from django.db import migrations


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="manufacturer")


class Migration(migrations.Migration):
    dependencies = [("manufacturing", "0001_product_road"), ("staff", "0003_integration_group")]
    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
