"""Issue 12, finding 8: CSP and Permissions-Policy everywhere; no-store on every JSON answer with patient data."""

import pytest

from tests.api.conftest import csrf_post


def test_pages_carry_a_csp_and_a_permissions_policy(client, db):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


def test_the_api_docs_have_no_inline_script(client, db):
    page = client.get("/api/docs/").content.decode()
    assert "<script>" not in page and "<script src=" in page


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/patients/",
        "/api/v1/steps/",
        "/api/v1/patients/{p}/",
        "/api/v1/patients/{p}/status/",
        "/api/v1/patients/{p}/journey/",
        "/api/v1/patients/{p}/fhir/",
        "/api/v1/patients/00000000-0000-0000-0000-000000000000/",
    ],
)
def test_json_with_patient_data_is_never_stored(viewer_api, journey, path):
    response = viewer_api.get(path.format(p=journey.patient.public_id))
    assert response["Cache-Control"] == "no-store"


def test_search_is_never_stored(viewer_api, journey):
    assert csrf_post(viewer_api, "/api/v1/patients/search/", {"mrn": journey.patient.mrn})["Cache-Control"] == "no-store"


def test_status_keeps_its_etag_and_304(viewer_api, journey):
    url = f"/api/v1/patients/{journey.patient.public_id}/status/"
    first = viewer_api.get(url)
    assert first.status_code == 200 and first["ETag"]
    again = viewer_api.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again["ETag"] == first["ETag"] and again["Cache-Control"] == "no-store"
