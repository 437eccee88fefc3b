from django.db import migrations, models


def fill_name_keys(apps, schema_editor):
    from patients.models import name_search_key

    Patient = apps.get_model("patients", "Patient")
    patients = list(Patient.objects.only("id", "given_name", "family_name"))
    for patient in patients:
        patient.name_key = name_search_key(f"{patient.given_name} {patient.family_name}")
    Patient.objects.bulk_update(patients, ["name_key"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0003_patient_treating_physician"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="name_key",
            field=models.CharField(blank=True, editable=False, max_length=201),
        ),
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop),
    ]
