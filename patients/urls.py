from django.urls import path

from patients import views

urlpatterns = [
    path("patients/new/", views.patient_enrol, name="patient_enrol"),
]
