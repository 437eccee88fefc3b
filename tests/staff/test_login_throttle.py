"""Issue 12, finding 9: password spraying from one address is stopped across user names; behind our proxy the
client's address is read from X-Forwarded-For, and only the part our proxy wrote."""

import pytest
from django.test import Client
from django.urls import reverse

from staff.client_ip import client_ip

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


@pytest.mark.django_db
def test_spraying_one_password_over_many_names_is_refused_from_that_address(settings, make_user, coordinator):
    settings.LOGIN_FAILURES_PER_ADDRESS = 6
    settings.AXES_FAILURE_LIMIT = 5
    http = Client(REMOTE_ADDR="203.0.113.7")
    names = [make_user("nurse").username for _ in range(6)]
    for name in names:  # one try each: the per-name lockout never trips
        assert http.post(reverse("login"), {"username": name, "password": "Winter2026!"}).status_code == 200
    refused = http.post(reverse("login"), {"username": coordinator.username, "password": PASSWORD})
    assert refused.status_code == 429 and b"network address" in refused.content
    assert "_auth_user_id" not in http.session
    # Another address is not affected.
    other = Client(REMOTE_ADDR="198.51.100.4")
    assert other.post(reverse("login"), {"username": coordinator.username, "password": PASSWORD}).status_code == 302


def test_the_client_address_without_a_proxy_ignores_forwarded_headers(rf, settings):
    settings.CLINIC_TRUSTED_PROXIES = 0
    request = rf.get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert client_ip(request) == "203.0.113.7"


def test_behind_one_proxy_the_address_is_the_one_it_appended(rf, settings):
    settings.CLINIC_TRUSTED_PROXIES = 1
    # The client forged "10.9.9.9"; caddy appended the address it saw.
    request = rf.get("/", REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.7")
    assert client_ip(request) == "203.0.113.7"


def test_the_compose_file_publishes_only_the_tls_proxy():
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"proxy"}
    assert "caddy" in compose["services"]["proxy"]["image"]
