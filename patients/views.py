from django.contrib import messages
from django.forms.models import model_to_dict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from carclinic.forms import form_submit
from patients import services
from patients.forms import MeasurementForm, PatientDetailsForm, PatientEnrolForm
from patients.models import Patient
from staff.access import role_required
from staff.roles import Action


@role_required(Action.ENROL_PATIENT)
@require_http_methods(["GET", "POST"])
def patient_enrol(request):
    from staff.roles import Role

    # The coordinator enrolling a patient usually coordinates that patient's care.
    initial = {"coordinator": request.user.pk} if Role.COORDINATOR in request.user.roles else {}
    form = PatientEnrolForm(request.POST or None, initial=initial)
    submission = form_submit(request, form, lambda data: services.patient_enrol(actor=request.user, **data))
    if submission.done:
        messages.success(request, "Patient enrolled. Start a journey when the leukapheresis date is known.")
        # The patient page belongs to journeys; patients knows nothing of it but its URL name.
        return redirect("patient_detail", public_id=submission.result.public_id)
    return render(request, "patients/enrol.html", {"form": form}, status=submission.status)


@role_required(Action.EDIT_PATIENT)
@require_http_methods(["GET", "POST"])
def patient_edit(request, public_id):
    patient = get_object_or_404(Patient, public_id=public_id)
    initial = {**model_to_dict(patient, fields=PatientDetailsForm.base_fields), "version": patient.version}
    form = PatientDetailsForm(request.POST or None, initial=initial)
    # Only what was changed goes to the service: saving a new phone number must not trip over a carer
    # who has since changed role.
    submission = form_submit(request, form, lambda data: services.patient_update(
        actor=request.user, patient_id=patient.id, expected_version=data.pop("version"),
        **{name: value for name, value in data.items() if form.initial.get(name) != _stored(value)}))
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
    submission = form_submit(request, form, lambda data: services.measurement_record(
        actor=request.user, patient_id=patient.id, **data))
    if submission.done:
        measurement = submission.result
        messages.success(request, f"Height and weight recorded: body surface area {measurement.body_surface_area_m2} m².")
        return redirect("patient_detail", public_id=patient.public_id)
    return render(request, "patients/measurement.html", {"form": form, "patient": patient}, status=submission.status)
