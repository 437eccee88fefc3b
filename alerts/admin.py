from django.contrib import admin

from alerts.models import AlertDelivery, ClinicalAlert


class ReadOnly(admin.ModelAdmin):
    """Alerts and their deliveries are audit: raised and acknowledged through the services, never edited
    or deleted by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ClinicalAlert)
class ClinicalAlertAdmin(ReadOnly):
    list_display = ["public_id", "kind", "summary", "raised_at", "escalated_at", "acknowledged_at", "acknowledged_by"]
    list_filter = ["kind"]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnly):
    list_display = ["id", "alert", "recipient", "channel", "level", "state", "attempts", "sent_at"]
    list_filter = ["channel", "state", "level"]
