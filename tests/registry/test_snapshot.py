"""The metrics page serves a stored snapshot: the service and the beat task that compute it, the page that reads
it (constant queries at any size, never the aggregates), its age shown, stale or new ranges computed on request,
and "Recompute now"."""

from datetime import date

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from carclinic.celery import app as celery_app
from carclinic.errors import NotPermitted
from registry import selectors, services, tasks
from registry.models import SCHEDULED, MetricsSnapshot
from tests.factories import bulk_journeys
from tests.registry.builders import shipped_protocol
from tests.registry.conftest import build_small_clinic

PAGE = "/registry/metrics/"
RECOMPUTE = "/registry/metrics/recompute/"
# Session, user and groups (3), the snapshot (1), base.html's unread notifications and open alerts (2), the
# session saved on every request for the idle timeout (savepoint, update, release: 3). The aggregates alone
# take more than this.
PAGE_QUERIES_WITH_A_SNAPSHOT = 9


def page_queries(client, params=None) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(PAGE, params or {})
    assert response.status_code == 200
    return len(captured), response.content.decode()


# --- The service and the task ---------------------------------------------------------------------------


def test_the_snapshot_holds_the_same_tables_as_the_live_selectors(clinic):
    snapshot = services.metrics_snapshot_refresh(date_from=None, date_to=None)
    live = selectors.clinic_metrics(now=timezone.now())
    assert selectors.metrics_from_json(snapshot.tables) == live
    assert (snapshot.range_key, snapshot.computed_by, snapshot.computed_by_label) == ("all", None, SCHEDULED)
    assert snapshot.computed_at == timezone.now()
    ranged = services.metrics_snapshot_refresh(date_from=date(2026, 2, 1), date_to=None)
    assert ranged.range_key == "2026-02-01..-"
    assert selectors.metrics_from_json(ranged.tables) == selectors.clinic_metrics(now=timezone.now(), since=date(2026, 2, 1))


def test_the_task_run_twice_keeps_one_row_per_range(clinic, at_clinic):
    first = tasks.metrics_snapshot_refresh()
    at_clinic(2026, 6, 15, 12, 15)
    second = tasks.metrics_snapshot_refresh()
    assert first["range"] == second["range"] == "all"
    snapshot = MetricsSnapshot.objects.get()
    assert snapshot.computed_at == timezone.now() and snapshot.computed_by_label == SCHEDULED
    tasks.metrics_snapshot_refresh("2026-02-01", "2026-03-31")
    tasks.metrics_snapshot_refresh("2026-02-01", "2026-03-31")
    assert sorted(MetricsSnapshot.objects.values_list("range_key", flat=True)) == ["2026-02-01..2026-03-31", "all"]


def test_the_beat_refreshes_the_default_range_every_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["registry-metrics-snapshot"]
    assert entry["task"] == "registry.metrics_snapshot_refresh" and "args" not in entry
    assert entry["schedule"] == 60.0 * settings.METRICS_SNAPSHOT_INTERVAL_MINUTES == 900.0
    assert "registry.metrics_snapshot_refresh" in celery_app.tasks


def test_a_user_who_may_not_see_the_metrics_may_not_compute_them(db, nurse):
    with pytest.raises(NotPermitted):
        services.metrics_snapshot_refresh(date_from=None, date_to=None, actor=nurse)
    assert not MetricsSnapshot.objects.exists()


# --- The page -------------------------------------------------------------------------------------------


def test_with_a_fresh_snapshot_the_page_takes_the_same_few_queries_at_any_size(db, at_clinic, client, coordinator):
    at_clinic(2026, 6, 15, 12, 0)
    client.force_login(coordinator)
    services.metrics_snapshot_refresh(date_from=None, date_to=None)
    empty, _ = page_queries(client)

    clinic = build_small_clinic()
    bulk_journeys(protocol=shipped_protocol(), count=60, leukapheresis_date=clinic["d"].leukapheresis_date)
    services.metrics_snapshot_refresh(date_from=None, date_to=None)
    with CaptureQueriesContext(connection) as computing:
        selectors.clinic_metrics(now=timezone.now())
    larger, html = page_queries(client)

    # Equal to the empty clinic's count and below what the aggregates alone take: the selectors did not run.
    assert larger == empty <= PAGE_QUERIES_WITH_A_SNAPSHOT < len(computing)
    assert "22.5" in html and "Plant North" in html  # the snapshot's tables, as the page prints them


def test_the_page_shows_the_snapshot_not_what_was_recorded_since(db, at_clinic, client, coordinator):
    at_clinic(2026, 6, 15, 12, 0)
    client.force_login(coordinator)
    services.metrics_snapshot_refresh(date_from=None, date_to=None)
    build_small_clinic()
    at_clinic(2026, 6, 15, 12, 20)
    client.force_login(coordinator)  # signed out after 15 idle minutes
    html = client.get(PAGE).content.decode()
    assert "22.5" not in html and "Nothing in this range." in html
    assert 'As of <time datetime="2026-06-15T12:00:00+02:00">12:00</time>' in html
    assert "(computed every 15 minutes)" in html and "Scheduled computation." in html
    assert 'action="/registry/metrics/recompute/"' in html and "Recompute now</button>" in html


def test_a_snapshot_older_than_the_maximum_age_is_recomputed_on_request(clinic, at_clinic, client, coordinator):
    client.force_login(coordinator)
    services.metrics_snapshot_refresh(date_from=None, date_to=None)
    # As if computed before the clinic was recorded: an empty range stands in for the old tables.
    MetricsSnapshot.objects.update(
        tables=selectors.metrics_as_json(selectors.clinic_metrics(now=timezone.now(), since=date(2027, 1, 1)))
    )
    at_clinic(2026, 6, 15, 12, 30)  # 30 minutes: still served
    client.force_login(coordinator)  # signed out after 15 idle minutes
    assert "22.5" not in client.get(PAGE).content.decode()
    at_clinic(2026, 6, 15, 12, 31)
    html = client.get(PAGE).content.decode()
    assert "22.5" in html and ">12:31</time>" in html and f"Computed for {coordinator.username}." in html
    snapshot = MetricsSnapshot.objects.get()
    assert (snapshot.computed_at, snapshot.computed_by) == (timezone.now(), coordinator)


def test_a_new_range_is_computed_once_then_read(clinic, client, coordinator):
    client.force_login(coordinator)
    with CaptureQueriesContext(connection) as first:
        html = client.get(PAGE, {"since": "2026-02-01"}).content.decode()
    assert "25.5" in html and "(computed for this range when asked, again when older than 30 minutes)" in html
    again, html = page_queries(client, {"since": "2026-02-01"})
    assert again <= PAGE_QUERIES_WITH_A_SNAPSHOT < len(first)
    assert "25.5" in html
    assert list(MetricsSnapshot.objects.values_list("range_key", flat=True)) == ["2026-02-01..-"]


def test_a_coordinator_recomputes_now_and_comes_back_to_the_same_range(clinic, at_clinic, client, coordinator):
    client.force_login(coordinator)
    client.get(PAGE, {"since": "2026-02-01"})
    at_clinic(2026, 6, 15, 12, 5)
    response = client.post(RECOMPUTE, {"since": "2026-02-01"})
    assert response.status_code == 302 and response["Location"] == f"{PAGE}?since=2026-02-01"
    snapshot = MetricsSnapshot.objects.get(range_key="2026-02-01..-")
    assert (snapshot.computed_at, snapshot.computed_by, snapshot.computed_by_label) == (
        timezone.now(),
        coordinator,
        coordinator.username,
    )
    html = client.get(response["Location"]).content.decode()
    assert "Metrics recomputed as of 12:05." in html and ">12:05</time>" in html
    assert client.post(RECOMPUTE).status_code == 302 and MetricsSnapshot.objects.filter(range_key="all").exists()
    assert client.get(RECOMPUTE).status_code == 405


def test_a_nurse_may_not_recompute(clinic, client, nurse):
    client.force_login(nurse)
    assert client.post(RECOMPUTE).status_code == 403
    assert not MetricsSnapshot.objects.exists()


def test_anonymous_recompute_goes_to_sign_in(client):
    response = client.post(RECOMPUTE)
    assert response.status_code == 302 and reverse("login") in response["Location"]
