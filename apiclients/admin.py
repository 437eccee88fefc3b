from django.contrib import admin
from django.db import transaction

from apiclients.models import ApiClient
from apiclients.services import api_client_forget_cached
from carclinic.admin import KeepsAudit


@admin.register(ApiClient)
class ApiClientAdmin(KeepsAudit, admin.ModelAdmin):
    """Keys are made with `manage.py create_api_client` (it prints the key once); here one may narrow what a
    client sees, change its rate, or revoke it."""

    list_display = ["name", "role", "sees_all_patients", "created_at", "expires_at", "revoked_at", "last_used_at"]
    readonly_fields = ["name", "role", "user", "key_prefix", "key_hash", "created_at", "last_used_at"]
    fields = [
        "name",
        "role",
        "user",
        "key_prefix",
        "throttle_rate",
        "sees_all_patients",
        "patients",
        "expires_at",
        "revoked_at",
        "created_at",
        "last_used_at",
    ]
    raw_id_fields = ["patients"]

    def has_add_permission(self, request):
        return False

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # A narrowed scope, a new rate or a revocation must reach every worker at once.
        transaction.on_commit(lambda: api_client_forget_cached(form.instance))
