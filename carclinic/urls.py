import os

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Ahead of journeys' API, whose catch-all answers every other /api/v1/ path with a 404.
    path("api/v1/manufacturing/", include("manufacturing.api.urls")),
    path("api/v1/", include("journeys.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("notifications/", include("notifications.urls")),
    path("manufacturing/", include("manufacturing.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("", include("patients.urls")),
    path("", include("journeys.urls")),
]

if os.environ.get("CARCLINIC_BENCH_VIEWS") == "1":
    # A constant JSON answer through the same middleware: the benchmark's baseline. Never in production.
    from bench.views import ApiConstantView, constant_json

    urlpatterns.append(path("bench/constant/", constant_json))
    # Under /api/v1/ (ahead of the API's catch-all), so it is served exactly as the API's own calls are.
    urlpatterns.insert(0, path("api/v1/bench-constant/", ApiConstantView.as_view()))
