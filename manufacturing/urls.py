from django.urls import path

from manufacturing import views

app_name = "manufacturing"

urlpatterns = [
    path("capacity/", views.capacity, name="capacity"),
    path("queue/", views.dashboard_queue, name="dashboard_queue"),
    path("orders/<uuid:public_id>/", views.order_detail, name="order"),
    path("orders/<uuid:public_id>/book/", views.order_book, name="order_book"),
    path("orders/<uuid:public_id>/move/", views.order_move, name="order_move"),
    path("orders/<uuid:public_id>/qc/", views.order_qc, name="order_qc"),
    path("orders/<uuid:public_id>/labels/", views.bag_label, name="labels"),
    path("orders/<uuid:public_id>/exceptional-release/", views.exceptional_release, name="exceptional_release"),
    path("orders/<uuid:public_id>/bags/new/", views.bag_register, name="bag_register"),
    path("bags/<uuid:public_id>/excursion/", views.excursion_decision, name="excursion_decision"),
    path("journeys/<uuid:public_id>/bedside/resolve/", views.mismatch_resolve, name="mismatch_resolve"),
    path("journeys/<uuid:public_id>/order/", views.order_request, name="order_request"),
    path("journeys/<uuid:public_id>/bedside/", views.bedside, name="bedside"),
]
