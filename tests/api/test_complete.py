"""Recording a step through the API: If-Match, Idempotency-Key, conflicts, and who gets the credit."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apiclients.models import IdempotentRequest
from journeys.models import EventKind, JourneyEvent, StepStatus
from journeys.services import step_complete


@pytest.fixture
def labs(journey):
    return journey.steps.get(template__code="eligibility-labs")


def _complete(http, step, etag=None, key=None, **body):
    headers = {}
    if etag is not False:
        headers["HTTP_IF_MATCH"] = etag or f'"{step.public_id}.{step.version}"'
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return http.post(f"/api/v1/steps/{step.public_id}/complete/", body, format="json", **headers)


def test_completion_is_attributed_to_the_client(make_api_client, labs):
    client, http = make_api_client("integration")
    performed = timezone.now() - timedelta(hours=2)
    response = _complete(http, labs, performed_at=performed.isoformat(), notes="drawn at the satellite lab")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "done" and body["version"] == 2
    assert response["ETag"] == body["etag"] == f'"{labs.public_id}.2"'
    labs.refresh_from_db()
    assert labs.completed_by == client.user and labs.performed_at == performed
    event = JourneyEvent.objects.get(step=labs, kind=EventKind.STEP_DONE)
    assert event.actor == client.user
    assert labs.history.first().history_user == client.user


def test_stale_if_match_answers_409_with_the_current_step(integration_api, labs, nurse):
    stale = f'"{labs.public_id}.{labs.version}"'
    step_complete(actor=nurse, step_id=labs.pk)
    response = _complete(integration_api, labs, etag=stale)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "step_already_completed"
    assert body["current"]["status"] == "done" and body["current"]["version"] == 2
    assert "Nina Nurse" in body["detail"]


def test_if_match_of_an_older_version_of_a_pending_step_answers_409(integration_api, labs):
    response = _complete(integration_api, labs, etag=f'"{labs.public_id}.7"')
    assert response.status_code == 409
    assert response.json()["code"] == "stale_version"
    assert response.json()["current"]["etag"] == f'"{labs.public_id}.1"'
    labs.refresh_from_db()
    assert labs.status == StepStatus.PENDING


@pytest.mark.parametrize("etag", ['"garbage"', '"00000000-0000-0000-0000-000000000000.1"', "*"])
def test_if_match_naming_something_else_answers_409(integration_api, labs, etag):
    response = _complete(integration_api, labs, etag=etag)
    assert response.status_code == 409
    assert response.json()["current"]["id"] == str(labs.public_id)


def test_missing_if_match_answers_428(integration_api, labs):
    response = _complete(integration_api, labs, etag=False)
    assert response.status_code == 428
    assert response.json()["field_errors"] == {"If-Match": ["Required."]}


def test_bad_body_answers_400_per_field(integration_api, labs):
    response = _complete(integration_api, labs, performed_at="yesterday-ish", signature_meaning="guessed")
    assert response.status_code == 400
    assert set(response.json()["field_errors"]) == {"performed_at", "signature_meaning"}
    future = _complete(integration_api, labs, performed_at=(timezone.now() + timedelta(days=1)).isoformat())
    assert future.status_code == 400
    assert future.json()["field_errors"] == {"performed_at": ["Cannot be in the future."]}


def test_a_retry_with_the_same_key_returns_the_first_answer(make_api_client, labs):
    client, http = make_api_client("integration")
    first = _complete(http, labs, key="retry-1", notes="ok")
    assert first.status_code == 200
    retry = _complete(http, labs, key="retry-1", notes="ok")
    assert retry.status_code == 200
    assert retry.content == first.content  # verbatim, keys in the same order
    assert retry["Idempotent-Replayed"] == "true" and retry["ETag"] == first["ETag"]
    assert JourneyEvent.objects.filter(step=labs, kind=EventKind.STEP_DONE).count() == 1
    assert IdempotentRequest.objects.filter(user=client.user, key="retry-1").count() == 1


def test_the_same_key_with_another_request_answers_422(integration_api, labs):
    assert _complete(integration_api, labs, key="k", notes="a").status_code == 200
    response = _complete(integration_api, labs, key="k", notes="b")
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["field_errors"]


def test_keys_belong_to_their_client(make_api_client, journey, labs):
    """Two clients may pick the same key by chance; one never receives the other's answer."""
    _, first = make_api_client("integration")
    _, second = make_api_client("integration")
    assert _complete(first, labs, key="same").status_code == 200
    response = _complete(second, labs, key="same")
    assert response.status_code == 409  # a fresh attempt, which finds the step done
    assert "Idempotent-Replayed" not in response


def test_a_failed_request_is_not_stored(integration_api, labs):
    """A 409 or 400 is not cached under the key: after fixing the request the client may retry."""
    assert _complete(integration_api, labs, etag=f'"{labs.public_id}.5"', key="fix-me").status_code == 409
    assert not IdempotentRequest.objects.exists()


def test_bad_idempotency_key_answers_400(integration_api, labs):
    response = _complete(integration_api, labs, key="x" * 300)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["field_errors"]


def test_a_step_of_a_journey_on_hold_cannot_be_completed(integration_api, labs, coordinator):
    from journeys.services import journey_hold

    journey_hold(actor=coordinator, journey_id=labs.journey_id, reason="Febrile infection")
    response = _complete(integration_api, labs)
    assert response.status_code == 400
    assert response.json()["code"] == "journey_closed"


def test_stored_answers_are_forgotten_after_a_day(integration_api, labs):
    from apiclients.services import idempotent_requests_purge

    assert _complete(integration_api, labs, key="old").status_code == 200
    assert idempotent_requests_purge(now=timezone.now() + timedelta(hours=23)) == 0
    assert idempotent_requests_purge(now=timezone.now() + timedelta(hours=25)) == 1
    assert not IdempotentRequest.objects.exists()


def test_the_purge_and_scan_are_scheduled(db):
    from django_celery_beat.models import PeriodicTask

    assert set(PeriodicTask.objects.values_list("task", flat=True)) >= {
        "apiclients.tasks.webhooks_scan_task",
        "apiclients.tasks.idempotent_requests_purge_task",
    }


# --- the step's own fields ---------------------------------------------------------------------------


def test_a_record_is_stored_and_returned_with_the_spec_that_describes_it(integration_api, labs):
    response = _complete(
        integration_api, labs, record={"cd3_count": 850, "pregnancy_test": "not_applicable", "infection_screen": None}
    )  # null: left empty
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["record"] == {"cd3_count": 850, "pregnancy_test": "not_applicable"}
    spec = {field["name"]: field for field in body["record_fields"]}
    assert spec["cd3_count"]["type"] == "integer" and spec["cd3_count"]["unit"] == "/µL"
    assert ["negative", "Negative"] in spec["pregnancy_test"]["choices"]
    labs.refresh_from_db()
    assert labs.record == body["record"]


def test_a_wrong_record_answers_400_per_field_and_records_nothing(integration_api, labs):
    response = _complete(integration_api, labs, record={"cd3_count": -5, "pregnancy_test": "maybe", "mood": "good"})
    assert response.status_code == 400
    errors = response.json()["field_errors"]
    assert set(errors) == {"record.cd3_count", "record.pregnancy_test", "record.mood"}
    assert errors["record.cd3_count"] == ["Must be from 0 to 10000 /µL."]
    assert errors["record.mood"] == ["This step records no such field."]
    labs.refresh_from_db()
    assert labs.status == StepStatus.PENDING and labs.record == {}
    assert not JourneyEvent.objects.filter(step=labs, kind=EventKind.STEP_DONE).exists()
    not_an_object = _complete(integration_api, labs, record=["850"])
    assert not_an_object.status_code == 400 and set(not_an_object.json()["field_errors"]) == {"record"}


def test_a_missing_required_field_answers_400_naming_it(integration_api, journey, nurse, physician):
    step_complete(actor=nurse, step_id=journey.steps.get(template__code="eligibility-labs").pk)
    step_complete(actor=physician, step_id=journey.steps.get(template__code="eligibility-signoff").pk)
    collection = journey.steps.get(template__code="leukapheresis")
    response = _complete(integration_api, collection, record={"bag_id": "BAG-7"})
    assert response.status_code == 400
    assert response.json()["field_errors"] == {"record.coi_id": ["Required for this step."]}
    assert _complete(integration_api, collection, record={"coi_id": "COI-2026-0042"}).json()["record"] == {
        "coi_id": "COI-2026-0042"
    }


def test_the_journey_and_step_list_carry_each_steps_fields_and_record(viewer_api, journey, nurse):
    step_complete(actor=nurse, step_id=journey.steps.get(template__code="eligibility-labs").pk, record={"cd3_count": "640"})
    body = viewer_api.get(f"/api/v1/patients/{journey.patient.public_id}/journey/").json()
    steps = {step["code"]: step for stage in body["stages"] for step in stage["steps"]}
    assert steps["eligibility-labs"]["record"] == {"cd3_count": 640}
    assert {f["name"] for f in steps["monitoring-day-3"]["record_fields"]} >= {"crs_grade", "ice_score", "icans_grade"}
    assert steps["monitoring-day-3"]["record"] == {}
    listed = viewer_api.get("/api/v1/steps/", {"patient": str(journey.patient.public_id), "page_size": 100}).json()
    by_code = {step["code"]: step for step in listed["results"]}
    assert by_code["eligibility-labs"]["record"] == {"cd3_count": 640}
    assert by_code["qc-release"]["record_fields"][0]["name"] == "lot_number"
