"""Django's Redis cache, made cheaper per call for the API's hot path (key check and throttle counter on
every request).

Django's client builds a new `redis.Redis` object for every operation (cheap to hold, costly to build:
it sets up hundreds of response callbacks) and `incr` asks EXISTS before INCRBY, two round trips. Here a
process keeps one client per connection pool (redis-py clients are thread-safe and the pool reconnects
after a fork), and `incr` is one round trip (a script that does both), with the same meaning: a missing
key raises ValueError.

Redis is a help, never the truth (issue 12, finding 2): when it does not answer, every call raises
`CacheUnavailable` at once, and for `SKIP_AFTER_FAILURE_SECONDS` afterwards calls fail without trying, so an
outage costs a request no connect timeout. Callers fall back to the database (the key check) or to counting
in the process (the throttle); an API request never answers 500 because the cache is down.
"""

import logging
import time

import redis
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

log = logging.getLogger("carclinic.cache")

SKIP_AFTER_FAILURE_SECONDS = 2.0


class CacheUnavailable(Exception):
    """The shared cache did not answer; go on with the database."""


_INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false
"""

# The throttle's window counter and the key's generation in one round trip: the API's only Redis call per
# request. INCR then EXPIRE on the window's first request means what `add(key, 1, timeout)` then `incr`
# means, and the script runs atomically, so a twin request cannot see the counter without its expiry.
_COUNT_AND_GET = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('GET', KEYS[2])}
"""


class _Client(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}
        self._incr_script = None
        self._count_and_get_script = None

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client

    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        if self._incr_script is None:
            self._incr_script = client.register_script(_INCR_IF_EXISTS)
        value = self._incr_script(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value

    def count_and_get(self, counter_key, timeout, read_key):
        client = self.get_client(counter_key, write=True)
        if self._count_and_get_script is None:
            self._count_and_get_script = client.register_script(_COUNT_AND_GET)
        count, value = self._count_and_get_script(keys=[counter_key, read_key], args=[timeout], client=client)
        return count, None if value is None else self._serializer.loads(value)


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _Client
        self._skip_until = 0.0

    def _guarded(self, call, *args, **kwargs):
        if time.monotonic() < self._skip_until:
            raise CacheUnavailable("skipped: the cache failed a moment ago")
        try:
            return call(*args, **kwargs)
        except redis.exceptions.RedisError as error:
            first = self._skip_until == 0.0 or time.monotonic() - self._skip_until > 60
            self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_SECONDS
            if first:  # one line per outage, not one per request
                log.warning("Shared cache unavailable (%s); the API goes on with the database.", type(error).__name__)
            raise CacheUnavailable(str(error)) from error

    def get(self, *args, **kwargs):
        return self._guarded(super().get, *args, **kwargs)

    def add(self, *args, **kwargs):
        return self._guarded(super().add, *args, **kwargs)

    def incr(self, *args, **kwargs):
        return self._guarded(super().incr, *args, **kwargs)

    def count_and_get(self, counter_key: str, timeout: int, read_key: str):
        """(the counter after adding one, opened with this timeout if new; the value at read_key or None)."""
        return self._guarded(self._cache.count_and_get, self.make_key(counter_key), timeout, self.make_key(read_key))
