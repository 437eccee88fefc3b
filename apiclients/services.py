"""Making, finding and revoking API clients. The key is returned once by `api_client_create` and never
stored in clear."""

import hashlib
import hmac
import re
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apiclients import rates
from apiclients.models import ApiClient, ApiClientRole, IdempotentRequest
from carclinic.cache import CacheUnavailable
from carclinic.errors import InvalidInput, check_model
from staff.models import User

KEY_SCHEME = "cck"  # "carclinic key": lets a secret scanner recognise a leaked key
# The client's last use is written at most this often, so a busy client does not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


THROTTLE_RATE = re.compile(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _service_username(name: str) -> str:
    return f"api-client-{name}"


@transaction.atomic
def api_client_create(
    *,
    name: str,
    role: str = ApiClientRole.VIEWER,
    expires_in_days: int | None = None,
    throttle_rate: str | None = None,
    sees_all_patients: bool = False,
) -> tuple[ApiClient, str]:
    """Make a client, its service user and its key; returns (client, key). Show the key once. It sees no patient
    until patients are granted to it (admin) or it is made with `sees_all_patients`."""
    if role not in ApiClientRole.values:
        raise InvalidInput("Unknown role.", field_errors={"role": [f"Choose one of: {', '.join(ApiClientRole.values)}."]})
    if ApiClient.objects.filter(name=name).exists():
        raise InvalidInput("This name is taken.", field_errors={"name": ["An API client with this name exists."]})
    user = User(username=_service_username(name), first_name="API client", last_name=name, is_staff=False)
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=role))
    prefix = secrets.token_hex(6)
    key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    client = ApiClient(
        name=name, role=role, user=user, key_prefix=prefix, key_hash=_hash(key), sees_all_patients=sees_all_patients
    )
    if throttle_rate:
        if not THROTTLE_RATE.fullmatch(throttle_rate):
            raise InvalidInput(
                "Bad throttle rate.",
                field_errors={"throttle_rate": ['Write it as "600/min", "50/s", "10000/hour" or "100000/day".']},
            )
        client.throttle_rate = throttle_rate
    if expires_in_days is not None:
        client.expires_at = timezone.now() + timedelta(days=expires_in_days)
    check_model(client, exclude=["user"])
    client.save()
    return client, key


@transaction.atomic
def api_client_revoke(*, name: str) -> ApiClient:
    """Stop a client's key working at once. The client and its user stay, for the audit trail."""
    client = ApiClient.objects.select_for_update().select_related("user").get(name=name)
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
    client.user.is_active = False
    client.user.save(update_fields=["is_active"])
    # Now, and again after commit, so that no worker re-caches the row as it was before the revocation.
    api_client_forget_cached(client)
    transaction.on_commit(lambda: api_client_forget_cached(client))
    return client


_stamp_asked_at: dict = {}  # client pk -> when this process last asked to stamp last_used_at


def key_cache_seconds() -> int:
    """How long a worker may answer from the client row it verified in-process. Only with a cache every
    worker shares (Redis): each request reads the key's generation there (in the same round trip as the
    throttle counter), and any change through the services or the admin bumps it, so revocation takes
    effect at the next request everywhere. The bound covers changes made behind the services' back (an
    SQL UPDATE, a service user switched off in the user admin): they take effect within this time."""
    return int(settings.API_KEY_CACHE_SECONDS)


def _generation_key(prefix: str) -> str:
    return f"apikey-generation:{prefix}"


# key prefix -> (client row with its user, the generation it was read under, time.monotonic() then)
_verified: dict[str, tuple[ApiClient, int | None, float]] = {}


def api_client_forget_cached(client: ApiClient) -> None:
    """After any change to a client (revoked, rate, scope), workers must read it afresh: a new generation
    makes every worker's copy stale at its next request."""
    _verified.pop(client.key_prefix, None)
    key = _generation_key(client.key_prefix)
    try:
        try:
            cache.incr(key)
        except ValueError:
            if not cache.add(key, 1, timeout=None):
                cache.incr(key)
    except CacheUnavailable:
        # The database holds the change and is the truth: while the cache is down every worker reads the row
        # on each request; when it is back, a copy a worker kept from before expires within key_cache_seconds().
        pass


def _client_by_prefix(prefix: str, key_hash: str) -> tuple[ApiClient | None, tuple[str, int] | None]:
    """The client row for this prefix, and the throttle count taken on the way if there was one."""
    seconds = key_cache_seconds()
    if not seconds:
        return ApiClient.objects.select_related("user").filter(key_prefix=prefix).first(), None
    known = _verified.get(prefix)
    counted = None
    try:
        # Counted only for the key itself: a wrong key that merely shares the prefix must not use up the
        # client's rate.
        if known is not None and time.monotonic() - known[2] < seconds and hmac.compare_digest(known[0].key_hash, key_hash):
            client = known[0]
            counter, _, period, _ = rates.window(rates.client_ident(client), client.throttle_rate, time.time())
            count, generation = _count_and_read(counter, period + 1, _generation_key(prefix))
            counted = (counter, count)
            if generation == known[1]:
                return client, counted
        else:
            generation = cache.get(_generation_key(prefix))
    except CacheUnavailable:
        # No generation to trust: the database answers, and nothing is kept until the cache is back.
        _verified.pop(prefix, None)
        return ApiClient.objects.select_related("user").filter(key_prefix=prefix).first(), None
    # Read the row only after the generation: a change committed after this read bumps the generation
    # again, so the copy kept here cannot outlive it.
    client = ApiClient.objects.select_related("user").filter(key_prefix=prefix).first()
    if client is not None:
        _verified[prefix] = (client, generation, time.monotonic())
    return client, counted


def _count_and_read(counter: str, timeout: int, read: str) -> tuple[int, int | None]:
    if hasattr(cache, "count_and_get"):  # carclinic.cache.RedisCache: one round trip
        return cache.count_and_get(counter, timeout, read)
    try:
        count = cache.incr(counter)
    except ValueError:
        count = 1 if cache.add(counter, 1, timeout=timeout) else cache.incr(counter)
    return count, cache.get(read)


def api_client_for_key(key: str) -> ApiClient | None:
    """The usable client this key belongs to, or None. Constant-time comparison of the hash; revocation
    and expiry are checked on every request, also when the row comes from the cache."""
    return api_client_for_key_counted(key)[0]


def api_client_for_key_counted(key: str) -> tuple[ApiClient | None, tuple[str, int] | None]:
    """`api_client_for_key`, and the client's throttle count if the key check took it in the same round
    trip: (counter key, count) for `PerClientRateThrottle`, else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None, None
    key_hash = _hash(key)
    client, counted = _client_by_prefix(parts[1], key_hash)
    if client is None or not hmac.compare_digest(client.key_hash, key_hash):
        return None, None
    now = timezone.now()
    if not client.is_usable(now) or not client.user.is_active:
        return None, None
    # Stamped at most once a minute per client: a process asks the shared cache only if it has not asked
    # within the minute itself, and only the first worker to ask writes the row.
    asked = _stamp_asked_at.get(client.pk)
    if (client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION) and (
        asked is None or now - asked > LAST_USED_RESOLUTION
    ):
        _stamp_asked_at[client.pk] = now
        try:
            first_to_ask = cache.add(f"apikey-used:{client.pk}", 1, timeout=int(LAST_USED_RESOLUTION.total_seconds()))
        except CacheUnavailable:
            first_to_ask = True  # each process then writes it once a minute at most
        if first_to_ask:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
            client.last_used_at = now
    return client, counted


# A client retries within minutes; a day is generous, and keeps the table small.
KEEP_ANSWERS = 24 * 3600


def idempotent_requests_purge(*, now=None) -> int:
    """Forget stored Idempotency-Key answers (`api/idempotency.py` keeps them) older than a day; returns
    how many went."""
    cutoff = (now or timezone.now()) - timedelta(seconds=KEEP_ANSWERS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
