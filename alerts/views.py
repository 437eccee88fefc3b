"""Pages: the clinic's alert list and one alert with its acknowledgement. Thin: selectors and services."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from alerts import selectors, services
from alerts.forms import AlertAcknowledgeForm
from alerts.models import ClinicalAlert
from carclinic.errors import DomainError, NotPermitted
from staff.access import role_required
from staff.roles import Action, authorize_alert_acknowledgement


@role_required(Action.VIEW_CLINICAL)
def alert_list(request):
    return render(request, "alerts/list.html", {"alerts": selectors.recent_alerts()})


def _may_acknowledge(user, alert) -> bool:
    try:
        authorize_alert_acknowledgement(user, physician_only=alert.kind in services.PHYSICIAN_ONLY_KINDS)
    except NotPermitted:
        return False
    return alert.is_open


@role_required(Action.VIEW_CLINICAL)
@require_http_methods(["GET", "POST"])
def alert_detail(request, public_id):
    try:
        alert = selectors.alert_detail(public_id=public_id)
    except ClinicalAlert.DoesNotExist:
        raise Http404("No such alert.") from None
    may_acknowledge = _may_acknowledge(request.user, alert)
    form = AlertAcknowledgeForm(request.POST or None, initial={"version": alert.version})
    if request.method == "POST":
        if not alert.is_open:
            # Someone acknowledged it while this form was open: show who, never a second signature.
            return render(request, "alerts/detail.html", {"alert": alert, "form": None, "may_acknowledge": False}, status=409)
        if not may_acknowledge:
            raise PermissionDenied(NotPermitted(Action.ACKNOWLEDGE_ALERT).message)
        if form.is_valid():
            try:
                services.alert_acknowledge(
                    actor=request.user,
                    alert_id=alert.id,
                    password=form.cleaned_data["password"],
                    note=form.cleaned_data["note"],
                    expected_version=form.cleaned_data["version"],
                )
            except DomainError as error:
                for field, errors in error.field_errors.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
                if not error.field_errors:
                    form.add_error(None, error.message)
            else:
                messages.success(request, "Alert acknowledged; its escalation has stopped.")
                return redirect("alert_detail", public_id=alert.public_id)
    return render(
        request,
        "alerts/detail.html",
        {"alert": alert, "form": form, "may_acknowledge": may_acknowledge},
        status=400 if form.errors else 200,
    )
