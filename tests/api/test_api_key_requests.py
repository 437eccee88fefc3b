"""Requests that carry an API key pass by the browser's middleware (carclinic/middleware.py): they are the
key's or nobody's, never the session's; every other request still gets the whole stack."""

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apiclients.services import api_client_create, api_client_revoke
from staff.middleware import LAST_ACTIVITY_KEY


@pytest.fixture
def signed_in_nurse(make_user):
    http = APIClient(enforce_csrf_checks=True)
    http.force_login(make_user("nurse"))
    return http


def _status_url(patient):
    return f"/api/v1/patients/{patient.public_id}/status/"


def test_a_bad_key_is_refused_even_from_a_browser_with_a_session(signed_in_nurse, patient):
    assert signed_in_nurse.get(_status_url(patient)).status_code == 200  # the session alone may read
    for header in ("Bearer cck_000000000000_guess", "Token nonsense", "Bearer"):
        response = signed_in_nurse.get(_status_url(patient), HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


def test_a_revoked_key_is_refused_even_from_a_browser_with_a_session(signed_in_nurse, patient):
    client, key = api_client_create(name="revoked-in-browser", sees_all_patients=True)
    api_client_revoke(name=client.name)
    response = signed_in_nurse.get(_status_url(patient), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 401


def test_a_key_request_is_the_clients_not_the_sessions(signed_in_nurse, patient):
    """A client that sees no patient gets 404 for one the signed-in nurse could read: the key decides."""
    client, key = api_client_create(name="narrow")
    client.sees_all_patients = False
    client.save(update_fields=["sees_all_patients"])
    response = signed_in_nurse.get(_status_url(patient), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 404


def test_a_key_request_neither_reads_nor_writes_the_session(signed_in_nurse, patient):
    session = signed_in_nurse.session
    session[LAST_ACTIVITY_KEY] = 1_000.0  # long ago: a session request would sign the nurse out
    session.save()
    _, key = api_client_create(name="no-session", sees_all_patients=True)
    response = signed_in_nurse.get(_status_url(patient), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in response.cookies and "csrftoken" not in response.cookies
    assert signed_in_nurse.session[LAST_ACTIVITY_KEY] == 1_000.0  # the idle sign-out did not see it
    # the same browser without the key is a session request again, and the idle sign-out applies
    assert signed_in_nurse.get(_status_url(patient)).status_code == 302


def test_session_requests_keep_the_whole_stack(signed_in_nurse, patient):
    response = signed_in_nurse.get(_status_url(patient))
    assert response.status_code == 200
    assert settings.SESSION_COOKIE_NAME in response.cookies  # saved on every request, as for pages
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_key_requests_keep_the_security_headers(viewer_api, patient):
    response = viewer_api.get(_status_url(patient))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_a_bearer_header_outside_the_api_does_not_skip_csrf(signed_in_nurse, patient):
    """Pages are never served on a key: a POST to a page with a bearer header still needs its CSRF token."""
    _, key = api_client_create(name="not-for-pages", sees_all_patients=True)
    response = signed_in_nurse.post("/accounts/logout/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 403
