from django.db import migrations, models


def fill_keys(apps, schema_editor):
    from patients.models import mrn_search_key, name_spelled_key

    Patient = apps.get_model("patients", "Patient")
    patients = list(Patient.objects.only("id", "mrn", "given_name", "family_name"))
    for patient in patients:
        patient.name_spelled_key = name_spelled_key(f"{patient.given_name} {patient.family_name}")
        patient.mrn_key = mrn_search_key(patient.mrn)
    Patient.objects.bulk_update(patients, ["name_spelled_key", "mrn_key"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0004_patient_name_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="name_spelled_key",
            field=models.CharField(blank=True, editable=False, max_length=260),
        ),
        migrations.AddField(
            model_name="patient",
            name="mrn_key",
            field=models.CharField(blank=True, db_index=True, editable=False, max_length=32),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
    ]
