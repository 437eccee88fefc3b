"""Every write to a patient's record. Each service is one transaction and checks the actor's role."""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carclinic.errors import Conflict, InvalidInput, StaleVersion, check_model
from carclinic.plausible import check_not_future
from clinical.body import pounds_as_kg, weight_change_needs_confirmation, weight_change_percent
from clinical.numbers import rounded
from patients import selectors
from patients.errors import LikelyDuplicate
from patients.models import Consent, ConsentKind, Measurement, Patient
from staff.roles import Action, Role, authorize

PATIENT_EDITABLE_FIELDS = (
    "mrn",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "indication",
    "indication_other",
    "phone",
    "email",
    "coordinator",
    "nurse",
    "physician",
)

# Each named carer must hold the role the field names: a reminder for the coordinator that lands with a
# nurse, or an escalation with a viewer, is a reminder lost.
CARER_ROLES = {"coordinator": Role.COORDINATOR, "nurse": Role.NURSE, "physician": Role.PHYSICIAN}
# Who may explain a consent form and take the patient's signature.
CONSENT_TAKERS = {Role.PHYSICIAN, Role.COORDINATOR, Role.NURSE}


def _check_date_of_birth(value: date | None) -> None:
    check_not_future(value, field="date_of_birth", today=timezone.localdate())


def _check_carers(fields: dict) -> None:
    errors = {}
    for name, role in CARER_ROLES.items():
        person = fields.get(name)
        if person is not None and (not person.is_active or role not in person.roles):
            errors[name] = [f"{person.get_full_name() or person.get_username()} is not an active {role}."]
    if errors:
        raise InvalidInput("Some values need correcting.", field_errors=errors)


@transaction.atomic
def patient_enrol(*, actor, duplicates_confirmed: bool = False, **fields) -> Patient:
    """Register a new patient with the clinic. A person who looks already registered (same name and date
    of birth, or the same MRN written another way) raises LikelyDuplicate until `duplicates_confirmed`;
    the confirmation is kept in the patient's history."""
    authorize(actor, Action.ENROL_PATIENT)
    unknown = set(fields) - set(PATIENT_EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    _check_date_of_birth(fields.get("date_of_birth"))
    _check_carers(fields)
    patient = Patient(**fields)
    if patient.indication != "other":
        patient.indication_other = ""
    check_model(patient)
    duplicates = list(
        selectors.likely_duplicates(
            given_name=patient.given_name, family_name=patient.family_name, date_of_birth=patient.date_of_birth, mrn=patient.mrn
        )
    )
    if duplicates and not duplicates_confirmed:
        raise LikelyDuplicate(duplicates)
    patient._history_user = actor
    if duplicates:
        # Ids only: the history reason is shown beside names already, and ends up in exports.
        patient._change_reason = "Enrolled after confirming this is not the same person as " + ", ".join(
            f"MRN {other.mrn}" for other in duplicates
        )
    patient.save()
    return patient


@transaction.atomic
def patient_update(*, actor, patient_id: int, expected_version: int, **changes) -> Patient:
    """Change a patient's details; a stale `expected_version` raises StaleVersion instead of overwriting."""
    authorize(actor, Action.EDIT_PATIENT)
    unknown = set(changes) - set(PATIENT_EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    if patient.version != expected_version:
        raise StaleVersion("patient record", expected_version, patient.version)
    _check_date_of_birth(changes.get("date_of_birth"))
    _check_carers(changes)
    for name, value in changes.items():
        setattr(patient, name, value)
    if patient.indication != "other":
        patient.indication_other = ""
    check_model(patient)
    patient.version += 1
    patient._history_user = actor
    patient.save()
    return patient


def _check_weight_change(
    patient_id: int, measured_on: date, weight_kg: Decimal, *, confirmed: bool, percent: Decimal, within_days: int
) -> None:
    previous = (
        Measurement.objects.filter(patient_id=patient_id, measured_on__lte=measured_on).order_by("-measured_on", "-id").first()
    )
    if previous is None or confirmed:
        return
    days_apart = (measured_on - previous.measured_on).days
    if not weight_change_needs_confirmation(previous.weight_kg, weight_kg, days_apart, percent=percent, within_days=within_days):
        return
    change = rounded(weight_change_percent(previous.weight_kg, weight_kg), 0)
    message = (
        f"{weight_kg} kg is {'+' if change > 0 else '−'}{abs(change)} % from the previous weight, "
        f"{previous.weight_kg} kg on {previous.measured_on:%d %b %Y} ({days_apart} days earlier). "
        f"If the weight really changed, confirm it; if it was typed in pounds, {weight_kg} lb is "
        f"{pounds_as_kg(weight_kg)} kg."
    )
    raise InvalidInput(
        "The weight differs from the previous one: confirm it.",
        field_errors={"weight_kg": [message], "weight_change_confirmed": ["Tick “Yes, the weight changed” to record it."]},
    )


@transaction.atomic
def measurement_record(
    *,
    actor,
    patient_id: int,
    measured_on: date,
    height_cm: Decimal,
    weight_kg: Decimal,
    weight_change_confirmed: bool = False,
    weight_change_confirm_percent: Decimal | None = None,
    weight_change_within_days: int | None = None,
) -> Measurement:
    """Record height and weight on a date. A weight more than `weight_change_confirm_percent` off the previous one within
    `weight_change_within_days` (default: the settings WEIGHT_CHANGE_CONFIRM_PERCENT and WEIGHT_CHANGE_WITHIN_DAYS) is
    refused until `weight_change_confirmed`; the confirmation is in its history."""
    authorize(actor, Action.EDIT_PATIENT)
    check_not_future(measured_on, field="measured_on", today=timezone.localdate())
    # Serialise two recordings for one patient, so each is compared with the other's weight.
    Patient.objects.select_for_update().filter(pk=patient_id).first()
    _check_weight_change(
        patient_id,
        measured_on,
        Decimal(str(weight_kg)),
        confirmed=weight_change_confirmed,
        percent=Decimal(settings.WEIGHT_CHANGE_CONFIRM_PERCENT)
        if weight_change_confirm_percent is None
        else weight_change_confirm_percent,
        within_days=settings.WEIGHT_CHANGE_WITHIN_DAYS if weight_change_within_days is None else weight_change_within_days,
    )
    measurement = Measurement(
        patient_id=patient_id, measured_on=measured_on, height_cm=height_cm, weight_kg=weight_kg, recorded_by=actor
    )
    check_model(measurement)
    measurement._history_user = actor
    if weight_change_confirmed:
        measurement._change_reason = "Weight change confirmed by the person recording it"
    measurement.save()
    return measurement


@transaction.atomic
def consent_record(
    *, actor, patient_id: int, signed_on: date, document_version: str, kind: str = ConsentKind.TREATMENT, taken_by=None
) -> Consent:
    """Record a signed consent form: which kind, which version of the document, when, and who took it."""
    authorize(actor, Action.EDIT_PATIENT)
    if signed_on > timezone.localdate():
        raise InvalidInput("Some values need correcting.", field_errors={"signed_on": ["Cannot be in the future."]})
    if taken_by is not None and (not taken_by.is_active or not taken_by.roles & CONSENT_TAKERS):
        raise InvalidInput(
            "Some values need correcting.",
            field_errors={"taken_by": [f"{taken_by.get_full_name() or taken_by.get_username()} is not an active clinician."]},
        )
    consent = Consent(
        patient_id=patient_id,
        kind=kind,
        signed_on=signed_on,
        document_version=document_version.strip(),
        taken_by=taken_by,
        recorded_by=actor,
    )
    check_model(consent)
    consent._history_user = actor
    consent.save()
    return consent


@transaction.atomic
def consent_withdraw(*, actor, consent_id: int, withdrawn_on: date, reason: str, expected_version: int) -> Consent:
    """Record that the patient withdrew a consent. The consent stays, marked withdrawn, with who recorded
    it and why; a consent already withdrawn is not withdrawn again."""
    authorize(actor, Action.EDIT_PATIENT)
    consent = Consent.objects.select_for_update().get(pk=consent_id)
    if consent.withdrawn_on is not None:
        raise Conflict(f"This consent was already withdrawn on {consent.withdrawn_on:%d %b %Y}. Nothing was changed.")
    if consent.version != expected_version:
        raise StaleVersion("consent", expected_version, consent.version)
    errors = {}
    if withdrawn_on > timezone.localdate():
        errors["withdrawn_on"] = ["Cannot be in the future."]
    elif withdrawn_on < consent.signed_on:
        errors["withdrawn_on"] = [f"Cannot be before it was signed ({consent.signed_on:%d %b %Y})."]
    if not (reason or "").strip():
        errors["reason"] = ["Give a reason; it goes into the audit trail."]
    if errors:
        raise InvalidInput("Some values need correcting.", field_errors=errors)
    consent.withdrawn_on = withdrawn_on
    consent.withdrawal_reason = reason.strip()
    consent.withdrawal_recorded_by = actor
    consent.version += 1
    consent._history_user = actor
    consent._change_reason = reason.strip()
    consent.save()
    return consent
