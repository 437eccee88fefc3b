"""The manufacturing API: one view per operation. A maker's client (role "manufacturer") reads and changes its
own maker's orders only; anything else answers 404. Writes take If-Match (the order's ETag) and an
optional Idempotency-Key, as step completion does; they go through manufacturing.services."""

from django.db import IntegrityError, transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.response import Response

from api import idempotency
from api.base import ApiV1View
from api.manufacturing.serializers import (
    CustodyEventSerializer,
    CustodyInputSerializer,
    OrderQcInputSerializer,
    OrderSerializer,
    OrderStatusInputSerializer,
    order_etag,
    parse_order_etag,
)
from api.views import PreconditionRequired, errors
from carclinic.errors import Conflict
from manufacturing import selectors, services
from manufacturing.models import Bag, ManufacturingOrder
from staff.roles import Action, Role, can


class CanSeeOrders(permissions.BasePermission):
    """Clinic clients see every order; a maker's client only its own (the queryset narrows it)."""

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (can(user, Action.VIEW_CLINICAL) or Role.MANUFACTURER in user.roles))


def orders_visible_to(user):
    orders = selectors.orders_with_context().select_related("journey__chain_of_identity").prefetch_related("qc_results")
    if can(user, Action.VIEW_CLINICAL):
        return orders
    return orders.filter(product__maker__api_user=user)


IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=True, description='The order\'s ETag, e.g. "…uuid….3".'
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="A unique string per intended change, e.g. a UUID.",
)


class OrderView(ApiV1View):
    permission_classes = [CanSeeOrders]

    def get_order(self, order_id) -> ManufacturingOrder:
        order = orders_visible_to(self.request.user).filter(public_id=order_id).first()
        if order is None:
            raise Http404
        return order

    def answer(self, order_id) -> Response:
        order = self.get_order(order_id)
        return Response(OrderSerializer(order).data, headers={"ETag": order_etag(order)})

    def write(self, request, order_id, serializer_class, change, *, if_match_required=True):
        """If-Match against the order's version, Idempotency-Key replay, one transaction, 409 with the order now."""
        order = self.get_order(order_id)
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        if_match = request.headers.get("If-Match")
        expected = None
        if if_match_required:
            if not if_match:
                raise PreconditionRequired("Send the order's ETag in If-Match.", field_errors={"If-Match": ["Required."]})
            parsed = parse_order_etag(if_match)
            if parsed is None or parsed[0] != str(order.public_id):
                raise self._conflict(order, "If-Match does not name this order's current ETag.")
            expected = parsed[1]
        key = idempotency.idempotency_key(request)
        fingerprint = idempotency.fingerprint(request, data.validated_data) if key else None
        if key:
            replay = idempotency.stored_answer(user=request.user, key=key, fingerprint=fingerprint)
            if replay is not None:
                return replay
        try:
            with transaction.atomic():
                change(order, data.validated_data, expected)
                response = self.answer(order_id)
                if key:
                    idempotency.store_answer(user=request.user, key=key, fingerprint=fingerprint, response=response)
            return response
        except (IntegrityError, Conflict) as error:
            if key:
                replay = idempotency.stored_answer(user=request.user, key=key, fingerprint=fingerprint)
                if replay is not None:
                    return replay
            if isinstance(error, Conflict):
                raise self._conflict(self.get_order(order_id), error.message, error) from error
            raise

    def _conflict(self, order, message, original=None):
        conflict = original or Conflict(message)
        conflict.api_extra = {"current": OrderSerializer(order).data}
        return conflict


class OrderListView(OrderView):
    @extend_schema(
        operation_id="manufacturing_orders_list",
        summary="Manufacturing orders (a maker: its own)",
        responses={200: OrderSerializer(many=True), **errors()},
    )
    def get(self, request):
        orders = orders_visible_to(request.user).order_by("-updated_at", "-id")[:500]
        return Response(OrderSerializer(orders, many=True).data)


class OrderDetailView(OrderView):
    @extend_schema(
        operation_id="manufacturing_orders_read",
        summary="One order with its QC results",
        responses={200: OrderSerializer, **errors(404)},
    )
    def get(self, request, order_id):
        return self.answer(order_id)


class OrderStatusView(OrderView):
    @extend_schema(
        operation_id="manufacturing_orders_status",
        summary="Move an order (and give its expected release)",
        parameters=[IF_MATCH, IDEMPOTENCY_KEY],
        request=OrderStatusInputSerializer,
        responses={200: OrderSerializer, **errors(400, 404, 409, 422, 428)},
    )
    def post(self, request, order_id):
        def change(order, data, expected):
            if "expected_release" in data:
                services.order_set_expected_release(
                    actor=request.user, order_id=order.pk, expected_version=expected, expected_release=data["expected_release"]
                )
                expected = None
            services.order_move(
                actor=request.user,
                order_id=order.pk,
                to_status=data["status"],
                reason=data["reason"],
                expected_version=expected,
                lot_number=data.get("lot_number"),
            )

        return self.write(request, order_id, OrderStatusInputSerializer, change)


class OrderQcView(OrderView):
    @extend_schema(
        operation_id="manufacturing_orders_qc",
        summary="Post QC results: released or out of specification",
        parameters=[IF_MATCH, IDEMPOTENCY_KEY],
        request=OrderQcInputSerializer,
        responses={200: OrderSerializer, **errors(400, 404, 409, 422, 428)},
    )
    def post(self, request, order_id):
        def change(order, data, expected):
            services.order_qc_record(
                actor=request.user,
                order_id=order.pk,
                results=data["results"],
                lot_number=data["lot_number"],
                expected_version=expected,
            )

        return self.write(request, order_id, OrderQcInputSerializer, change)


class OrderCustodyView(OrderView):
    @extend_schema(
        operation_id="manufacturing_orders_custody",
        summary="Post a custody hand-off of one of the order's bags",
        parameters=[IDEMPOTENCY_KEY],
        request=CustodyInputSerializer,
        responses={200: OrderSerializer, **errors(400, 404, 422)},
    )
    def post(self, request, order_id):
        def change(order, data, expected):
            bag = Bag.objects.filter(order=order, code=data["bag"].strip().upper()).first()
            if bag is None:
                raise Http404
            services.custody_record(
                actor=request.user,
                bag_id=bag.pk,
                kind=data["kind"],
                at=data["at"],
                handled_by=data["handled_by"],
                location=data["location"],
                temperature_celsius=data.get("temperature_celsius"),
            )

        # A hand-off is a fact at a time, not an edit of the order: custody order itself refuses a repeat.
        return self.write(request, order_id, CustodyInputSerializer, change, if_match_required=False)

    @extend_schema(
        operation_id="manufacturing_orders_custody_list",
        summary="The custody events of the order's bags",
        responses={200: CustodyEventSerializer(many=True), **errors(404)},
    )
    def get(self, request, order_id):
        order = self.get_order(order_id)
        from manufacturing.models import CustodyEvent

        events = CustodyEvent.objects.filter(bag__order=order).select_related("bag").order_by("bag_id", "position")
        return Response(CustodyEventSerializer(events, many=True).data)
