"""Patient services: who may be named as a patient's coordinator, nurse and treating physician."""

from datetime import date

import pytest

from carclinic.errors import InvalidInput
from patients.models import Indication, Patient, Sex
from patients.services import patient_enrol, patient_update


def enrol(actor, **carers) -> Patient:
    return patient_enrol(
        actor=actor,
        mrn="MRN-S-1",
        given_name="Lena",
        family_name="Lindqvist",
        date_of_birth=date(1990, 2, 3),
        sex=Sex.FEMALE,
        indication=Indication.LUPUS_NEPHRITIS,
        **carers,
    )


def test_enrol_names_the_coordinator_nurse_and_treating_physician(coordinator, nurse, physician):
    patient = enrol(coordinator, coordinator=coordinator, nurse=nurse, physician=physician)
    patient.refresh_from_db()
    assert (patient.coordinator, patient.nurse, patient.physician) == (coordinator, nurse, physician)
    assert patient.history.get().physician_id == physician.id


def test_a_carer_without_the_role_is_refused_with_a_field_error_and_nothing_saved(coordinator, nurse, viewer):
    with pytest.raises(InvalidInput) as refused:
        enrol(coordinator, physician=nurse, nurse=viewer)
    assert set(refused.value.field_errors) == {"physician", "nurse"}
    assert "is not an active physician" in refused.value.field_errors["physician"][0]
    assert not Patient.objects.exists()


def test_a_departed_physician_cannot_be_named(coordinator, make_user):
    departed = make_user("physician", is_active=False)
    patient = enrol(coordinator)
    with pytest.raises(InvalidInput):
        patient_update(actor=coordinator, patient_id=patient.id, expected_version=1, physician=departed)
    patient.refresh_from_db()
    assert patient.physician is None and patient.version == 1


@pytest.mark.django_db
def test_bulk_created_patients_are_findable_by_name_too():
    from patients.models import name_search_key

    Patient.objects.bulk_create(
        [
            Patient(
                mrn="MRN-B-1",
                given_name="Sörén",
                family_name="Øster Åberg",
                date_of_birth=date(1980, 1, 1),
                sex=Sex.MALE,
                indication=Indication.SLE,
            )
        ]
    )
    assert Patient.objects.get(mrn="MRN-B-1").name_key == name_search_key("soren oster aberg") == "soren oster aberg"


def test_letters_without_a_decomposition_are_searched_by_their_plain_form():
    from patients.models import name_search_key

    assert name_search_key("  Yılmaz   Łukasz Ærø ") == "yilmaz lukasz aero"
