"""API clients: keys made by the command and shown once, stored hashed, revoked, expired, throttled."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apiclients.models import ApiClient
from apiclients.services import api_client_create


def _bearer(key):
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return http


def test_command_prints_the_key_once_and_stores_only_its_hash(db, capsys, patient):
    call_command("create_api_client", "ehr-engine", "--role", "integration", "--expires-days", "30", "--all-patients")
    out, err = capsys.readouterr()
    key = out.strip()
    assert "cannot be shown again" in err
    client = ApiClient.objects.get(name="ehr-engine")
    assert client.role == "integration" and client.user.roles == {"integration"}
    assert not client.user.has_usable_password() and not client.user.is_staff
    assert key not in (client.key_hash, client.key_prefix)
    assert client.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert timedelta(days=29) < client.expires_at - timezone.now() <= timedelta(days=30)
    assert _bearer(key).get(f"/api/v1/patients/{patient.public_id}/").status_code == 200
    client.refresh_from_db()
    assert client.last_used_at is not None


def test_command_refuses_a_taken_name_and_a_bad_role(db):
    call_command("create_api_client", "registry")
    with pytest.raises(CommandError, match="taken"):
        call_command("create_api_client", "registry")
    with pytest.raises(CommandError):
        call_command("create_api_client", "payer", "--role", "admin")


def test_revoke_command_stops_the_key_at_once(db, capsys, patient):
    call_command("create_api_client", "payer")
    key = capsys.readouterr().out.strip()
    http = _bearer(key)
    assert http.get("/api/v1/patients/").status_code == 200
    call_command("revoke_api_client", "payer")
    response = http.get("/api/v1/patients/")
    assert response.status_code == 401
    assert response.json()["detail"] == "The key is not valid, revoked or expired."
    with pytest.raises(CommandError):
        call_command("revoke_api_client", "nobody")


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer cck_000000000000_guess", "Token cck_x_y", "Bearer \u00e9"])
def test_bad_keys_answer_401_with_a_challenge(db, header):
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=header)
    response = http.get("/api/v1/patients/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="carclinic-api"'
    assert set(response.json()) == {"status", "code", "detail", "field_errors"}


def test_a_key_with_one_character_changed_is_refused(db):
    _, key = api_client_create(name="typo", sees_all_patients=True)
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert _bearer(tampered).get("/api/v1/patients/").status_code == 401


def test_the_token_scheme_works_too(db):
    _, key = api_client_create(name="drf-style", sees_all_patients=True)
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert http.get("/api/v1/patients/").status_code == 200


def test_each_client_has_its_own_rate_and_429_says_when_to_retry(db):
    cache.clear()
    _, slow_key = api_client_create(name="slow", throttle_rate="3/min", sees_all_patients=True)
    _, other_key = api_client_create(name="other", throttle_rate="3/min", sees_all_patients=True)
    slow, other = _bearer(slow_key), _bearer(other_key)
    # 20 s into a minute, clock stopped: the window cannot roll over half-way through the test
    with time_machine.travel(datetime(2026, 3, 2, 9, 15, 20, tzinfo=UTC), tick=False):
        assert [slow.get("/api/v1/patients/").status_code for _ in range(3)] == [200, 200, 200]
        throttled = slow.get("/api/v1/patients/")
        assert throttled.status_code == 429
        assert throttled["Retry-After"] == "40"
        assert throttled.json()["code"] == "throttled"
        assert other.get("/api/v1/patients/").status_code == 200  # the other client is not slowed down
    with time_machine.travel(datetime(2026, 3, 2, 9, 16, 1, tzinfo=UTC), tick=False):
        assert slow.get("/api/v1/patients/").status_code == 200  # a new minute


def test_a_bad_rate_is_refused(db):
    with pytest.raises(CommandError, match="throttle"):
        call_command("create_api_client", "greedy", "--throttle-rate", "lots")


def test_no_stack_trace_ever(viewer_api, monkeypatch, settings, patient):
    """An unexpected failure answers a fixed JSON 500, even with DEBUG on."""
    settings.DEBUG = True

    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("journeys.status.patient_status_by_id", broken)
    response = viewer_api.get(f"/api/v1/patients/{patient.public_id}/status/")
    assert response.status_code == 500
    assert response.json() == {
        "status": 500,
        "code": "server_error",
        "detail": "Something went wrong on our side; it has been logged.",
        "field_errors": {},
    }
    assert b"secret internals" not in response.content and b"Traceback" not in response.content


@pytest.fixture
def shared_key_cache(settings):
    """As in production with Redis: the client row is cached between requests."""
    settings.API_KEY_CACHE_SECONDS = 30
    cache.clear()
    yield
    cache.clear()


def test_with_a_shared_cache_the_key_costs_no_query_and_revocation_is_immediate(
    db, shared_key_cache, journey, django_assert_num_queries
):
    from apiclients.services import api_client_revoke

    patient = journey.patient
    client, key = api_client_create(name="cached", sees_all_patients=True)
    http = _bearer(key)
    assert http.get(f"/api/v1/patients/{patient.public_id}/status/").status_code == 200
    # the status itself (one statement on PostgreSQL, two ORM queries elsewhere); the key came from the cache
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        assert http.get(f"/api/v1/patients/{patient.public_id}/status/").status_code == 200
    api_client_revoke(name="cached")
    assert http.get(f"/api/v1/patients/{patient.public_id}/status/").status_code == 401


def test_with_a_shared_cache_expiry_is_still_checked_on_every_request(db, shared_key_cache):
    client, key = api_client_create(name="short-lived", expires_in_days=1, sees_all_patients=True)
    http = _bearer(key)
    assert http.get("/api/v1/patients/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        assert http.get("/api/v1/patients/").status_code == 401


def test_a_new_client_sees_no_patient_until_granted(db, capsys, journey):
    """Issue 12, finding 12: every new key saw every patient by default."""
    call_command("create_api_client", "new-payer")
    key = capsys.readouterr().out.strip()
    http = _bearer(key)
    patient = journey.patient
    assert http.get("/api/v1/patients/").json()["results"] == []
    assert http.get(f"/api/v1/patients/{patient.public_id}/status/").status_code == 404
    client = ApiClient.objects.get(name="new-payer")
    assert client.sees_all_patients is False
    client.patients.add(patient)
    from apiclients.services import api_client_forget_cached

    api_client_forget_cached(client)
    assert http.get(f"/api/v1/patients/{patient.public_id}/status/").status_code == 200
