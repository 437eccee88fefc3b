from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from patients.models import Consent, Measurement, Patient


class MeasurementInline(admin.TabularInline):
    model = Measurement
    extra = 0
    readonly_fields = ("recorded_by", "recorded_at")


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0
    readonly_fields = ("recorded_by", "recorded_at")


@admin.register(Patient)
class PatientAdmin(SimpleHistoryAdmin):
    list_display = ("mrn", "family_name", "given_name", "indication", "coordinator", "updated_at")
    list_filter = ("indication",)
    search_fields = ("mrn", "family_name", "given_name")
    readonly_fields = ("public_id", "version", "created_at", "updated_at")
    inlines = [MeasurementInline, ConsentInline]


admin.site.register(Measurement, SimpleHistoryAdmin)
admin.site.register(Consent, SimpleHistoryAdmin)
