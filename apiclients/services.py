"""Making, finding and revoking API clients. The key is returned once by `api_client_create` and never
stored in clear."""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apiclients.models import ApiClient, ApiClientRole
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
def api_client_create(*, name: str, role: str = ApiClientRole.VIEWER, expires_in_days: int | None = None,
                      throttle_rate: str | None = None) -> tuple[ApiClient, str]:
    """Make a client, its service user and its key; returns (client, key). Show the key once."""
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
    client = ApiClient(name=name, role=role, user=user, key_prefix=prefix, key_hash=_hash(key))
    if throttle_rate:
        if not THROTTLE_RATE.fullmatch(throttle_rate):
            raise InvalidInput("Bad throttle rate.", field_errors={"throttle_rate": ['Write it as "600/min", "50/s", "10000/hour" or "100000/day".']})
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
    """How long a worker may answer from the cached client row. Only with a cache every worker shares
    (Redis), because revoking deletes the entry there and must take effect at once everywhere."""
    default = 0 if "locmem" in settings.CACHES["default"]["BACKEND"].lower() else 30
    return getattr(settings, "API_KEY_CACHE_SECONDS", default)


def _cache_key(prefix: str) -> str:
    return f"apikey:{prefix}"


def _client_by_prefix(prefix: str) -> ApiClient | None:
    seconds = key_cache_seconds()
    if seconds:
        cached = cache.get(_cache_key(prefix))
        if cached is not None:
            return cached
    client = ApiClient.objects.select_related("user").filter(key_prefix=prefix).first()
    if client is not None and seconds:
        cache.set(_cache_key(prefix), client, timeout=seconds)
    return client


def api_client_forget_cached(client: ApiClient) -> None:
    """After any change to a client (revoked, rate, scope), workers must read it afresh."""
    cache.delete(_cache_key(client.key_prefix))


def api_client_for_key(key: str) -> ApiClient | None:
    """The usable client this key belongs to, or None. Constant-time comparison of the hash; revocation
    and expiry are checked on every request, also when the row comes from the cache."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    client = _client_by_prefix(parts[1])
    if client is None or not hmac.compare_digest(client.key_hash, _hash(key)):
        return None
    now = timezone.now()
    if not client.is_usable(now) or not client.user.is_active:
        return None
    # Stamped at most once a minute per client: a process asks the shared cache only if it has not asked
    # within the minute itself, and only the first worker to ask writes the row.
    asked = _stamp_asked_at.get(client.pk)
    if (client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION) and (
            asked is None or now - asked > LAST_USED_RESOLUTION):
        _stamp_asked_at[client.pk] = now
        if cache.add(f"apikey-used:{client.pk}", 1, timeout=int(LAST_USED_RESOLUTION.total_seconds())):
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
            client.last_used_at = now
    return client
