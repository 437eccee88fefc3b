import pytest


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", first_name="Ada", last_name="Admin")


@pytest.fixture
def users(coordinator, nurse, physician, viewer, admin_user):
    return {"coordinator": coordinator, "nurse": nurse, "physician": physician, "viewer": viewer, "admin": admin_user}


@pytest.fixture(autouse=True)
def _plain_static(settings):
    # Pages link {% static %} files; the manifest storage would need collectstatic first.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
