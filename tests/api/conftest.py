"""Fixtures of the API tests: clients of each kind, each with a real key made by the real service."""

import pytest
from rest_framework.test import APIClient

from apiclients.services import api_client_create, api_client_revoke


@pytest.fixture
def make_api_client(db):
    """make_api_client("viewer") -> (ApiClient, APIClient carrying its bearer key)."""
    counter = {"n": 0}

    def make(role: str = "viewer", **options):
        counter["n"] += 1
        # Most API tests are about the calls, not the scope: their clients see everyone (tests/api/test_clients.py
        # covers the default, which is no one).
        options.setdefault("sees_all_patients", True)
        client, key = api_client_create(name=f"{role}-client-{counter['n']}", role=role, **options)
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        http.key = key
        return client, http

    return make


@pytest.fixture
def viewer_api(make_api_client):
    return make_api_client("viewer")[1]


@pytest.fixture
def integration_api(make_api_client):
    return make_api_client("integration")[1]


@pytest.fixture
def anonymous_api():
    return APIClient()


@pytest.fixture
def revoked_api(make_api_client):
    client, http = make_api_client("integration")
    api_client_revoke(name=client.name)
    return http


@pytest.fixture
def expired_api(make_api_client):
    from datetime import timedelta

    from django.utils import timezone

    client, http = make_api_client("viewer")
    client.expires_at = timezone.now() - timedelta(seconds=1)
    client.save(update_fields=["expires_at"])
    return http


@pytest.fixture
def staff_api(make_user):
    """staff_api("nurse") -> an APIClient signed in as a member of staff with that role, CSRF enforced."""

    def make(*roles: str):
        user = make_user(*roles)
        http = APIClient(enforce_csrf_checks=True)
        http.force_login(user)
        http.user = user
        return http

    return make


def csrf_post(http: APIClient, url: str, data: dict, **headers):
    """POST as a browser page would: fetch a CSRF token first, then send it back."""
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    secret = _get_new_csrf_string()
    http.cookies["csrftoken"] = secret
    return http.post(url, data, format="json", HTTP_X_CSRFTOKEN=_mask_cipher_secret(secret), **headers)


LEUKAPHERESIS_IN_DAYS = 14


@pytest.fixture
def journey(coordinator, patient, protocol):
    """A journey whose collection is two weeks away: nothing is overdue yet (the shared fixture collects
    today, which leaves the eligibility labs already late)."""
    from datetime import timedelta

    from django.utils import timezone

    from journeys.services import journey_start

    return journey_start(
        actor=coordinator,
        patient_id=patient.id,
        protocol_id=protocol.id,
        leukapheresis_date=timezone.localdate() + timedelta(days=LEUKAPHERESIS_IN_DAYS),
    )
