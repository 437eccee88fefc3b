"""What an API client may see."""

from django.db.models import QuerySet

from apiclients.models import ApiClient
from patients.models import Patient


def patients_visible_to(*, client: ApiClient | None) -> QuerySet[Patient]:
    """Every patient for staff and for clients that see all; otherwise only those granted to the client.
    Anything outside this set answers 404, exactly as if it did not exist."""
    if client is None or client.sees_all_patients:
        return Patient.objects.all()
    return Patient.objects.filter(pk__in=client.patients.through.objects.filter(apiclient_id=client.pk).values("patient_id"))
