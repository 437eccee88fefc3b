"""The metrics page: who sees it, what it shows, its CSV exports (audited), constant queries, the nav link."""

import pytest
from django.urls import reverse

from registry.models import ExportChannel, ExportKind, RegistryExport
from tests.factories import bulk_journeys
from tests.registry.builders import shipped_protocol

PAGE = "/registry/metrics/"


@pytest.mark.parametrize("role", ["coordinator", "physician", "admin"])
def test_the_page_shows_every_table_with_its_caption(clinic, client, make_user, role):
    client.force_login(make_user(role))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    for caption in (
        "Vein-to-vein days by indication",
        "Turnaround days by plant and maker",
        "On-time rate by stage",
        "Length of stay in days by indication",
        "Patients by highest CRS and ICANS grade",
        "Follow-up visits due and done by year",
        "Journeys per stage at each month",
    ):
        assert f"{caption}</caption>" in html or f"{caption}" in html
    assert html.count("<caption") == 7 and html.count('scope="col"') > 20
    # The worked answers of test_selectors, as the page prints them.
    assert "22.5" in html and "21.8–23.3" in html  # SLE vein-to-vein median and IQR
    assert "11.3" in html and "Plant North" in html and "Maker of Betacel" in html
    assert "75 %" in html  # steps on time, all stages
    assert f'href="{PAGE}" aria-current="page">Metrics</a>' in html


@pytest.mark.parametrize("role", ["nurse", "viewer"])
def test_the_page_is_refused_to_other_roles_and_not_in_their_nav(clinic, client, make_user, role):
    client.force_login(make_user(role))
    assert client.get(PAGE).status_code == 403
    assert client.post(reverse("registry:metrics_csv", args=["on_time"])).status_code == 403
    assert PAGE not in client.get(reverse("dashboard")).content.decode()
    assert not RegistryExport.objects.exists()


def test_anonymous_goes_to_sign_in(client):
    assert client.get(PAGE).status_code == 302


def test_a_bad_range_shows_a_field_error_and_all_dates(clinic, client, coordinator):
    client.force_login(coordinator)
    response = client.get(PAGE, {"since": "2026-05-01", "until": "2026-04-01"})
    assert response.status_code == 200 and "The end of the range comes before its start." in response.content.decode()


def test_a_range_narrows_the_tables(clinic, client, coordinator):
    client.force_login(coordinator)
    html = client.get(PAGE, {"since": "2026-02-01"}).content.decode()
    assert "25.5" in html  # vein-to-vein median of B and C once A (Day 0 26 January) is out


def test_each_table_exports_as_csv_and_is_audited(clinic, client, physician):
    client.force_login(physician)
    response = client.post(reverse("registry:metrics_csv", args=["vein_to_vein"]), {"since": "2026-02-01"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines == [
        "indication,n,median_days,q1_days,q3_days,min_days,max_days",
        "Myasthenia gravis,1,27.0,27.0,27.0,27.0,27.0",
        "Systemic lupus erythematosus,1,24.0,24.0,24.0,24.0,24.0",
        "All indications,2,25.5,24.8,26.3,24.0,27.0",
    ]
    audit = RegistryExport.objects.get()
    assert (audit.kind, audit.channel, audit.exported_by, audit.row_count, audit.filters) == (
        ExportKind.VEIN_TO_VEIN,
        ExportChannel.PAGE,
        physician,
        3,
        {"since": "2026-02-01"},
    )
    for kind in ("turnaround", "on_time", "length_of_stay", "grades", "follow_up", "stages"):
        response = client.post(reverse("registry:metrics_csv", args=[kind]))
        assert response.status_code == 200, kind
    grades = b"".join(client.post(reverse("registry:metrics_csv", args=["grades"])).streaming_content).decode().splitlines()
    assert grades[:4] == ["highest_grade,crs_patients,icans_patients", "grade 0,1,2", "grade 1,1,1", "grade 2,1,0"]
    assert RegistryExport.objects.count() == 8
    assert client.post(reverse("registry:metrics_csv", args=["registry"])).status_code == 404
    assert client.get(reverse("registry:metrics_csv", args=["grades"])).status_code == 405


def test_computing_the_snapshot_on_request_takes_the_same_queries_at_two_sizes(
    clinic, client, coordinator, django_assert_max_num_queries
):
    """A range with no snapshot yet is computed on the request: the aggregates' constant queries plus the upsert.
    (With a snapshot stored, the page is cheaper still: tests/registry/test_snapshot.py.)"""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from registry.models import MetricsSnapshot

    client.force_login(coordinator)
    with CaptureQueriesContext(connection) as small:
        assert client.get(PAGE).status_code == 200
    bulk_journeys(protocol=shipped_protocol(), count=60, leukapheresis_date=clinic["d"].leukapheresis_date)
    MetricsSnapshot.objects.all().delete()
    with django_assert_max_num_queries(len(small)):
        assert client.get(PAGE).status_code == 200
    assert len(small) <= 24
