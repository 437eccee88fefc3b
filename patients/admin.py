from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from carclinic.admin import ReadOnlyClinical
from patients.models import Consent, Measurement, Patient


class MeasurementInline(ReadOnlyClinical, admin.TabularInline):
    model = Measurement
    extra = 0
    readonly_fields = ("recorded_by", "recorded_at")


class ConsentInline(ReadOnlyClinical, admin.TabularInline):
    model = Consent
    extra = 0
    readonly_fields = ("recorded_by", "recorded_at")


# Read-only: an edit here skipped the version bump and the carer-role check of patients.services.
@admin.register(Patient)
class PatientAdmin(ReadOnlyClinical, SimpleHistoryAdmin):
    list_display = ("mrn", "family_name", "given_name", "indication", "coordinator", "updated_at")
    list_filter = ("indication",)
    search_fields = ("mrn", "family_name", "given_name")
    readonly_fields = ("public_id", "version", "created_at", "updated_at")
    inlines = [MeasurementInline, ConsentInline]


@admin.register(Measurement)
class MeasurementAdmin(ReadOnlyClinical, SimpleHistoryAdmin):
    list_display = ("patient", "measured_on", "recorded_at")


@admin.register(Consent)
class ConsentAdmin(ReadOnlyClinical, SimpleHistoryAdmin):
    list_display = ("patient", "signed_on", "document_version")
