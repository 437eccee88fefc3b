"""The key check with a shared Redis cache, as in production: a worker keeps the client row it verified and
reads the key's generation in the same round trip as the throttle counter, so revocation takes effect at
the next request in every worker, and changes made behind the services' back within API_KEY_CACHE_SECONDS."""

import os
import time
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.cache import cache
from rest_framework.test import APIClient

from apiclients import rates, services
from apiclients.models import ApiClient
from apiclients.services import api_client_create, api_client_revoke

_BROKER = os.environ.get("CELERY_BROKER_URL", "")
REDIS_URL = _BROKER if _BROKER.startswith("redis://") else "redis://127.0.0.1:6379/15"


@pytest.fixture
def shared_redis(settings):
    settings.CACHES = {
        "default": {"BACKEND": "carclinic.cache.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }
    settings.API_KEY_CACHE_SECONDS = 5  # what carclinic/settings.py declares when CACHE_URL names a shared cache
    assert services.key_cache_seconds() == 5
    yield
    cache.clear()


def _bearer(key):
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return http


def _prefix(key):
    return key.split("_")[1]


def _counter(client):
    return rates.window(rates.client_ident(client), client.throttle_rate, time.time())[0]


def test_a_verified_key_costs_no_query_and_counts_each_request_once(db, shared_redis, patient, django_assert_num_queries):
    client, key = api_client_create(name="polling", sees_all_patients=True)
    http = _bearer(key)
    url = f"/api/v1/patients/{patient.public_id}/status/"
    with time_machine.travel(datetime(2026, 3, 2, 9, 15, 20, tzinfo=UTC), tick=False):
        assert http.get(url).status_code == 200
        with django_assert_num_queries(2):  # the two status statements; the key came from this worker's copy
            assert http.get(url).status_code == 200
            assert http.get(url).status_code == 200
        assert cache.get(_counter(client)) == 3


def test_revocation_reaches_a_worker_holding_the_row_at_its_next_request(db, shared_redis):
    client, key = api_client_create(name="to-revoke", sees_all_patients=True)
    http = _bearer(key)
    assert http.get("/api/v1/patients/").status_code == 200
    held = services._verified[_prefix(key)]  # what another worker still holds after the revocation
    api_client_revoke(name=client.name)
    services._verified[_prefix(key)] = held
    response = http.get("/api/v1/patients/")
    assert response.status_code == 401
    assert services._verified[_prefix(key)][0].revoked_at is not None  # re-read, not answered from the copy


def test_a_change_behind_the_services_back_takes_effect_within_the_bound(db, shared_redis):
    client, key = api_client_create(name="sql-revoked", sees_all_patients=True)
    http = _bearer(key)
    assert http.get("/api/v1/patients/").status_code == 200
    ApiClient.objects.filter(pk=client.pk).update(revoked_at=datetime(2026, 1, 1, tzinfo=UTC))  # no generation bump
    assert http.get("/api/v1/patients/").status_code == 200  # still the verified copy, as documented
    row, generation, verified_at = services._verified[_prefix(key)]
    services._verified[_prefix(key)] = (row, generation, verified_at - services.key_cache_seconds())
    assert http.get("/api/v1/patients/").status_code == 401


def test_the_throttle_still_throttles_per_client_on_the_one_round_trip(db, shared_redis):
    _, slow_key = api_client_create(name="slow-shared", throttle_rate="3/min", sees_all_patients=True)
    _, other_key = api_client_create(name="other-shared", throttle_rate="3/min", sees_all_patients=True)
    slow, other = _bearer(slow_key), _bearer(other_key)
    with time_machine.travel(datetime(2026, 3, 2, 9, 15, 20, tzinfo=UTC), tick=False):
        assert [slow.get("/api/v1/patients/").status_code for _ in range(3)] == [200, 200, 200]
        throttled = slow.get("/api/v1/patients/")
        assert throttled.status_code == 429 and throttled["Retry-After"] == "40"
        assert other.get("/api/v1/patients/").status_code == 200
    with time_machine.travel(datetime(2026, 3, 2, 9, 16, 1, tzinfo=UTC), tick=False):
        assert slow.get("/api/v1/patients/").status_code == 200


def test_a_new_rate_applies_at_the_next_request(db, shared_redis):
    client, key = api_client_create(name="rate-change", throttle_rate="100/min", sees_all_patients=True)
    http = _bearer(key)
    with time_machine.travel(datetime(2026, 3, 2, 9, 15, 20, tzinfo=UTC), tick=False):
        assert [http.get("/api/v1/patients/").status_code for _ in range(2)] == [200, 200]
        client.throttle_rate = "2/min"
        client.save(update_fields=["throttle_rate"])
        services.api_client_forget_cached(client)  # as the admin does on save
        assert http.get("/api/v1/patients/").status_code == 429


def test_a_wrong_key_with_the_clients_prefix_does_not_use_up_its_rate(db, shared_redis):
    _, key = api_client_create(name="guarded", throttle_rate="3/min", sees_all_patients=True)
    http = _bearer(key)
    forged = _bearer(key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB"))
    with time_machine.travel(datetime(2026, 3, 2, 9, 15, 20, tzinfo=UTC), tick=False):
        assert http.get("/api/v1/patients/").status_code == 200
        assert {forged.get("/api/v1/patients/").status_code for _ in range(5)} == {401}
        assert [http.get("/api/v1/patients/").status_code for _ in range(2)] == [200, 200]
