"""Every endpoint against every kind of caller, the forbidden ones included."""

import pytest

from tests.api.conftest import csrf_post

READS = [
    ("get", "/api/v1/patients/"),
    ("search", "/api/v1/patients/search/"),
    ("get", "/api/v1/patients/{patient}/"),
    ("get", "/api/v1/patients/{patient}/status/"),
    ("get", "/api/v1/patients/{patient}/journey/"),
    ("get", "/api/v1/patients/{patient}/fhir/"),
    ("get", "/api/v1/steps/"),
    ("get", "/api/v1/steps/{step}/"),
]
COMPLETE = "/api/v1/steps/{step}/complete/"

# caller -> (status of every read, status of completing a nurse's step)
CALLERS = {
    "viewer-key": (200, 403),
    "integration-key": (200, 200),
    # A session never records through the API: the page asks for the signature (issue 12, finding 1).
    "staff-coordinator": (200, 403),
    "staff-nurse": (200, 403),
    "staff-physician": (200, 403),
    "staff-viewer": (200, 403),
    "staff-admin": (200, 403),
    "staff-without-role": (403, 403),
    "anonymous": (401, 401),
    "revoked-key": (401, 401),
    "expired-key": (401, 401),
}


@pytest.fixture
def caller(request, make_api_client, staff_api, anonymous_api, revoked_api, expired_api):
    name = request.param
    if name == "viewer-key":
        return make_api_client("viewer")[1]
    if name == "integration-key":
        return make_api_client("integration")[1]
    if name == "staff-without-role":
        return staff_api()
    if name.startswith("staff-"):
        return staff_api(name.removeprefix("staff-"))
    return {"anonymous": anonymous_api, "revoked-key": revoked_api, "expired-key": expired_api}[name]


def _url(template, journey, step):
    return template.format(patient=journey.patient.public_id, step=step.public_id)


@pytest.mark.parametrize("caller", list(CALLERS), indirect=True)
@pytest.mark.parametrize("method,template", READS)
def test_reads(caller, method, template, journey, request):
    step = journey.steps.get(template__code="eligibility-labs")
    url = _url(template, journey, step)
    if method == "search":
        response = csrf_post(caller, url, {"mrn": journey.patient.mrn})
    else:
        response = caller.get(url)
    expected = CALLERS[request.node.callspec.params["caller"]][0]
    assert response.status_code == expected, response.content
    assert response["Content-Type"].startswith("application/json")
    if expected == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["status"] == 401
    if expected == 403:
        assert response.json()["code"] == "not_permitted"


@pytest.mark.parametrize("caller", list(CALLERS), indirect=True)
def test_complete_a_nurses_step(caller, journey, request):
    step = journey.steps.get(template__code="eligibility-labs")
    response = csrf_post(caller, _url(COMPLETE, journey, step), {"notes": ""}, HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"')
    expected = CALLERS[request.node.callspec.params["caller"]][1]
    assert response.status_code == expected, response.content
    step.refresh_from_db()
    assert step.status == ("done" if expected == 200 else "pending")


def test_staff_session_post_needs_csrf(staff_api, journey):
    nurse = staff_api("nurse")
    step = journey.steps.get(template__code="eligibility-labs")
    response = nurse.post(
        f"/api/v1/steps/{step.public_id}/complete/", {}, format="json", HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"'
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    step.refresh_from_db()
    assert step.status == "pending"


def test_a_signed_in_session_cannot_record_a_step_without_the_signature(staff_api, journey):
    """Issue 12, finding 1: CSRF token and `{}` from a ward screen's console recorded the step unsigned."""
    nurse = staff_api("nurse")
    step = journey.steps.get(template__code="eligibility-labs")
    response = csrf_post(nurse, _url(COMPLETE, journey, step), {}, HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"')
    assert response.status_code == 403
    assert response.json()["code"] == "signature_required"
    step.refresh_from_db()
    assert step.status == "pending"
    assert not step.events.exists()


def test_the_schema_says_completing_takes_a_key(staff_api):
    schema = staff_api("viewer").get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/steps/{step_id}/complete/"]["post"]
    assert operation["security"] == [{"apiKey": []}]
    assert "API keys only" in operation["description"]


def test_integration_client_may_not_record_a_physicians_step(integration_api, journey):
    """Eligibility sign-off is a physician's act: an integration engine cannot record it for them."""
    step = journey.steps.get(template__code="eligibility-signoff")
    response = integration_api.post(
        f"/api/v1/steps/{step.public_id}/complete/", {}, format="json", HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"'
    )
    assert response.status_code == 403
    assert "physician" in response.json()["detail"]


def test_the_schema_and_the_docs_are_public_and_say_so(anonymous_api):
    """Issue 12, finding 12: whether they are public is decided and documented."""
    schema = anonymous_api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "This document is public" in schema.json()["info"]["description"]
    assert anonymous_api.get("/api/docs/").status_code == 200
