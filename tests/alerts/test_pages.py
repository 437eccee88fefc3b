"""Alerts on the pages: on top of every page of the people told, acknowledged with a signature, read-only
in the admin."""

import pytest
from django.urls import reverse

from alerts import services
from alerts.models import AlertKind, ClinicalAlert
from tests.factories import PatientFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _plain_static(settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture
def alert(physician, coordinator):
    patient = PatientFactory(physician=physician, coordinator=coordinator)
    raised, _ = services.alert_raise(
        patient_id=patient.id,
        kind=AlertKind.ICANS,
        key="icans:1",
        summary="ICANS grade 2 (computed) on Day +4",
        escalate_after_minutes=30,
    )
    return raised


def test_the_banner_stays_on_top_of_the_dashboard_until_acknowledged(client, physician, alert):
    client.force_login(physician)
    page = client.get(reverse("dashboard")).content.decode()
    assert "ICANS grade 2 (computed) on Day +4" in page and alert.patient.mrn in page
    services.alert_acknowledge(actor=physician, alert_id=alert.id, password=PASSWORD)
    assert "ICANS grade 2" not in client.get(reverse("dashboard")).content.decode()


def test_the_banner_shows_only_to_those_told(client, make_user, alert):
    client.force_login(make_user("nurse"))
    assert "ICANS grade 2" not in client.get(reverse("my_steps")).content.decode()


def test_the_banner_costs_one_query(client, physician, alert, django_assert_num_queries):
    client.force_login(physician)
    client.get(reverse("alert_list"))
    with django_assert_num_queries(0):
        from alerts.context_processors import open_alerts

        class Request:
            user = physician

        context = open_alerts(Request())
    with django_assert_num_queries(1):
        assert [a.pk for a in context["banner_alerts"]()["shown"]] == [alert.pk]
        context["banner_alerts"]()  # cached for the rest of the page


def test_a_physician_acknowledges_on_the_alert_page(client, physician, alert):
    client.force_login(physician)
    url = reverse("alert_detail", args=[alert.public_id])
    wrong = client.post(url, {"password": "nope", "note": "", "version": alert.version})
    assert wrong.status_code == 400 and "That is not your password" in wrong.content.decode()
    done = client.post(url, {"password": PASSWORD, "note": "Dexamethasone started", "version": alert.version}, follow=True)
    assert "Alert acknowledged" in done.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == physician and alert.acknowledgement_note == "Dexamethasone started"


def test_a_stale_form_loses_with_a_message(client, physician, make_user, alert):
    client.force_login(physician)
    other = make_user("physician")
    services.alert_acknowledge(actor=other, alert_id=alert.id, password=PASSWORD)
    answer = client.post(reverse("alert_detail", args=[alert.public_id]), {"password": PASSWORD, "version": alert.version})
    assert answer.status_code == 409  # the page now shows who acknowledged it; no second signature
    assert f"Acknowledged by <strong>{other}</strong>" in answer.content.decode()


@pytest.mark.parametrize("role", ["coordinator", "nurse", "viewer"])
def test_others_see_the_alert_but_cannot_acknowledge_a_physicians_alert(client, make_user, role, alert):
    client.force_login(make_user(role))
    url = reverse("alert_detail", args=[alert.public_id])
    page = client.get(url)
    assert page.status_code == 200 and "Sign and acknowledge" not in page.content.decode()
    assert client.post(url, {"password": PASSWORD, "version": alert.version}).status_code == 403
    alert.refresh_from_db()
    assert alert.is_open


def test_signed_out_people_are_sent_to_sign_in(client, alert):
    answer = client.get(reverse("alert_detail", args=[alert.public_id]))
    assert answer.status_code == 302 and reverse("login") in answer["Location"]


def test_the_admin_cannot_change_or_delete_an_alert(client, superuser, alert):
    client.force_login(superuser)
    assert client.get(reverse("admin:alerts_clinicalalert_change", args=[alert.pk])).status_code == 200
    delete = client.post(reverse("admin:alerts_clinicalalert_delete", args=[alert.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert ClinicalAlert.objects.filter(pk=alert.pk).exists()
