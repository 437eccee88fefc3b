"""Included by carclinic/urls.py under /api/v1/registry/ (ahead of the API's catch-all)."""

from django.urls import re_path

from api.registry import views

urlpatterns = [
    re_path(r"^export/?$", views.RegistryExportView.as_view(), name="registry-export"),
]
