from django.urls import path

from registry import views

app_name = "registry"

urlpatterns = [
    path("metrics/", views.metrics_page, name="metrics"),
    path("metrics/recompute/", views.metrics_recompute, name="metrics_recompute"),
    path("metrics/<slug:kind>.csv", views.metrics_csv, name="metrics_csv"),
]
