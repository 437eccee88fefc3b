import os

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

API_SCHEMA_SETTINGS = {
    "DESCRIPTION": (
        "Patient journeys of the CD19 CAR-T programme, for hospital systems, payers and registries.\n\n"
        "**Keys.** An administrator makes a client with `manage.py create_api_client NAME --role viewer` "
        "(or `--role integration` to record step completions) and hands over the key it prints once. "
        "Send it as `Authorization: Bearer <key>`.\n\n"
        "**Incremental sync.** List `/api/v1/patients/`, follow `next` to the end, keep `sync_from`; next time "
        "pass it as `updated_since`. You may see a patient twice, never miss one.\n\n"
        "**Completing a step safely.** Read the step's `etag`, POST to `/api/v1/steps/{id}/complete/` with "
        "`If-Match: <etag>` and an `Idempotency-Key`. 409 means someone changed it first (the body shows it); "
        "a retry with the same key returns the first answer.\n\n"
        "**Errors** are `{status, code, detail, field_errors}`; 404 also means \"not visible to you\"; "
        "429 comes with Retry-After."
    ),
    "ENUM_NAME_OVERRIDES": {
        "StepStatusEnum": "journeys.models.StepStatus",
        "JourneyStatusEnum": "journeys.models.JourneyStatus",
        "StageStatusEnum": "journeys.models.StageStatus",
        "StageNumberEnum": "journeys.models.StageNumber",
    },
}

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("journeys.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(custom_settings=API_SCHEMA_SETTINGS), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("notifications/", include("notifications.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("", include("patients.urls")),
    path("", include("journeys.urls")),
]

if os.environ.get("CARCLINIC_BENCH_VIEWS") == "1":
    # A constant JSON answer through the same middleware: the benchmark's baseline. Never in production.
    from bench.views import constant_json

    urlpatterns.append(path("bench/constant/", constant_json))
