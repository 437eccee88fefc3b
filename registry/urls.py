from django.urls import path

from registry import views

app_name = "registry"

urlpatterns = [
    path("metrics/", views.metrics_page, name="metrics"),
    path("metrics/<slug:kind>.csv", views.metrics_csv, name="metrics_csv"),
]
