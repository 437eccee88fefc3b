from django.urls import path

from planning import views

app_name = "planning"

urlpatterns = [
    path("calendar/", views.calendar_page, name="calendar"),
    path("grid/", views.grid_page, name="grid"),
    path("exports/", views.export_page, name="exports"),
    path("exports/<slug:kind>.csv", views.export_csv, name="export"),
    path("feeds/", views.feeds_page, name="feeds"),
    # The token is the whole key; the address names no patient and no user.
    path("feeds/<str:token>.ics", views.feed_ics, name="feed"),
]
