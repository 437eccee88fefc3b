"""Query-string filters of the list endpoints. A bad value answers 400 with the field named."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from django.utils import timezone

from journeys import selectors
from journeys.models import StageNumber, Step
from patients.models import Indication, Patient
from staff.roles import Role

# Strict, unlike django-filter's BooleanFilter which reads "maybe" as "no filter": a typo must say 400.
TRUE_FALSE = [("true", "true"), ("false", "false")]
RESPONSIBLE_ROLES = [(r.value, r.label) for r in (Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN)]


class PatientFilter(django_filters.FilterSet):
    stage = django_filters.TypedChoiceFilter(
        choices=StageNumber.choices, coerce=int, method="filter_stage",
        label="Current stage (1–5) of the patient's open journey.",
    )
    indication = django_filters.ChoiceFilter(choices=Indication.choices)
    overdue = django_filters.ChoiceFilter(choices=TRUE_FALSE, method="filter_overdue",
                                          label="true: at least one overdue step; false: none.")
    coordinator = django_filters.CharFilter(field_name="coordinator__username", label="Coordinator's user name.")
    updated_since = django_filters.IsoDateTimeFilter(
        method="filter_updated_since",
        label="Only patients whose record or journey changed at or after this time (ISO 8601, with offset). "
        "For incremental sync pass the `sync_from` of your previous sync.",
    )

    class Meta:
        model = Patient
        fields = ["stage", "indication", "overdue", "coordinator", "updated_since"]

    @extend_schema_field(OpenApiTypes.INT)
    def filter_stage(self, queryset, name, value):
        return selectors.patients_in_stage(queryset, value)

    def filter_overdue(self, queryset, name, value):
        return queryset.filter(overdue_count__gt=0) if value == "true" else queryset.filter(overdue_count=0)

    def filter_updated_since(self, queryset, name, value):
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return selectors.patients_changed_since(queryset, value)


class StepFilter(django_filters.FilterSet):
    overdue = django_filters.ChoiceFilter(choices=TRUE_FALSE, method="filter_overdue",
                                          label="true: pending past window and grace, journey active.")
    due_before = django_filters.DateFilter(field_name="due_on", lookup_expr="lte", label="Due on or before this date.")
    due_after = django_filters.DateFilter(field_name="due_on", lookup_expr="gte", label="Due on or after this date.")
    stage = django_filters.TypedChoiceFilter(field_name="stage__number", choices=StageNumber.choices, coerce=int)
    assigned_role = django_filters.ChoiceFilter(field_name="template__responsible_role", choices=RESPONSIBLE_ROLES,
                                                label="The role responsible for the step.")
    status = django_filters.ChoiceFilter(choices=Step._meta.get_field("status").choices)
    patient = django_filters.UUIDFilter(field_name="journey__patient__public_id", label="The patient's id.")

    class Meta:
        model = Step
        fields = ["overdue", "due_before", "due_after", "stage", "assigned_role", "status", "patient"]

    def filter_overdue(self, queryset, name, value):
        return selectors.steps_overdue_filter(queryset, value == "true")
