"""Production settings: `check --deploy` is clean, and without a secret key the settings refuse to load."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def production_env(**overrides) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "CELERY_"))}
    test_db = settings.DATABASES["default"]
    env.update(
        DJANGO_SECRET_KEY="".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(60)),
        DJANGO_ALLOWED_HOSTS="clinic.example.org",
        DATABASE_URL=f"postgres://{test_db['USER']}@{test_db['HOST']}:{test_db['PORT']}/{test_db['NAME']}",
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
    )
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_reports_nothing_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNING" not in output.upper().replace("--FAIL-LEVEL WARNING", ""), output


def test_debug_off_without_a_secret_key_refuses_to_start():
    for debug in (None, "0", "false"):
        result = manage("check", env=production_env(DJANGO_SECRET_KEY=None, DJANGO_DEBUG=debug))
        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr and "DJANGO_SECRET_KEY" in result.stderr, result.stderr


def test_debug_off_has_https_settings_on():
    code = ("from django.conf import settings as s; "
            "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)")
    result = subprocess.run([sys.executable, "-c", f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
                             f"'carclinic.settings'); django.setup(); {code}"],
                            cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=60)
    assert result.stdout.split()[-5:] == ["False", "True", "True", "True", "True"], result.stderr
