from django.contrib import messages
from django.forms.models import model_to_dict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from carclinic.forms import form_submit
from patients import services
from patients.errors import LikelyDuplicate
from patients.forms import ConsentForm, ConsentWithdrawForm, MeasurementForm, PatientDetailsForm, PatientEnrolmentForm
from patients.models import Consent, Patient
from staff.access import role_required
from staff.roles import Action


@role_required(Action.ENROL_PATIENT)
@require_http_methods(["GET", "POST"])
def patient_enrol(request):
    from staff.roles import Role

    # The coordinator enrolling a patient usually coordinates that patient's care.
    initial = {"coordinator": request.user.pk} if Role.COORDINATOR in request.user.roles else {}
    form = PatientEnrolmentForm(request.POST or None, initial=initial)
    duplicates = []

    def enrol(data):
        confirmed = data.pop("confirm_not_duplicate", False)
        try:
            return services.patient_enrol(actor=request.user, duplicates_confirmed=confirmed, **data)
        except LikelyDuplicate as error:
            duplicates.extend(error.patients)
            form.ask_to_confirm()
            raise

    submission = form_submit(request, form, enrol)
    if submission.done:
        messages.success(request, "Patient enrolled. Start a journey when the leukapheresis date is known.")
        # The patient page belongs to journeys; patients knows nothing of it but its URL name.
        return redirect("patient_detail", public_id=submission.result.public_id)
    return render(request, "patients/enrol.html", {"form": form, "duplicates": duplicates}, status=submission.status)


@role_required(Action.EDIT_PATIENT)
@require_http_methods(["GET", "POST"])
def patient_edit(request, public_id):
    patient = get_object_or_404(Patient, public_id=public_id)
    initial = {**model_to_dict(patient, fields=PatientDetailsForm.base_fields), "version": patient.version}
    form = PatientDetailsForm(request.POST or None, initial=initial)
    # Only what was changed goes to the service: saving a new phone number must not trip over a carer
    # who has since changed role.
    submission = form_submit(
        request,
        form,
        lambda data: services.patient_update(
            actor=request.user,
            patient_id=patient.id,
            expected_version=data.pop("version"),
            **{name: value for name, value in data.items() if form.initial.get(name) != _stored(value)},
        ),
    )
    if submission.done:
        messages.success(request, "Details saved.")
        return redirect("patient_detail", public_id=patient.public_id)
    return render(request, "patients/edit.html", {"form": form, "patient": patient}, status=submission.status)


def _stored(value):
    # model_to_dict gives a carer's primary key; the form gives the person.
    return getattr(value, "pk", value)


@role_required(Action.EDIT_PATIENT)
@require_http_methods(["GET", "POST"])
def measurement_new(request, public_id):
    patient = get_object_or_404(Patient, public_id=public_id)
    form = MeasurementForm(request.POST or None, initial={"measured_on": timezone.localdate()})
    submission = form_submit(
        request, form, lambda data: services.measurement_record(actor=request.user, patient_id=patient.id, **data)
    )
    if submission.done:
        measurement = submission.result
        messages.success(request, f"Height and weight recorded: body surface area {measurement.body_surface_area_m2} m².")
        return redirect("patient_detail", public_id=patient.public_id)
    return render(request, "patients/measurement.html", {"form": form, "patient": patient}, status=submission.status)


# --- Consent --------------------------------------------------------------------------------------


@role_required(Action.EDIT_PATIENT)
@require_http_methods(["GET", "POST"])
def consent_new(request, public_id):
    patient = get_object_or_404(Patient, public_id=public_id)
    form = ConsentForm(request.POST or None, initial={"signed_on": timezone.localdate(), "taken_by": request.user.pk})
    submission = form_submit(
        request, form, lambda data: services.consent_record(actor=request.user, patient_id=patient.id, **data)
    )
    if submission.done:
        consent = submission.result
        messages.success(request, f"Consent recorded: {consent.get_kind_display()}, version {consent.document_version}.")
        return redirect(reverse("patient_detail", args=[patient.public_id]) + "#consent-heading")
    return render(
        request,
        "patients/consent_form.html",
        {
            "form": form,
            "patient": patient,
            "title": "Record a consent",
            "submit": "Record consent",
            "intro": "The signed form itself stays in the patient's file; this records that it exists.",
        },
        status=submission.status,
    )


@role_required(Action.EDIT_PATIENT)
@require_http_methods(["GET", "POST"])
def consent_withdraw(request, public_id, consent_id):
    patient = get_object_or_404(Patient, public_id=public_id)
    consent = get_object_or_404(Consent.objects.select_related("taken_by"), pk=consent_id, patient=patient)
    form = ConsentWithdrawForm(request.POST or None, initial={"withdrawn_on": timezone.localdate(), "version": consent.version})
    submission = form_submit(
        request,
        form,
        lambda data: services.consent_withdraw(
            actor=request.user,
            consent_id=consent.id,
            withdrawn_on=data["withdrawn_on"],
            reason=data["reason"],
            expected_version=data["version"],
        ),
    )
    if submission.done:
        messages.success(request, f"Withdrawal recorded: {consent.get_kind_display()}.")
        return redirect(reverse("patient_detail", args=[patient.public_id]) + "#consent-heading")
    return render(
        request,
        "patients/consent_form.html",
        {
            "form": form,
            "patient": patient,
            "consent": consent,
            "title": "Record a withdrawal of consent",
            "submit": "Record withdrawal",
            "danger": True,
            "intro": (
                f"{consent.get_kind_display()}, version {consent.document_version}, signed "
                f"{consent.signed_on:%d %b %Y}. The consent stays on record, marked withdrawn."
            ),
        },
        status=submission.status,
    )
