"""The follow-up panel, its charts and the dashboard's malignancy card, per role, with their query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from journeys.models import Step


def _queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


@pytest.mark.django_db
def test_patient_page_loads_the_follow_up_panel_by_url(client, coordinator, in_follow_up):
    client.force_login(coordinator)
    page = client.get(reverse("patient_detail", args=[in_follow_up.patient.public_id])).content.decode()
    assert reverse("followup:patient_panel", args=[in_follow_up.public_id]) in page


@pytest.mark.django_db
def test_panel_shows_status_charts_and_tables_in_constant_queries(client, coordinator, in_follow_up):
    client.force_login(coordinator)
    url = reverse("followup:patient_panel", args=[in_follow_up.public_id])
    in_follow_up.record("visit-day-14", 14, cd19_b_cells="0", igg="6.2", disease_activity="4")
    in_follow_up.record("remission-month-3", 90, remission="doris", disease_activity="0")
    client.get(url)
    small, page = _queries(client, url)
    assert "<strong>Aplasia</strong>" in page and "DORIS remission" in page
    for code, day in (("visit-day-28", 28), ("visit-month-2", 60), ("visit-month-3", 90), ("visit-month-6", 182)):
        in_follow_up.record(code, day, cd19_b_cells="40", igg="3.1", disease_activity="1")
    large, page = _queries(client, url)
    assert large == small <= 10  # session, user, roles, banners; the journey, visits, links, steps
    assert "Reconstituted" in page and "<strong>Hypogammaglobulinaemia</strong>" in page
    # Three charts, each an SVG with a name and a title, and a table with a caption and header cells.
    assert page.count('<svg viewBox="0 0 320 160" role="img" aria-label="') == 3
    assert page.count("<title>") == 3 and page.count("<caption") == 3
    assert '<th scope="col">CD19+ B cells (/µL)</th>' in page and '<th scope="row">' in page
    assert 'class="chart-day0"' in page and ">Day 0</text>" in page
    assert "style=" not in page  # the CSP forbids inline styles


@pytest.mark.django_db
def test_panel_for_every_clinical_role(client, users, in_follow_up):
    url = reverse("followup:patient_panel", args=[in_follow_up.public_id])
    for role, user in users.items():
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, role
        # The questionnaire button only for those who may send it.
        assert ("E-mail the questionnaire" in response.content.decode()) == (role in ("coordinator", "nurse", "admin")), role
    client.logout()
    assert client.get(url).status_code == 302


@pytest.mark.django_db
def test_malignancy_card_for_coordinators_and_physicians(client, users, in_follow_up):
    in_follow_up.record("ltfu-year-2", 730, new_malignancy=True, malignancy_type="T-cell lymphoma")
    url = reverse("followup:malignancies")
    for role, user in users.items():
        client.force_login(user)
        response = client.get(url)
        dashboard = client.get(reverse("dashboard")).content.decode()
        if role in ("coordinator", "physician", "admin"):
            assert response.status_code == 200, role
            assert in_follow_up.patient.mrn in response.content.decode() and "T-cell lymphoma" in response.content.decode()
            assert url in dashboard
        else:
            assert response.status_code == 403, role
            assert url not in dashboard


@pytest.mark.django_db
def test_malignancy_card_query_count_is_constant(client, coordinator, in_follow_up, protocol):
    from journeys.services import journey_start
    from tests.factories import PatientFactory

    client.force_login(coordinator)
    url = reverse("followup:malignancies")
    in_follow_up.record("ltfu-year-2", 730, new_malignancy="confirmed")
    client.get(url)
    small, _ = _queries(client, url)
    for _ in range(3):
        journey = journey_start(
            actor=coordinator,
            patient_id=PatientFactory().id,
            protocol_id=protocol.id,
            leukapheresis_date=in_follow_up.leukapheresis_date,
        )
        Step.objects.filter(journey=journey, template__code="ltfu-year-3").update(
            status="done", completed_at=journey.started_at, record={"new_malignancy": True}
        )
    large, page = _queries(client, url)
    assert large == small and page.count("<tr>") == 1 + 4


@pytest.mark.django_db
def test_the_questionnaire_is_offered_once_the_years_window_opens(client, coordinator, in_follow_up):
    client.force_login(coordinator)
    url = reverse("followup:patient_panel", args=[in_follow_up.public_id])
    assert "E-mail the questionnaire for year 6" in client.get(url).content.decode()
    later = in_follow_up.day0 + timedelta(days=9 * 365)
    Step.objects.filter(journey=in_follow_up, template__code="ltfu-year-6").update(
        window_opens_on=later, due_on=later, window_closes_on=later
    )
    assert "E-mail the questionnaire" not in client.get(url).content.decode()
