"""Every write to a patient's record leaves a history row saying who changed what."""

from datetime import date
from decimal import Decimal

from patients.models import Consent, Indication, Measurement, Patient, Sex
from patients.services import consent_record, measurement_record, patient_enrol, patient_update


def enrol(actor) -> Patient:
    return patient_enrol(
        actor=actor,
        mrn="MRN-H-1",
        given_name="Hanna",
        family_name="Huber",
        date_of_birth=date(1985, 6, 1),
        sex=Sex.FEMALE,
        indication=Indication.SLE,
    )


def test_enrol_and_update_keep_who_and_what(coordinator, nurse):
    patient = enrol(coordinator)
    created = patient.history.get()
    assert (created.history_type, created.history_user) == ("+", coordinator)

    patient = patient_update(
        actor=nurse,
        patient_id=patient.id,
        expected_version=1,
        phone="+49 9131 85 0",
        indication=Indication.OTHER,
        indication_other="Dermatomyositis",
    )
    changed = patient.history.latest()
    assert (changed.history_type, changed.history_user) == ("~", nurse)
    delta = changed.diff_against(created)
    assert set(delta.changed_fields) == {"phone", "indication", "indication_other", "version"}
    by_field = {change.field: (change.old, change.new) for change in delta.changes}
    assert by_field["indication"] == (Indication.SLE, Indication.OTHER)
    assert by_field["phone"] == ("", "+49 9131 85 0")
    assert patient.history.count() == 2


def test_measurement_and_consent_keep_who_and_what(coordinator, nurse, physician):
    patient = enrol(coordinator)
    measurement = measurement_record(
        actor=nurse, patient_id=patient.id, measured_on=date(2026, 1, 5), height_cm=Decimal("168.0"), weight_kg=Decimal("61.5")
    )
    row = Measurement.history.get(id=measurement.id)
    assert (row.history_type, row.history_user, row.weight_kg) == ("+", nurse, Decimal("61.5"))

    consent = consent_record(actor=physician, patient_id=patient.id, signed_on=date(2026, 1, 2), document_version="v4")
    row = Consent.history.get(id=consent.id)
    assert (row.history_type, row.history_user, row.document_version) == ("+", physician, "v4")


def test_refused_update_leaves_no_history(coordinator):
    import pytest

    from carclinic.errors import InvalidInput, StaleVersion

    patient = enrol(coordinator)
    with pytest.raises(StaleVersion):
        patient_update(actor=coordinator, patient_id=patient.id, expected_version=7, phone="1")
    with pytest.raises(InvalidInput) as refused:
        patient_update(actor=coordinator, patient_id=patient.id, expected_version=1, indication=Indication.OTHER)
    assert "non_field_errors" in refused.value.field_errors or "indication_other" in refused.value.field_errors
    with pytest.raises(InvalidInput) as refused:
        patient_update(actor=coordinator, patient_id=patient.id, expected_version=1, date_of_birth=date(2999, 1, 1))
    assert refused.value.field_errors["date_of_birth"]
    assert patient.history.count() == 1
