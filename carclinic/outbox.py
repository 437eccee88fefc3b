"""Claim and retry: the one way an outbox row (a reminder, a webhook delivery) is sent by one worker at a
time, tried again after a failure, and given up visibly.

* **Claim** with a conditional UPDATE: the WHERE clause says "still claimable", and PostgreSQL re-checks
  it on a row another worker changed while we waited for its lock, so of two workers reaching the same
  row exactly one gets it. The claim carries its time; a claim older than the caller's timeout belongs to
  a worker that died and may be taken again (the caller says how, in `claimable`).
* **Retry** after a failure with a backoff that doubles (first_delay, 2×, 4× … at most longest_delay), so
  a server that is down is not hammered; after `max_attempts` the row is **given up** — the caller marks
  it failed and logs an error, never silently.

No model of its own: each outbox keeps its columns (state, attempts, next-attempt time) and passes them.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

log = logging.getLogger("carclinic.outbox")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    first_delay: timedelta
    longest_delay: timedelta = timedelta(hours=6)

    def delay(self, attempts: int) -> timedelta:
        """How long to wait after the `attempts`-th failed try."""
        return min(self.first_delay * 2 ** max(attempts - 1, 0), self.longest_delay)

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def next_attempt(self, *, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed tries; None when they are used up (give up)."""
        return None if self.gives_up(attempts) else now + self.delay(attempts)


def claim(queryset: QuerySet, *, claimable: Q, **changes) -> int:
    """Take the rows of `queryset` that are still `claimable`, writing `changes` (the claim: a token, a
    state, a lease time, attempts + 1) in the same conditional UPDATE. Returns how many are ours.

    Keep `claimable` on the updated table itself (no join): PostgreSQL re-checks only the updated row's
    own clauses after a wait, and a join would turn the UPDATE into `id IN (SELECT …)` on an old snapshot."""
    return queryset.filter(claimable).update(**changes)


def gave_up(outbox: str, ids, *, attempts: int, error: str) -> None:
    """Say, loudly, that rows were given up: an operator must see it in the logs (and the caller keeps a
    failed state or an audit row that the health view counts)."""
    for row_id in ids:
        log.error("%s gave up id=%s attempts=%d error=%s", outbox, row_id, attempts, error)
