"""Included by carclinic/urls.py under /api/v1/contracts/ (ahead of the API's catch-all)."""

from django.urls import path

from api.contracts import views

urlpatterns = [
    path("enrolments/", views.EnrolmentListView.as_view(), name="contracts-enrolment-list"),
    path("enrolments/<uuid:enrolment_id>/", views.EnrolmentDetailView.as_view(), name="contracts-enrolment-detail"),
]
