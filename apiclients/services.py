"""Making, finding and revoking API clients. The key is returned once by `api_client_create` and never
stored in clear."""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.contrib.auth.models import Group
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
    return client


def api_client_for_key(key: str) -> ApiClient | None:
    """The usable client this key belongs to, or None. Constant-time comparison of the hash."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    client = ApiClient.objects.select_related("user").filter(key_prefix=parts[1]).first()
    if client is None or not hmac.compare_digest(client.key_hash, _hash(key)):
        return None
    now = timezone.now()
    if not client.is_usable(now) or not client.user.is_active:
        return None
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client
