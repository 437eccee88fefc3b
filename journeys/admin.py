from django.contrib import admin, messages
from django.db import models
from django.forms import Textarea
from simple_history.admin import SimpleHistoryAdmin

from carclinic.admin import NoEditFromHistory, ReadOnlyClinical
from carclinic.errors import DomainError
from journeys.models import Journey, JourneyEvent, ProtocolTemplate, Stage, Step, StepTemplate
from journeys.services import protocol_new_version, protocol_rehash


class StepTemplateInline(admin.TabularInline):
    model = StepTemplate
    extra = 0
    fields = (
        "position",
        "stage",
        "code",
        "name",
        "anchor",
        "offset_days",
        "window_before_days",
        "window_after_days",
        "grace_hours",
        "responsible_role",
        "required",
        "milestone",
        "done_after",
        "record_fields",
    )
    # The specs are JSON, checked on save by journeys.records.validate_specs (errors show under the row).
    formfield_overrides = {models.JSONField: {"widget": Textarea(attrs={"rows": 3, "cols": 60})}}

    # A version that journeys use is never edited in place: their schedules were computed from it.
    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_locked

    def has_add_permission(self, request, obj=None):
        return obj is None or not obj.is_locked

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.is_locked


@admin.register(ProtocolTemplate)
class ProtocolTemplateAdmin(NoEditFromHistory, SimpleHistoryAdmin):
    # A past version's page would save that version's fields over the current protocol, behind the lock.
    list_display = ("name", "version", "is_active", "locked_at", "planned_vein_to_vein_days")
    readonly_fields = ("locked_at", "created_at", "content_hash")
    inlines = [StepTemplateInline]
    actions = ["make_new_version"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # The hash says what the version holds; `migrate` compares shipped files with it.
        protocol_rehash(protocol_id=form.instance.pk)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_locked:
            return [f.name for f in obj._meta.fields if f.name != "is_active"]
        return self.readonly_fields

    @admin.action(description="Create a new editable version of the selected protocols")
    def make_new_version(self, request, queryset):
        for protocol in queryset:
            try:
                copy = protocol_new_version(actor=request.user, protocol_id=protocol.id)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(request, f"Created {copy} (inactive until you activate it).")


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    can_delete = False
    readonly_fields = ("number", "status", "started_at", "completed_at")

    def has_add_permission(self, request, obj=None):
        return False


ReadOnlyAdminMixin = ReadOnlyClinical  # clinical records change through the services, not admin forms


@admin.register(Journey)
class JourneyAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "public_id",
        "patient",
        "protocol",
        "status",
        "current_stage",
        "leukapheresis_date",
        "day0_planned",
        "day0_actual",
    )
    list_filter = ("status", "current_stage", "protocol")
    search_fields = ("patient__mrn", "public_id")
    list_select_related = ("patient", "protocol")
    inlines = [StageInline]


@admin.register(Step)
class StepAdmin(ReadOnlyAdminMixin, SimpleHistoryAdmin):
    list_display = ("public_id", "journey", "template", "status", "due_on", "overdue_since", "completed_by")
    list_filter = ("status", "template__stage", "template__responsible_role")
    search_fields = ("journey__patient__mrn", "public_id")
    list_select_related = ("journey", "template", "completed_by")


@admin.register(JourneyEvent)
class JourneyEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "journey", "kind", "stage_number", "from_state", "to_state", "actor")
    list_filter = ("kind",)
    list_select_related = ("journey", "actor")
