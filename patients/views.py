from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from carclinic.forms import form_submit
from patients import services
from patients.forms import PatientEnrolForm
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
