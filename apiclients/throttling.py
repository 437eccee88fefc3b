"""Per-client throttling: each API client has its own rate; signed-in staff share one rate per person.

Counts live in Django's default cache; set CACHE_URL to Redis when several web workers serve the API,
so that they count together.
"""

from rest_framework.throttling import SimpleRateThrottle

from apiclients.models import ApiClient

STAFF_SESSION_RATE = "600/min"


class PerClientRateThrottle(SimpleRateThrottle):
    scope = "api"

    def get_rate(self):
        return STAFF_SESSION_RATE

    def allow_request(self, request, view):
        if isinstance(request.auth, ApiClient):
            self.rate = request.auth.throttle_rate
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiClient):
            return f"throttle:api:client:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"throttle:api:user:{request.user.pk}"
        return f"throttle:api:anon:{self.get_ident(request)}"
