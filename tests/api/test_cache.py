"""carclinic.cache.RedisCache: Django's Redis cache with a reused client and a one-round-trip incr. The
API's key lookup and throttle run on it in production (CACHE_URL), so it is tested on a real Redis."""

import os
import uuid

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from carclinic.cache import RedisCache

# The suite's Redis (conftest stops the run loudly if it is not there), never a skip.
_BROKER = os.environ.get("CELERY_BROKER_URL", "")
REDIS_URL = _BROKER if _BROKER.startswith("redis://") else "redis://127.0.0.1:6379/15"


@pytest.fixture
def caches():
    prefix = f"test-{uuid.uuid4().hex}"
    ours = RedisCache(REDIS_URL, {"KEY_PREFIX": prefix})
    django = DjangoRedisCache(REDIS_URL, {"KEY_PREFIX": prefix})
    yield ours, django
    ours.delete_many(["missing", "counter", "row"])


def test_incr_means_what_djangos_means(caches):
    ours, django = caches
    for cache in (ours, django):
        with pytest.raises(ValueError):
            cache.incr("missing")
    assert ours.get("missing") is None  # a failed incr creates nothing
    assert ours.add("counter", 1, timeout=30)
    assert ours.incr("counter") == 2
    assert django.incr("counter", 5) == 7  # the same stored value, whichever client counts
    assert ours.get("counter") == 7
    ttl = ours._cache.get_client(write=True).ttl(ours.make_and_validate_key("counter"))
    assert 0 < ttl <= 30  # incr keeps the window's expiry


def test_one_client_per_process_and_values_round_trip(caches):
    ours, django = caches
    client = ours._cache.get_client(write=True)
    ours.set("row", {"a": [1, 2]}, timeout=30)
    assert django.get("row") == {"a": [1, 2]} and ours.get("row") == {"a": [1, 2]}
    assert ours._cache.get_client(write=True) is client
    ours.delete("row")
    assert django.get("row") is None


def test_count_and_get_counts_opens_the_window_and_reads_in_one_call(caches):
    ours, django = caches
    django.set("row", 7, timeout=30)
    assert ours.count_and_get("counter", 30, "row") == (1, 7)
    assert ours.count_and_get("counter", 30, "row") == (2, 7)
    assert django.incr("counter") == 3  # the same counter Django's client sees
    ttl = ours._cache.get_client(write=True).ttl(ours.make_and_validate_key("counter"))
    assert 0 < ttl <= 30  # opened with the window's expiry, kept by later counts
    assert ours.count_and_get("counter", 30, "missing") == (4, None)
