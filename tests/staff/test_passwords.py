"""Issue 12, finding 12: a password change refuses the old password and one that contains the user name."""

import pytest
from django.test import Client

OLD = "correct-horse-battery"  # tests.factories.UserFactory


@pytest.fixture
def signed_in(nurse):
    http = Client()
    http.force_login(nurse)
    return http


def _change(http, new):
    return http.post("/accounts/password/", {"old_password": OLD, "new_password1": new, "new_password2": new})


def test_the_old_password_is_refused(signed_in, nurse):
    response = _change(signed_in, OLD)
    assert response.status_code == 200 and "different from your current one" in response.content.decode()


def test_a_password_containing_the_user_name_is_refused(signed_in, nurse):
    new = f"Xq7-{nurse.username.upper()}-long-enough"
    response = _change(signed_in, new)
    assert response.status_code == 200 and "cannot contain your user name" in response.content.decode()
    nurse.refresh_from_db()
    assert nurse.check_password(OLD)


def test_a_good_new_password_is_taken(signed_in, nurse):
    response = _change(signed_in, "tidal-lantern-okapi-93")
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.check_password("tidal-lantern-okapi-93")
