"""Property-based tests of the API against its own OpenAPI document: for every operation at least 100
generated requests, no 5xx, and every answer (status, headers, body) as the document says."""

import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from apiclients.services import api_client_create

EXAMPLES = 100


def _load_schema():
    from carclinic.wsgi import application

    # Generating the document touches no table, so it is read once, at collection. (The lazy
    # `schemathesis.pytest.from_fixture` loader trips over pytest 9's nodes in schemathesis 4.32.)
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


schema = _load_schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection_open():
    """The WSGI handler closes "old" database connections at the end of each request; inside the test's
    transaction that would close the connection under the test, so, as Django's own test client does,
    the handler is unhooked for the duration."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def existing(journey):
    """A real patient and step, so that some generated requests reach past the 404."""
    return {
        "patient_id": str(journey.patient.public_id),
        "step_id": str(journey.steps.get(template__code="eligibility-labs").public_id),
    }


def _key(role: str) -> str:
    # A generous rate: the test is about the answers, not about the throttle (tested on its own).
    _, key = api_client_create(name=f"schemathesis-{role}", role=role, throttle_rate="100000/min", sees_all_patients=True)
    return key


@pytest.fixture
def viewer_key(db):
    return _key("viewer")


@pytest.fixture
def integration_key(db):
    return _key("integration")


@pytest.fixture
def sent():
    """Counts the requests of one operation's run; fewer than EXAMPLES fails the test at teardown."""
    requests: list[str] = []
    yield requests
    assert len(requests) >= EXAMPLES, f"only {len(requests)} generated requests"


def _point_some_at_real_objects(case, existing):
    """Half the generated ids (chosen by the id itself, so shrinking stays stable) are swapped for real ones.
    Only in cases meant to be valid: a deliberately malformed id must stay malformed."""
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    for name, real in existing.items():
        generated = (case.path_parameters or {}).get(name)
        if generated is not None and zlib.crc32(str(generated).encode()) % 2 == 0:
            case.path_parameters[name] = real


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_as_a_viewer(case, existing, viewer_key, sent):
    _point_some_at_real_objects(case, existing)
    sent.append(case.id)
    case.call_and_validate(headers={"Authorization": f"Bearer {viewer_key}"})


@schema.include(operation_id="steps_complete").parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_completing_steps_as_an_integration(case, existing, integration_key, sent):
    _point_some_at_real_objects(case, existing)
    sent.append(case.id)
    # A body can fit the schema and still be refused by the clinic's rules (a dose off its prescription, a
    # time performed in year 1): that is a 400 with per-field messages, which this check would call a fault.
    case.call_and_validate(headers={"Authorization": f"Bearer {integration_key}"}, excluded_checks=[positive_data_acceptance])
