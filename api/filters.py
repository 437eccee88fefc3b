"""Query-string filters of the list endpoints. A bad value answers 400 with the field named."""

import re
from datetime import UTC

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.utils import timezone
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from journeys import selectors
from journeys.models import StageNumber, Step
from patients.models import Indication, Patient
from staff.roles import Role

# Strict, unlike django-filter's BooleanFilter which reads "maybe" as "no filter": a typo must say 400.
TRUE_FALSE = [("true", "true"), ("false", "false")]
RESPONSIBLE_ROLES = [(r.value, r.label) for r in (Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN)]


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time with its offset, turned into UTC here: the database accepts offsets only up to
    ±15:59, and a time that cannot exist in UTC is a bad parameter (400), not a server error."""

    def clean(self, value):
        value = super().clean(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC) if timezone.is_aware(value) else timezone.make_aware(value).astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Not a time that exists in UTC.") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictFilterSet(django_filters.FilterSet):
    """django-filter reads `?stage=` as "no filter"; a client that meant to filter must hear that it did not."""

    def is_valid(self):
        valid = super().is_valid()
        for name in self.filters:
            if self.data.get(name, None) == "":
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid


class PatientFilter(StrictFilterSet):
    stage = django_filters.TypedChoiceFilter(
        choices=StageNumber.choices,
        coerce=int,
        method="filter_stage",
        label="Current stage (1–5) of the patient's open journey.",
    )
    indication = django_filters.ChoiceFilter(choices=Indication.choices)
    overdue = django_filters.ChoiceFilter(
        choices=TRUE_FALSE, method="filter_overdue", label="true: at least one overdue step; false: none."
    )
    # User-name characters, read as the OpenAPI document's pattern is read (ECMA-262: \w is ASCII), so the API
    # refuses what its schema says it refuses; schemathesis found a CJK character accepted with a 200.
    coordinator = django_filters.CharFilter(
        field_name="coordinator__username",
        label="Coordinator's user name.",
        validators=[RegexValidator(r"^[\w.@+-]+\Z", flags=re.ASCII)],
    )
    updated_since = UtcIsoDateTimeFilter(
        method="filter_updated_since",
        label="Only patients whose record or journey changed at or after this time (ISO 8601, with offset). "
        "For incremental sync pass the `sync_from` of your previous sync.",
    )

    class Meta:
        model = Patient
        fields = ["stage", "indication", "overdue", "coordinator", "updated_since"]

    @extend_schema_field(serializers.ChoiceField(choices=StageNumber.choices))
    def filter_stage(self, queryset, name, value):
        return selectors.patients_in_stage(queryset, value)

    def filter_overdue(self, queryset, name, value):
        return queryset.filter(overdue_count__gt=0) if value == "true" else queryset.filter(overdue_count=0)

    def filter_updated_since(self, queryset, name, value):
        return selectors.patients_changed_since(queryset, value)


class StepFilter(StrictFilterSet):
    overdue = django_filters.ChoiceFilter(
        choices=TRUE_FALSE, method="filter_overdue", label="true: pending past window and grace, journey active."
    )
    due_before = django_filters.DateFilter(field_name="due_on", lookup_expr="lte", label="Due on or before this date.")
    due_after = django_filters.DateFilter(field_name="due_on", lookup_expr="gte", label="Due on or after this date.")
    stage = django_filters.TypedChoiceFilter(field_name="stage__number", choices=StageNumber.choices, coerce=int)
    assigned_role = django_filters.ChoiceFilter(
        field_name="template__responsible_role", choices=RESPONSIBLE_ROLES, label="The role responsible for the step."
    )
    status = django_filters.ChoiceFilter(choices=Step._meta.get_field("status").choices)
    patient = django_filters.UUIDFilter(field_name="journey__patient__public_id", label="The patient's id.")

    class Meta:
        model = Step
        fields = ["overdue", "due_before", "due_after", "stage", "assigned_role", "status", "patient"]

    def filter_overdue(self, queryset, name, value):
        return selectors.steps_overdue_filter(queryset, value == "true")
