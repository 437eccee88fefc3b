"""GET /api/v1/registry/export: the registry client only, streamed, scoped to its patients, audited."""

import json

import pytest

from apiclients.services import api_client_create
from registry.models import ExportChannel, ExportFormat, RegistryExport
from tests.api.conftest import anonymous_api, make_api_client, staff_api  # noqa: F401
from tests.registry.test_exports import followed  # noqa: F401

URL = "/api/v1/registry/export"


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_the_registry_client_gets_csv_by_default(followed, make_api_client):
    client, http = make_api_client("registry")
    response = http.get(URL)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8" and response["Cache-Control"] == "no-store"
    lines = body(response).splitlines()
    assert lines[0].startswith("patient,journey,indication,time_point") and len(lines) == 4
    audit = RegistryExport.objects.get()
    assert (audit.channel, audit.format, audit.row_count, audit.exported_by_label) == (
        ExportChannel.API,
        ExportFormat.CSV,
        2,
        f"api:{client.name}",
    )


def test_ndjson_lines_parse_as_fhir_resources(followed, make_api_client):
    _, http = make_api_client("registry")
    response = http.get(URL, {"format": "ndjson", "since": "2020-01-01"})
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+ndjson"
    resources = [json.loads(line) for line in body(response).splitlines()]
    assert len(resources) == 9  # B has no follow-up step changed since: A and its 8 values
    assert {resource["resourceType"] for resource in resources} == {"Patient", "Observation"}
    assert RegistryExport.objects.get().filters == {"since": "2020-01-01T00:00:00+01:00"}


@pytest.mark.parametrize("role", ["viewer", "integration", "manufacturer"])
def test_every_other_client_role_is_refused(followed, make_api_client, role):
    _, http = make_api_client(role)
    response = http.get(URL)
    assert response.status_code == 403 and response.json()["status"] == 403
    assert not RegistryExport.objects.exists()


@pytest.mark.parametrize("role", ["coordinator", "physician"])
def test_staff_sessions_are_refused(followed, staff_api, role):
    assert staff_api(role).get(URL).status_code == 403


def test_no_key_is_401(followed, anonymous_api):
    assert anonymous_api.get(URL).status_code == 401


def test_bad_format_and_since_are_400_per_field(followed, make_api_client):
    _, http = make_api_client("registry")
    response = http.get(URL, {"format": "xml"})
    assert response.status_code == 400 and "format" in json.dumps(response.json())
    response = http.get(URL, {"since": "yesterday"})
    assert response.status_code == 400 and "since" in json.dumps(response.json())
    assert not RegistryExport.objects.exists()


def test_a_registry_client_without_all_patients_sees_only_those_granted(followed):
    from rest_framework.test import APIClient

    client, key = api_client_create(name="registry-narrow", role="registry")
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert body(http.get(URL)).splitlines()[1:] == []
    client.patients.add(followed["a"].patient)
    rows = body(http.get(URL)).splitlines()[1:]
    assert len(rows) == 3 and all(row.startswith(str(followed["a"].patient.public_id)) for row in rows)


def test_the_registry_client_reads_nothing_else(followed, make_api_client):
    _, http = make_api_client("registry")
    assert http.get("/api/v1/patients/").status_code == 403
