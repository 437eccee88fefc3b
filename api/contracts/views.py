"""The outcome-contract API: one view per operation, read only. A payer's client (role "payer") reads its own
contracts' enrolments and nothing else; the clinic's staff who may see contracts read them all."""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions

from api.base import ApiV1View, conditional_response
from api.contracts.serializers import PayerEnrolmentSerializer
from api.views import NOT_MODIFIED, errors
from contracts import selectors
from staff.roles import Action, Role, can

ENROLMENT_ID = OpenApiParameter("enrolment_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The enrolment's id.")
LIST_LIMIT = 1000


class CanSeeEnrolments(permissions.BasePermission):
    """A payer's client, or staff who may see contracts; the queryset narrows a payer to its own."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (can(user, Action.VIEW_CONTRACTS) or Role.PAYER in user.roles))


def enrolments_visible_to(user):
    if can(user, Action.VIEW_CONTRACTS):
        return selectors.enrolments_with_context().order_by("milestone_on", "id")
    return selectors.enrolments_for_payer_client(user)


class EnrolmentListView(ApiV1View):
    permission_classes = [CanSeeEnrolments]

    @extend_schema(
        operation_id="contracts_enrolments_list",
        summary="Enrolments under outcome contracts (a payer: its own)",
        description="Status and dates only; ordered by milestone date, at most 1000.",
        responses={200: PayerEnrolmentSerializer(many=True), 304: NOT_MODIFIED, **errors()},
    )
    def get(self, request):
        enrolments = enrolments_visible_to(request.user)[:LIST_LIMIT]
        return conditional_response(request, PayerEnrolmentSerializer(enrolments, many=True).data)


class EnrolmentDetailView(ApiV1View):
    permission_classes = [CanSeeEnrolments]

    @extend_schema(
        operation_id="contracts_enrolments_read",
        summary="One enrolment's contract status",
        parameters=[ENROLMENT_ID],
        responses={200: PayerEnrolmentSerializer, 304: NOT_MODIFIED, **errors(404)},
    )
    def get(self, request, enrolment_id):
        enrolment = enrolments_visible_to(request.user).filter(public_id=enrolment_id).first()
        if enrolment is None:
            raise Http404
        return conditional_response(request, PayerEnrolmentSerializer(enrolment).data)
