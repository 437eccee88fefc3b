"""Pages of the product's road. Thin: read through selectors, write through services."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from carclinic.forms import form_submit
from journeys.models import Journey
from manufacturing import selectors, services
from manufacturing.forms import (
    BedsideCheckForm,
    CapacityFilterForm,
    OrderMoveForm,
    OrderRequestForm,
    QcResultsForm,
    SlotBookForm,
)
from manufacturing.labels import label_svg
from manufacturing.models import ManufacturingOrder
from staff.access import role_required
from staff.roles import Action


@role_required(Action.VIEW_CLINICAL)
def capacity(request):
    form = CapacityFilterForm(request.GET or None)
    filters = {}
    if form.is_valid():
        filters = {
            "maker_id": getattr(form.cleaned_data.get("maker"), "pk", None),
            "product_id": getattr(form.cleaned_data.get("product"), "pk", None),
        }
    mondays, rows = selectors.capacity_grid(**filters)
    return render(request, "manufacturing/capacity.html", {"form": form, "mondays": mondays, "rows": rows})


def _order(public_id) -> ManufacturingOrder:
    return get_object_or_404(selectors.orders_with_context(), public_id=public_id)


@role_required(Action.VIEW_CLINICAL)
def order_detail(request, public_id):
    order = _order(public_id)
    booking = selectors.booking_for_order(order_id=order.id)
    offset = selectors.release_offset_days(order.journey.protocol_id)
    return render(
        request,
        "manufacturing/order.html",
        {
            "order": order,
            "patient": order.journey.patient,
            "journey": order.journey,
            "chain": selectors.chain_for_journey(journey_id=order.journey_id),
            "booking": booking,
            "waiting_position": selectors.waiting_position(booking),
            "bags": selectors.bags_for_order(order_id=order.id),
            "qc_results": list(order.qc_results.all()),
            "events": list(order.events.select_related("actor")[:50]),
            "proposed_day0": services.proposed_day0(order),
            "at_risk": selectors.day0_at_risk(order, offset),
            "book_form": SlotBookForm(initial={"week_start": timezone.localdate()}),
            "move_form": OrderMoveForm(initial={"version": order.version}),
            "qc_form": QcResultsForm(
                criteria=order.product.release_criteria.all(), initial={"version": order.version, "lot_number": order.lot_number}
            ),
        },
    )


@role_required(Action.VIEW_CLINICAL)  # a clinic page: never a maker's client
@role_required(Action.MANAGE_ORDERS)
@require_http_methods(["GET", "POST"])
def order_request(request, public_id):
    journey = get_object_or_404(Journey.objects.select_related("patient"), public_id=public_id)
    form = OrderRequestForm(request.POST or None)
    submission = form_submit(
        request,
        form,
        lambda data: services.order_request(
            actor=request.user, journey_id=journey.id, product_id=data["product"].pk, plant_id=data["plant"].pk
        ),
    )
    if submission.done:
        messages.success(request, "Manufacturing order requested; book a slot next.")
        return redirect("manufacturing:order", public_id=submission.result.public_id)
    return render(
        request,
        "manufacturing/order_request.html",
        {"form": form, "journey": journey, "patient": journey.patient},
        status=submission.status,
    )


def _post_action(request, public_id, form, call, done_message):
    order = _order(public_id)
    submission = form_submit(request, form, lambda data: call(order, data))
    if submission.done:
        messages.success(request, done_message)
    else:
        for error in form.non_field_errors() or [f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()]:
            messages.error(request, error)
    return redirect("manufacturing:order", public_id=order.public_id)


@role_required(Action.VIEW_CLINICAL)  # a clinic page: never a maker's client
@role_required(Action.MANAGE_ORDERS)
@require_http_methods(["POST"])
def order_book(request, public_id):
    return _post_action(
        request,
        public_id,
        SlotBookForm(request.POST),
        lambda order, data: services.slot_book(actor=request.user, order_id=order.id, week_start=data["week_start"]),
        "Booking recorded.",
    )


@role_required(Action.VIEW_CLINICAL)  # a clinic page: never a maker's client
@role_required(Action.MANAGE_ORDERS)
@require_http_methods(["POST"])
def order_move(request, public_id):
    return _post_action(
        request,
        public_id,
        OrderMoveForm(request.POST),
        lambda order, data: services.order_move(
            actor=request.user,
            order_id=order.id,
            to_status=data["to_status"],
            reason=data["reason"],
            expected_version=data["version"],
            lot_number=data["lot_number"] or None,
        ),
        "Order status changed.",
    )


@role_required(Action.VIEW_CLINICAL)  # a clinic page: never a maker's client
@role_required(Action.RECORD_QC)
@require_http_methods(["POST"])
def order_qc(request, public_id):
    order = _order(public_id)
    criteria = list(order.product.release_criteria.all())
    form = QcResultsForm(request.POST, criteria=criteria)
    return _post_action(
        request,
        public_id,
        form,
        lambda order, data: services.order_qc_record(
            actor=request.user,
            order_id=order.id,
            lot_number=data["lot_number"],
            expected_version=data["version"],
            results={c.criterion: data[c.criterion] for c in criteria},
        ),
        "QC results recorded.",
    )


@role_required(Action.VIEW_CLINICAL)
def bag_label(request, public_id):
    order = _order(public_id)
    bags = list(selectors.bags_for_order(order_id=order.id))
    return render(
        request,
        "manufacturing/labels.html",
        {"order": order, "patient": order.journey.patient, "labels": [(bag, label_svg(bag.code)) for bag in bags]},
    )


@role_required(Action.BEDSIDE_CHECK)
@require_http_methods(["GET", "POST"])
def bedside(request, public_id):
    journey = get_object_or_404(Journey.objects.select_related("patient"), public_id=public_id)
    chain = selectors.chain_for_journey(journey_id=journey.id)
    form = BedsideCheckForm(request.POST or None)
    submission = form_submit(
        request,
        form,
        lambda data: services.bedside_check(
            actor=request.user,
            journey_id=journey.id,
            scanned_bag=data["scanned_bag"],
            scanned_wristband=data["scanned_wristband"],
        ),
    )
    check = submission.result if submission.done else None
    return render(
        request,
        "manufacturing/bedside.html",
        {
            "journey": journey,
            "patient": journey.patient,
            "chain": chain,
            "form": form,
            "check": check,
            "blocked": chain is not None and selectors.unresolved_mismatches(chain_id=chain.id).exists(),
        },
        status=submission.status,
    )
