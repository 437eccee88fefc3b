from django.urls import path

from journeys import views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/panels/", views.dashboard_panels, name="dashboard_panels"),
    path("dashboard/search/", views.dashboard_search, name="dashboard_search"),
    path("stages/<int:number>/", views.stage_list, name="stage_list"),
    path("patients/<uuid:public_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<uuid:public_id>/start/", views.journey_start, name="journey_start"),
    path("journeys/<uuid:public_id>/day0/", views.day0_reschedule, name="day0_reschedule"),
    path("journeys/<uuid:public_id>/discharge-sheet/", views.discharge_sheet, name="discharge_sheet"),
    path("journeys/<uuid:public_id>/<slug:change>/", views.journey_status, name="journey_status"),
    path("my-steps/", views.my_steps, name="my_steps"),
    path("steps/<uuid:public_id>/complete/", views.step_complete, name="step_complete"),
    path("steps/<uuid:public_id>/skip/", views.step_skip, name="step_skip"),
    path("steps/<uuid:public_id>/correct/", views.step_correct, name="step_correct"),
]
