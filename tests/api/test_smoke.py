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
