"""Idle sign-out: a ward computer left open must not stay signed in.

The session cookie is refreshed on every request (SESSION_SAVE_EVERY_REQUEST), and the dashboard polls
every few seconds, so the cookie alone would never expire on a screen nobody looks at. We therefore
keep the time of the last *real* request in the session; polling requests (marked with the
X-Clinic-Poll header by our templates) do not count as activity.
"""

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

LAST_ACTIVITY_KEY = "clinic_last_activity"
POLL_HEADER = "HTTP_X_CLINIC_POLL"


def is_poll(request) -> bool:
    return request.META.get(POLL_HEADER) == "1"


class IdleSignOutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            last = request.session.get(LAST_ACTIVITY_KEY)
            if last is not None and now - last > settings.SESSION_IDLE_TIMEOUT_SECONDS:
                logout(request)
                minutes = max(1, round(settings.SESSION_IDLE_TIMEOUT_SECONDS / 60))
                messages.info(request, f"You were signed out after {minutes} minutes without activity.")
                login_url = reverse("login")
                if request.headers.get("HX-Request"):
                    # An HTMX swap cannot show the sign-in page inside a panel: send the whole window there.
                    response = HttpResponse(status=200)
                    response["HX-Redirect"] = login_url
                    return response
                return redirect(f"{login_url}?{urlencode({'next': request.get_full_path()})}")
            if last is None or not is_poll(request):
                request.session[LAST_ACTIVITY_KEY] = now
        elif request.headers.get("HX-Request") and request.path != reverse("login"):
            # The session has already expired: a poll would otherwise swap the sign-in page into a panel.
            response = HttpResponse(status=200)
            response["HX-Redirect"] = reverse("login")
            return response
        return self.get_response(request)
