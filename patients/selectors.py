"""Reads of the patient register that the pages and the services share."""

from datetime import date

from django.db.models import Q, QuerySet

from patients.models import Consent, Patient, mrn_search_key, name_spelled_key

DUPLICATE_LIMIT = 10


def likely_duplicates(
    *, given_name: str, family_name: str, date_of_birth: date | None, mrn: str, exclude_id: int | None = None
) -> QuerySet[Patient]:
    """Registered patients who may be this person: the same name (either order, spelled either way) and
    date of birth, or the same MRN written with other case, spaces or dashes. One query."""
    same = Q(pk__in=[])
    if date_of_birth:
        names = {name_spelled_key(f"{given_name} {family_name}"), name_spelled_key(f"{family_name} {given_name}")}
        same |= Q(name_spelled_key__in=names, date_of_birth=date_of_birth)
    if key := mrn_search_key(mrn or ""):
        same |= Q(mrn_key=key)
    patients = Patient.objects.filter(same)
    if exclude_id is not None:
        patients = patients.exclude(pk=exclude_id)
    return patients.order_by("family_name", "given_name", "id")[:DUPLICATE_LIMIT]


def patient_consents(*, patient_id: int) -> QuerySet[Consent]:
    """The patient's consents, the latest signed first, with who took and who recorded each."""
    return (
        Consent.objects.filter(patient_id=patient_id)
        .select_related("taken_by", "recorded_by", "withdrawal_recorded_by")
        .order_by("-signed_on", "-id")
    )
