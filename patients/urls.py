from django.urls import path

from patients import views

urlpatterns = [
    path("patients/new/", views.patient_enrol, name="patient_enrol"),
    path("patients/<uuid:public_id>/details/", views.patient_edit, name="patient_edit"),
    path("patients/<uuid:public_id>/measurements/new/", views.measurement_new, name="measurement_new"),
    path("patients/<uuid:public_id>/consents/new/", views.consent_new, name="consent_new"),
    path("patients/<uuid:public_id>/consents/<int:consent_id>/withdraw/", views.consent_withdraw, name="consent_withdraw"),
]
