from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from carclinic.errors import DomainError
from patients import services
from patients.forms import PatientEnrolForm
from staff.access import role_required
from staff.roles import Action, NotPermitted


@role_required(Action.ENROL_PATIENT)
@require_http_methods(["GET", "POST"])
def patient_enrol(request):
    from staff.roles import Role

    # The coordinator enrolling a patient usually coordinates that patient's care.
    initial = {"coordinator": request.user.pk} if Role.COORDINATOR in request.user.roles else {}
    form = PatientEnrolForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                patient = services.patient_enrol(actor=request.user, **form.cleaned_data)
            except NotPermitted as error:
                raise PermissionDenied(error.message) from error
            except DomainError as error:
                for field, field_messages in error.field_errors.items():
                    for message in field_messages:
                        form.add_error(field if field in form.fields else None, message)
                if not error.field_errors:
                    form.add_error(None, error.message)
                status = error.http_status
            else:
                messages.success(request, "Patient enrolled. Start a journey when the leukapheresis date is known.")
                # The patient page belongs to journeys; patients knows nothing of it but its URL name.
                return redirect("patient_detail", public_id=patient.public_id)
        else:
            status = 400
    return render(request, "patients/enrol.html", {"form": form}, status=status)
