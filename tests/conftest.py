"""Shared fixtures. The suite runs against the real PostgreSQL and Redis and fails loudly without them."""

import os
import socket
from datetime import date

import pytest
from django.contrib.auth.models import Group
from hypothesis import settings as hypothesis_settings

from tests.factories import PatientFactory, UserFactory, reseed

# Property tests (hypothesis, schemathesis) explore new inputs on every developer's run; in CI they replay
# the same derandomized examples, so that a submission is judged on the code it carries, not on the inputs
# a run happened to draw (a CJK character in a filter, found this way, is now a test of its own).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
    # The same for the factories' names and dates: a CI run of a commit draws what the run before it drew.
    reseed("carclinic-ci")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    # Failing here, with the command that starts the service, beats 200 confusing errors later.
    missing = []
    if not _reachable("127.0.0.1", 5432):
        missing.append("PostgreSQL on 127.0.0.1:5432: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    if not _reachable("127.0.0.1", 6379):
        missing.append(
            "Redis on 127.0.0.1:6379: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
        )
    from django.conf import settings

    # The suite is PostgreSQL's: row locks, partial indexes and the hand-written status statement are
    # tested for real, so a run on another database stops here instead of skipping them.
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing.append("DATABASE_URL must point at PostgreSQL (make test sets it)")
    if missing and not os.environ.get("CARCLINIC_ALLOW_MISSING_SERVICES"):
        pytest.exit("The tests need real PostgreSQL and Redis:\n  " + "\n  ".join(missing), returncode=3)


@pytest.fixture
def make_user(db):
    def make(*roles: str, **fields):
        user = UserFactory(**fields)
        if roles:
            user.groups.add(*Group.objects.filter(name__in=roles))
        return user

    return make


@pytest.fixture
def coordinator(make_user):
    return make_user("coordinator", first_name="Cora", last_name="Ordinator")


@pytest.fixture
def nurse(make_user):
    return make_user("nurse", first_name="Nina", last_name="Nurse")


@pytest.fixture
def physician(make_user):
    return make_user("physician", first_name="Phil", last_name="Physician")


@pytest.fixture
def viewer(make_user):
    return make_user("viewer", first_name="Vera", last_name="Viewer")


@pytest.fixture
def protocol(db):
    from journeys.models import ProtocolTemplate

    # Shipped by the data migration, as in production.
    return ProtocolTemplate.objects.get(version=1, collection=True)


@pytest.fixture
def patient(db):
    return PatientFactory()


@pytest.fixture
def journey(coordinator, patient, protocol):
    from journeys.services import journey_start

    return journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=date.today())


@pytest.fixture
def superuser(make_user):
    """The admin role as the clinic gets it: a superuser, in no group."""
    return make_user(first_name="Ada", last_name="Admin", is_superuser=True, is_staff=True)


@pytest.fixture
def at_clinic(time_machine):
    """Pin the clock to a moment given in the clinic's local time (Europe/Berlin); tick=False so that
    'now' is the same moment for the whole test."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    def move(*fields: int):
        moment = datetime(*fields, tzinfo=ZoneInfo("Europe/Berlin"))
        time_machine.move_to(moment, tick=False)
        return moment

    return move


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness (~0.3 s a user on this machine) is the point in production and pure
    # waiting in tests that make several users each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _no_connection_outlives_the_suite(django_db_setup, django_db_blocker):
    """Close what server threads and worker subprocesses left open, so the test database can be dropped.

    The live server's request threads each keep a connection of their own; without this, teardown
    warns that the database "is being accessed by other users" and leaves it behind for the next run.
    """
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
