from django.urls import path

from followup import views

app_name = "followup"
urlpatterns = [
    path("journeys/<uuid:public_id>/panel/", views.patient_panel, name="patient_panel"),
    path("malignancies/", views.malignancies, name="malignancies"),
    path("steps/<uuid:public_id>/questionnaire/", views.questionnaire_send, name="questionnaire_send"),
    path("questionnaires/<uuid:public_id>/review/", views.questionnaire_review, name="questionnaire_review"),
    # The patient's page: no sign-in, the token is the key (signed, single-use, expiring; only its hash is stored).
    path("q/<str:token>/", views.questionnaire, name="questionnaire"),
]
