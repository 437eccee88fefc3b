"""Each API client's rate as fixed windows: which counter a request counts on and how many it may have.

Pure arithmetic, shared by the key check (`services.api_client_for_key_counted`, which counts the request
in the same Redis round trip as it reads the key) and the REST layer's throttle (`api/throttling.py`).
"""

from apiclients.models import ApiClient

STAFF_SESSION_RATE = "600/min"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    number, period = rate.split("/")
    return int(number), _PERIODS[period[0]]


def window(ident: str, rate: str, now: float) -> tuple[str, int, int, float]:
    """(the counter's cache key for the window `now` falls in, requests allowed, seconds the window lasts,
    seconds until it ends)."""
    allowed, period = parse_rate(rate)
    number = int(now // period)
    return f"throttle:api:{ident}:{period}:{number}", allowed, period, (number + 1) * period - now


def client_ident(client: ApiClient) -> str:
    return f"client:{client.pk}"


# Set by the key check on the request it has already counted (one Redis round trip for both): the
# counter's key and its value. The throttle uses it only if it would count on that very key.
COUNTED_ATTRIBUTE = "counted_in_window"
