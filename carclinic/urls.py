from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from staff.login import ClinicLoginView
from staff.passwords import ClinicPasswordChangeForm

urlpatterns = [
    path("admin/", admin.site.urls),
    # Ahead of the API's own routes, whose catch-all answers every other /api/v1/ path with a 404.
    path("api/v1/manufacturing/", include("api.manufacturing.urls")),
    path("api/v1/contracts/", include("api.contracts.urls")),
    path("api/v1/", include("api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script for the CSP to allow.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("notifications/", include("notifications.urls")),
    path("alerts/", include("alerts.urls")),
    path("manufacturing/", include("manufacturing.urls")),
    path("planning/", include("planning.urls")),
    path("followup/", include("followup.urls")),
    path("contracts/", include("contracts.urls")),
    path("accounts/login/", ClinicLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/", auth_views.PasswordChangeView.as_view(form_class=ClinicPasswordChangeForm), name="password_change"
    ),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("", include("patients.urls")),
    path("", include("journeys.urls")),
]
