"""Per-client throttling: each API client has its own rate; signed-in staff share one rate per person.

A fixed-window counter (one atomic INCR per request) rather than DRF's SimpleRateThrottle, which keeps a
list of every request time in the window: at a rate of thousands a minute that list is read, pickled
and written back on each request, and two workers updating it at once lose counts. Counts live in
Django's default cache; set CACHE_URL to Redis when several web workers serve the API, so that they
count together. A fixed window may let up to twice the rate through across a window boundary; for
protecting the server from a runaway integration that is close enough.
"""

import time

from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import BaseThrottle

from apiclients.models import ApiClient
from apiclients.rates import COUNTED_ATTRIBUTE, STAFF_SESSION_RATE, client_ident, window
from carclinic.cache import CacheUnavailable

# Where a worker counts while the shared cache is down: its own memory, so each worker lets the rate through
# on its own (a looser limit for the length of the outage, never an error).
_counted_here = LocMemCache("throttle-while-cache-down", {"OPTIONS": {"MAX_ENTRIES": 10000}})


class PerClientRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        if isinstance(request.auth, ApiClient):
            ident, rate = client_ident(request.auth), request.auth.throttle_rate
        elif request.user and request.user.is_authenticated:
            ident, rate = f"user:{request.user.pk}", STAFF_SESSION_RATE
        else:
            ident, rate = f"anon:{self.get_ident(request)}", STAFF_SESSION_RATE
        key, allowed, period, self._wait = window(ident, rate, time.time())
        counted = getattr(request, COUNTED_ATTRIBUTE, None)
        if counted is not None and counted[0] == key:
            count = counted[1]
        else:
            try:
                count = _count(cache, key, period)
            except CacheUnavailable:
                count = _count(_counted_here, key, period)
        return count <= allowed

    def wait(self):
        return self._wait


def _count(counters, key: str, period: int) -> int:
    try:
        return counters.incr(key)  # one round trip in the common case: the window's counter exists
    except ValueError:
        # the first request of the window opens it; if a twin opened it a moment earlier, count on it
        return 1 if counters.add(key, 1, timeout=period + 1) else counters.incr(key)
