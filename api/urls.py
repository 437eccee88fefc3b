from django.urls import path, re_path

from api import views

app_name = "api-v1"

urlpatterns = [
    path("patients/", views.PatientListView.as_view(), name="patient-list"),
    path("patients/search/", views.PatientSearchView.as_view(), name="patient-search"),
    path("patients/<uuid:patient_id>/", views.PatientDetailView.as_view(), name="patient-detail"),
    path("patients/<uuid:patient_id>/status/", views.PatientStatusView.as_view(), name="patient-status"),
    path("patients/<uuid:patient_id>/journey/", views.PatientJourneyView.as_view(), name="patient-journey"),
    path("patients/<uuid:patient_id>/fhir/", views.PatientFhirView.as_view(), name="patient-fhir"),
    path("steps/", views.StepListView.as_view(), name="step-list"),
    path("steps/<uuid:step_id>/", views.StepDetailView.as_view(), name="step-detail"),
    path("steps/<uuid:step_id>/complete/", views.StepCompleteView.as_view(), name="step-complete"),
    # Anything else under /api/v1/ (newlines in the path included) answers the API's JSON 404.
    re_path(r"", views.api_not_found),
]
