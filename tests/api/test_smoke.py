import pytest


def test_schema_and_docs_are_served_without_cdn(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/patients/{patient_id}/status/" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    body = docs.content.decode()
    assert "cdn" not in body.lower() and "unpkg" not in body.lower()
    assert "/static/drf_spectacular_sidecar/" in body


def test_viewer_reads_status(viewer_api, journey):
    response = viewer_api.get(f"/api/v1/patients/{journey.patient.public_id}/status/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["current_stage"] == {"number": 1, "name": "Leukapheresis", "status": "in_progress"}
    assert body["next_step"]["code"] == "eligibility-labs"


@pytest.mark.parametrize(
    ("accept", "query", "expected"),
    [
        (None, "", 200),
        ("*/*", "", 200),
        ("application/json", "", 200),
        ("application/json; indent=2", "", 200),
        ("text/html", "", 406),
        ("application/xml", "", 406),
        ("*/*", "?format=json", 200),
        ("*/*", "?format=xml", 404),
    ],
)
def test_content_negotiation_answers_as_drf_does(viewer_api, patient, accept, query, expected):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = viewer_api.get(f"/api/v1/patients/{patient.public_id}/status/{query}", **headers)
    assert response.status_code == expected
    if expected == 200:
        assert response["Content-Type"].startswith("application/json")
