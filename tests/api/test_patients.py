from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from journeys.services import journey_start, step_complete
from patients.services import patient_update
from tests.api.builders import patients_with_journeys
from tests.api.conftest import csrf_post
from tests.factories import PatientFactory


def _all_pages(http, url):
    results, pages = [], 0
    while url:
        response = http.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        results.extend(body["results"])
        url, pages = body["next"], pages + 1
    return results, body, pages


def test_list_pages_through_every_patient_once(viewer_api, journey):
    patients_with_journeys(journey, 11)
    results, _, pages = _all_pages(viewer_api, "/api/v1/patients/?page_size=5")
    assert pages == 3
    assert len({row["id"] for row in results}) == 12
    row = next(r for r in results if r["id"] == str(journey.patient.public_id))
    assert row["journey"]["current_stage"] == 1
    assert row["journey"]["id"] == str(journey.public_id)
    assert row["overdue_steps"] == 0


@pytest.mark.parametrize("count", [10, 1000])
def test_patient_list_query_count_does_not_grow(viewer_api, journey, count, django_assert_max_num_queries):
    patients_with_journeys(journey, count - 1)
    viewer_api.get("/api/v1/patients/")  # the key's first use of the minute also stamps last_used_at
    # key + page of patients + their open journeys (one prefetch), however many patients
    with django_assert_max_num_queries(3):
        response = viewer_api.get("/api/v1/patients/?page_size=500")
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(count, 500)


@pytest.mark.parametrize("count", [10, 1000])
def test_step_list_query_count_does_not_grow(viewer_api, journey, count, django_assert_max_num_queries):
    patients_with_journeys(journey, count - 1)
    viewer_api.get("/api/v1/steps/")
    with django_assert_max_num_queries(2):
        response = viewer_api.get("/api/v1/steps/?page_size=500&status=pending")
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(500, count * journey.steps.count())


def test_filters(viewer_api, journey, coordinator, nurse):
    others = patients_with_journeys(journey, 3, indication="myasthenia_gravis")
    PatientFactory(indication="systemic_sclerosis")  # no journey
    patient_update(actor=coordinator, patient_id=journey.patient_id, expected_version=1, coordinator=coordinator)

    def ids(query):
        response = viewer_api.get(f"/api/v1/patients/?{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("indication=myasthenia_gravis") == {str(p.public_id) for p in others}
    assert ids(f"coordinator={coordinator.username}") == {str(journey.patient.public_id)}
    assert len(ids("stage=1")) == 4 and ids("stage=2") == set()
    assert ids("overdue=true") == set()
    with time_machine.travel(timezone.now() + timedelta(days=45)):
        # six weeks on, stage 1 is long overdue for all four
        assert len(ids("overdue=true")) == 4
        assert len(ids("overdue=false")) == 1


@pytest.mark.parametrize(
    "query,field",
    [
        ("stage=9", "stage"),
        ("indication=flu", "indication"),
        ("updated_since=yesterday", "updated_since"),
        ("overdue=maybe", "overdue"),
    ],
)
def test_bad_filter_answers_400_naming_the_field(viewer_api, query, field):
    response = viewer_api.get(f"/api/v1/patients/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["field_errors"]


def test_incremental_sync_returns_only_what_changed(viewer_api, journey, nurse, coordinator):
    quiet = patients_with_journeys(journey, 5)
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=10)):
        first = viewer_api.get("/api/v1/patients/").json()
    assert len(first["results"]) == 6
    with time_machine.travel(start + timedelta(hours=1)):
        step = journey.steps.get(template__code="eligibility-labs")
        step_complete(actor=nurse, step_id=step.pk)
        patient_update(actor=coordinator, patient_id=quiet[0].pk, expected_version=1, phone="+49 9131 0")
    with time_machine.travel(start + timedelta(hours=2)):
        second = viewer_api.get("/api/v1/patients/", {"updated_since": first["sync_from"]}).json()
    assert {row["id"] for row in second["results"]} == {str(journey.patient.public_id), str(quiet[0].public_id)}
    changed = next(r for r in second["results"] if r["id"] == str(journey.patient.public_id))
    assert changed["last_changed_at"] > first["sync_from"]


def test_search_by_mrn_in_the_body(viewer_api, journey):
    PatientFactory()
    response = csrf_post(viewer_api, "/api/v1/patients/search/", {"mrn": journey.patient.mrn})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [str(journey.patient.public_id)]
    assert csrf_post(viewer_api, "/api/v1/patients/search/", {}).json()["field_errors"] == {"mrn": ["This field is required."]}


def test_detail_and_status_etag_and_304(viewer_api, journey, nurse):
    for suffix in ("", "status/"):
        url = f"/api/v1/patients/{journey.patient.public_id}/{suffix}"
        first = viewer_api.get(url)
        etag = first["ETag"]
        again = viewer_api.get(url, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again["ETag"] == etag and not again.content
        assert viewer_api.get(url, HTTP_IF_NONE_MATCH='"stale"').status_code == 200
    status_url = f"/api/v1/patients/{journey.patient.public_id}/status/"
    etag = viewer_api.get(status_url)["ETag"]
    step_complete(actor=nurse, step_id=journey.steps.get(template__code="eligibility-labs").pk)
    changed = viewer_api.get(status_url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert changed.json()["next_step"]["code"] == "eligibility-signoff"


def test_status_tells_day_next_step_and_overdue(viewer_api, journey):
    url = f"/api/v1/patients/{journey.patient.public_id}/status/"
    body = viewer_api.get(url).json()
    assert body["journey_status"] == "active"
    assert body["day"]["number"] == -35 and body["day"]["label"] == "Day \u221235"
    assert body["day"]["day0_confirmed"] is False
    assert body["overdue_steps"] == []
    with time_machine.travel(timezone.now() + timedelta(days=14)):
        body = viewer_api.get(url).json()
    assert body["day"]["label"] == "Day \u221221"
    assert "eligibility-labs" in [step["code"] for step in body["overdue_steps"]]


def test_patient_without_journey(viewer_api):
    patient = PatientFactory()
    status = viewer_api.get(f"/api/v1/patients/{patient.public_id}/status/")
    assert status.status_code == 200
    assert status.json()["journey"] is None and status.json()["current_stage"] is None
    journey = viewer_api.get(f"/api/v1/patients/{patient.public_id}/journey/")
    assert journey.status_code == 404


def test_journey_lists_five_stages_with_their_steps(viewer_api, journey):
    body = viewer_api.get(f"/api/v1/patients/{journey.patient.public_id}/journey/").json()
    assert [stage["number"] for stage in body["stages"]] == [1, 2, 3, 4, 5]
    assert sum(len(stage["steps"]) for stage in body["stages"]) == journey.steps.count()
    first = body["stages"][0]["steps"][0]
    assert first["etag"] == f'"{first["id"]}.1"'


def test_step_filters(viewer_api, journey):
    def codes(query):
        response = viewer_api.get(f"/api/v1/steps/?page_size=500&{query}")
        assert response.status_code == 200, response.content
        return [row["code"] for row in response.json()["results"]]

    assert codes("stage=3") == ["renal-dose-review", "ld-day-5", "ld-day-4", "ld-day-3"]
    assert set(codes("stage=1&assigned_role=physician")) == {"eligibility-signoff"}
    collection_day = journey.leukapheresis_date
    assert set(codes(f"due_after={collection_day}&due_before={collection_day}")) == {"leukapheresis"}
    assert codes("overdue=true") == []
    with time_machine.travel(timezone.now() + timedelta(days=18)):
        assert set(codes("overdue=true")) == {"eligibility-labs", "eligibility-signoff", "leukapheresis", "shipment"}
    assert viewer_api.get("/api/v1/steps/?due_before=soon").json()["field_errors"].keys() == {"due_before"}


def test_a_client_limited_to_some_patients_sees_only_those(make_api_client, journey, coordinator, protocol):
    other = PatientFactory()
    other_journey = journey_start(
        actor=coordinator, patient_id=other.pk, protocol_id=protocol.pk, leukapheresis_date=timezone.localdate()
    )
    client, payer = make_api_client("integration")
    client.sees_all_patients = False
    client.save()
    client.patients.add(journey.patient)

    listed = payer.get("/api/v1/patients/").json()["results"]
    assert [row["id"] for row in listed] == [str(journey.patient.public_id)]
    assert {row["patient"] for row in payer.get("/api/v1/steps/?page_size=500").json()["results"]} == {
        str(journey.patient.public_id)
    }
    hidden_step = other_journey.steps.get(template__code="eligibility-labs")
    for url in (
        f"/api/v1/patients/{other.public_id}/",
        f"/api/v1/patients/{other.public_id}/status/",
        f"/api/v1/patients/{other.public_id}/journey/",
        f"/api/v1/patients/{other.public_id}/fhir/",
        f"/api/v1/steps/{hidden_step.public_id}/",
    ):
        response = payer.get(url)
        assert response.status_code == 404, url
        assert response.json() == {"status": 404, "code": "not_found", "detail": "Not found.", "field_errors": {}}
    response = payer.post(
        f"/api/v1/steps/{hidden_step.public_id}/complete/", {}, format="json", HTTP_IF_MATCH=f'"{hidden_step.public_id}.1"'
    )
    assert response.status_code == 404
    assert csrf_post(payer, "/api/v1/patients/search/", {"mrn": other.mrn}).json() == []


def test_unknown_api_path_answers_json_404(viewer_api):
    response = viewer_api.get("/api/v1/nothing-here/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_status_is_one_query_after_the_key(viewer_api, journey, django_assert_num_queries):
    url = f"/api/v1/patients/{journey.patient.public_id}/status/"
    viewer_api.get(url)
    with time_machine.travel(timezone.now() + timedelta(days=14)):  # with overdue steps too
        viewer_api.get(url)
        # the key, then the status: one statement on PostgreSQL, two ORM queries elsewhere (SQLite)
        with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
            body = viewer_api.get(url).json()
    assert body["next_step"]["code"] == "eligibility-labs"
    assert [step["code"] for step in body["overdue_steps"]] == ["eligibility-labs"]


def test_every_page_of_a_pass_carries_the_first_pages_sync_from(viewer_api, journey):
    """A patient changed on page 1 while the client reads page 3 must come back in the next sync: so the
    watermark is the first page's, not the last one's."""
    patients_with_journeys(journey, 5)
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=10)):
        first = viewer_api.get("/api/v1/patients/?page_size=2").json()
    with time_machine.travel(start + timedelta(minutes=30)):
        second = viewer_api.get(first["next"]).json()
        third = viewer_api.get(second["next"]).json()
        fresh = viewer_api.get("/api/v1/patients/?page_size=2").json()
    assert first["sync_from"] == second["sync_from"] == third["sync_from"]
    assert fresh["sync_from"] > first["sync_from"]  # a new pass, a new watermark


def test_a_cursor_not_made_by_the_api_answers_404(viewer_api):
    response = viewer_api.get("/api/v1/patients/?cursor=bz1hYmM=")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
