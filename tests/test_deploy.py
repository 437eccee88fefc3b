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
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


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
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'carclinic.settings'); django.setup(); {code}",
        ],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split()[-5:] == ["False", "True", "True", "True", "True"], result.stderr


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'carclinic.settings'); django.setup(); {code}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_importing_the_settings_creates_no_folder(tmp_path):
    """With the embedded defaults (SQLite, filesystem broker) the settings name var/ but make nothing: a test
    run or a process with a read-only code folder must not write there."""
    var = tmp_path / "var"
    env = production_env(CARCLINIC_VAR_DIR=str(var), DATABASE_URL=None, CELERY_BROKER_URL=None)
    result = _run_python("from django.conf import settings as s; print(s.CELERY_BROKER_URL, s.DATABASES['default']['NAME'])", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "filesystem://" and str(var) in result.stdout
    assert not var.exists()


def test_the_local_folders_are_made_where_they_are_used(tmp_path):
    """manage.py (and wsgi, asgi, the Celery app) make the SQLite folder and the broker's folders, and only those."""
    var = tmp_path / "var"
    result = manage("check", env=production_env(CARCLINIC_VAR_DIR=str(var), DATABASE_URL=None, CELERY_BROKER_URL=None))
    assert result.returncode == 0, result.stderr
    assert sorted(path.relative_to(var).as_posix() for path in var.rglob("*") if path.is_dir()) == [
        "celery-broker",
        "celery-broker/control",
        "celery-broker/processed",
        "celery-broker/queue",
    ]
    # Pointed at PostgreSQL and Redis, nothing at all.
    other = tmp_path / "other"
    result = manage("check", env=production_env(CARCLINIC_VAR_DIR=str(other)))
    assert result.returncode == 0, result.stderr
    assert not other.exists()


def test_the_settings_read_at_run_time_are_declared():
    """Every setting the code reads is declared in carclinic/settings.py from the environment, with its default."""
    env = production_env(CLINIC_POLL_SECONDS="7", NOTIFICATION_POLL_SECONDS=None, API_KEY_CACHE_SECONDS=None, CACHE_URL=None)
    names = "CLINIC_POLL_SECONDS", "NOTIFICATION_POLL_SECONDS", "API_KEY_CACHE_SECONDS"
    result = _run_python(f"from django.conf import settings as s; print(*[getattr(s, n) for n in {names!r}])", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["7", "60", "0"]
    result = _run_python(
        "from django.conf import settings as s; print(s.API_KEY_CACHE_SECONDS)",
        production_env(CACHE_URL="redis://127.0.0.1:6379/15"),
    )
    assert result.stdout.split()[-1] == "5", result.stderr


def _debug_secret_key(var_dir) -> subprocess.CompletedProcess:
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'carclinic.settings'); django.setup(); "
        "from django.conf import settings; print(settings.SECRET_KEY)"
    )
    env = production_env(DJANGO_SECRET_KEY=None, DJANGO_DEBUG="1", CARCLINIC_VAR_DIR=str(var_dir))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_debug_uses_a_key_made_for_this_checkout_not_one_from_the_repository(tmp_path):
    """Issue 12, finding 10: the debug fallback key was published in carclinic/settings.py."""
    first = _debug_secret_key(tmp_path / "var")
    assert first.returncode == 0, first.stderr
    key = first.stdout.split()[-1]
    assert len(key) >= 50 and "dev-only" not in key
    stored = tmp_path / "var" / "secret_key"
    assert stored.read_text().strip() == key and stored.stat().st_mode & 0o777 == 0o600
    assert _debug_secret_key(tmp_path / "var").stdout.split()[-1] == key  # the same on the next start
    assert key not in (ROOT / "carclinic" / "settings.py").read_text()


def test_debug_starts_in_a_read_only_checkout(tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        result = _debug_secret_key(read_only / "var")
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.split()[-1]) >= 50
    finally:
        read_only.chmod(0o700)
