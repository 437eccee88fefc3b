"""Twenty systems record the same step at the same instant: one wins, nineteen are told, one record."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apiclients.services import api_client_create
from journeys.models import EventKind, JourneyEvent, StepStatus
from journeys.services import journey_start
from tests.factories import PatientFactory, UserFactory

CALLERS = 20


@pytest.fixture
def labs(transactional_db):
    from django.contrib.auth.models import Group

    from journeys.models import ProtocolTemplate

    coordinator = UserFactory()
    coordinator.groups.add(Group.objects.get(name="coordinator"))
    journey = journey_start(
        actor=coordinator,
        patient_id=PatientFactory().pk,
        protocol_id=ProtocolTemplate.objects.get(version=1, collection=True).pk,
        leukapheresis_date=timezone.localdate() + timedelta(days=14),
    )
    return journey.steps.get(template__code="eligibility-labs")


def _race(step, keys: list[str | None], *, one_client: bool = False) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(keys))
    answers: list[tuple[int, dict]] = [(0, {})] * len(keys)
    http_clients = []
    for index in range(len(keys)):
        if index == 0 or not one_client:
            _, key = api_client_create(name=f"engine-{index}", role="integration", sees_all_patients=True)
        http = APIClient()
        http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        http_clients.append(http)
    etag = f'"{step.public_id}.{step.version}"'

    def call(index):
        try:
            headers = {"HTTP_IF_MATCH": etag}
            if keys[index]:
                headers["HTTP_IDEMPOTENCY_KEY"] = keys[index]
            barrier.wait(timeout=30)
            response = http_clients[index].post(f"/api/v1/steps/{step.public_id}/complete/", {}, format="json", **headers)
            answers[index] = (response.status_code, response.json())
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


# serialized_rollback: the flush after a transactional test would otherwise take the shipped protocol
# and role groups (data migrations) away from every test that runs after this one.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_twenty_clients_complete_the_same_step_at_once(labs):
    answers = _race(labs, [None] * CALLERS)
    assert sorted(status for status, _ in answers) == [200] + [409] * (CALLERS - 1)
    assert {body["code"] for status, body in answers if status == 409} <= {"step_already_completed", "stale_version"}
    labs.refresh_from_db()
    assert labs.status == StepStatus.DONE and labs.version == 2
    assert JourneyEvent.objects.filter(step=labs, kind=EventKind.STEP_DONE).count() == 1
    assert labs.history.filter(status=StepStatus.DONE).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_client_retrying_at_once_with_one_key_gets_one_answer(labs):
    """A client that times out and retries while its first request is still running: same key, same answer."""
    answers = _race(labs, ["completion-7f3a"] * 10, one_client=True)
    assert [status for status, _ in answers] == [200] * 10
    assert len({body["etag"] for _, body in answers}) == 1
    assert JourneyEvent.objects.filter(step=labs, kind=EventKind.STEP_DONE).count() == 1
