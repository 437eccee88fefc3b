from django.urls import path

from contracts import views

app_name = "contracts"

urlpatterns = [
    path("", views.finance_page, name="finance"),
    path("enrolments.csv", views.export_csv, name="export"),
    path("payers/new/", views.payer_new, name="payer_new"),
    path("new/", views.contract_new, name="contract_new"),
    path("enrolments/new/", views.enrolment_new, name="enrolment_new"),
    # The patient page's contract line, fetched by HTMX so that journeys never imports this app.
    path("journeys/<uuid:public_id>/status/", views.journey_contract_status, name="journey_status"),
]
