from django.urls import path

from notifications import views

app_name = "notifications"
urlpatterns = [
    path("", views.notification_list, name="list"),
    path("unread/", views.unread_count, name="unread_count"),
    path("unread/latest/", views.latest_unread, name="latest_unread"),
    path("read-all/", views.notifications_read_all, name="read_all"),
    path("<uuid:public_id>/read/", views.notification_read, name="read"),
    path("<uuid:public_id>/open/", views.notification_open, name="open"),
    path("preferences/", views.preferences, name="preferences"),
    path("reminders/", views.reminder_log, name="log"),
    path("reminders/<uuid:public_id>/snooze/", views.reminder_snooze, name="snooze"),
    path("reminders/<uuid:public_id>/cancel/", views.reminder_cancel, name="cancel"),
    path("journeys/<uuid:public_id>/reminders/", views.journey_reminders, name="journey_reminders"),
    path("health/", views.health, name="health"),
]
