"""Issue 12, finding 2: the API with its Redis down. The database is the truth: keys keep working (read from
the database), revocation takes effect, and nothing answers 500. Run against a Redis this module starts and
stops itself on its own port; the suite's shared Redis is never touched."""

import socket
import subprocess
import time

import pytest
from django.core.cache import cache
from django.core.management import call_command

from apiclients.models import ApiClient
from apiclients.services import api_client_create, api_client_revoke


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    """A redis-server of our own, started and stopped by its process id."""

    def __init__(self):
        self.port = _free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("our redis-server did not start")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(settings):
    redis = OwnRedis()
    redis.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "carclinic.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    settings.API_KEY_CACHE_SECONDS = 30
    yield redis
    redis.stop()


def _bearer(key):
    from rest_framework.test import APIClient

    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return http


def test_with_the_cache_down_requests_are_answered_from_the_database(own_redis, journey):
    _, key = api_client_create(name="ehr", role="integration", sees_all_patients=True)
    http = _bearer(key)
    url = f"/api/v1/patients/{journey.patient.public_id}/status/"
    assert http.get(url).status_code == 200  # the row is now kept in the process, under Redis' generation
    own_redis.stop()
    for _ in range(3):
        response = http.get(url)
        assert response.status_code == 200, response.content
    assert http.get("/api/v1/patients/").status_code == 200
    step = journey.steps.get(template__code="eligibility-labs")
    response = http.post(
        f"/api/v1/steps/{step.public_id}/complete/", {}, format="json", HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"'
    )
    assert response.status_code == 200, response.content


def test_with_the_cache_down_revocation_works_and_takes_effect_at_once(own_redis, journey, capsys):
    _, key = api_client_create(name="leaked", sees_all_patients=True)
    http = _bearer(key)
    url = f"/api/v1/patients/{journey.patient.public_id}/status/"
    assert http.get(url).status_code == 200
    own_redis.stop()
    call_command("revoke_api_client", "leaked")  # crashed and rolled back before
    assert ApiClient.objects.get(name="leaked").revoked_at is not None
    assert http.get(url).status_code == 401


def test_a_revocation_made_while_the_cache_was_down_holds_when_it_comes_back(own_redis, journey):
    _, key = api_client_create(name="leaked-too", sees_all_patients=True)
    http = _bearer(key)
    url = f"/api/v1/patients/{journey.patient.public_id}/status/"
    assert http.get(url).status_code == 200
    own_redis.stop()
    api_client_revoke(name="leaked-too")
    own_redis.start()  # an empty Redis, as after a restart
    time.sleep(2.1)  # carclinic.cache skips Redis for 2 s after a failure
    assert http.get(url).status_code == 401
    assert cache.get("anything") is None  # and the cache is in use again


def test_the_throttle_still_counts_while_the_cache_is_down(own_redis, db):
    _, key = api_client_create(name="busy", throttle_rate="3/min", sees_all_patients=True)
    http = _bearer(key)
    own_redis.stop()
    answers = [http.get("/api/v1/patients/").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
