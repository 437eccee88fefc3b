"""Sign-in with a limit per address across user names (issue 12, finding 9): django-axes locks a user name
from an address after AXES_FAILURE_LIMIT wrong passwords; password spraying tries one or two passwords on
many names and never trips that. Here an address with `LOGIN_FAILURES_PER_ADDRESS` wrong passwords within
the cool-off time (any names) is refused before the password is even checked."""

from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.db.models import Sum
from django.shortcuts import render
from django.utils import timezone

from staff.client_ip import client_ip


def failures_from_address(address: str | None) -> int:
    if not address:
        return 0
    since = timezone.now() - timedelta(hours=settings.AXES_COOLOFF_TIME)
    total = AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since).aggregate(
        total=Sum("failures_since_start")
    )["total"]
    return total or 0


class ClinicLoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if failures_from_address(client_ip(request)) >= settings.LOGIN_FAILURES_PER_ADDRESS:
            return render(request, settings.AXES_LOCKOUT_TEMPLATE, {"per_address": True}, status=429)
        return super().post(request, *args, **kwargs)
