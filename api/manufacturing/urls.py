"""Included by carclinic/urls.py under /api/v1/manufacturing/ (ahead of the API's catch-all)."""

from django.urls import path

from api.manufacturing import views

urlpatterns = [
    path("orders/", views.OrderListView.as_view(), name="manufacturing-order-list"),
    path("orders/<uuid:order_id>/", views.OrderDetailView.as_view(), name="manufacturing-order-detail"),
    path("orders/<uuid:order_id>/status/", views.OrderStatusView.as_view(), name="manufacturing-order-status"),
    path("orders/<uuid:order_id>/qc/", views.OrderQcView.as_view(), name="manufacturing-order-qc"),
    path("orders/<uuid:order_id>/custody/", views.OrderCustodyView.as_view(), name="manufacturing-order-custody"),
]
