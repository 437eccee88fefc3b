"""Pages of the product's road. Thin: read through selectors, write through services."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from carclinic.forms import form_submit
from journeys.forms import DashboardFilterForm
from journeys.models import Journey
from journeys.selectors import DASHBOARD_LIST_LIMIT
from manufacturing import selectors, services
from manufacturing.forms import (
    BagRegisterForm,
    BedsideCheckForm,
    CapacityFilterForm,
    ExceptionalReleaseForm,
    ExcursionDecisionForm,
    MismatchResolveForm,
    OrderMoveForm,
    OrderRequestForm,
    QcResultsForm,
    SlotBookForm,
)
from manufacturing.labels import label_svg
from manufacturing.models import Bag, BedsideCheck, ManufacturingOrder
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
            "day0_risk": selectors.day0_risk(journey_id=order.journey_id, today=timezone.localdate()),
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


@role_required(Action.VIEW_CLINICAL)  # a clinic page: never a maker's client
@role_required(Action.EXCEPTIONAL_RELEASE)
@require_http_methods(["GET", "POST"])
def exceptional_release(request, public_id):
    order = _order(public_id)
    form = ExceptionalReleaseForm(request.POST or None, initial={"version": order.version})
    submission = form_submit(
        request,
        form,
        lambda data: services.order_exceptional_release(
            actor=request.user,
            order_id=order.id,
            reason=data["reason"],
            countersigner_username=data["countersigner_username"],
            countersigner_password=data["countersigner_password"],
            expected_version=data["version"],
        ),
    )
    if submission.done:
        messages.warning(request, "Exceptional release recorded and signed twice; the product is flagged wherever it shows.")
        return redirect("manufacturing:order", public_id=order.public_id)
    return render(
        request,
        "manufacturing/exceptional_release.html",
        {
            "order": order,
            "patient": order.journey.patient,
            "qc_results": [r for r in order.qc_results.all() if not r.within_specification],
            "form": form,
        },
        status=submission.status,
    )


@role_required(Action.VIEW_CLINICAL)
@role_required(Action.DECIDE_EXCURSION)
@require_http_methods(["GET", "POST"])
def excursion_decision(request, public_id):
    try:
        bag = selectors.bag_with_context(public_id=public_id)
    except Bag.DoesNotExist:
        raise Http404("No such bag.") from None
    excursions = selectors.excursions_to_decide(bag_id=bag.id)
    first = excursions.first()
    form = ExcursionDecisionForm(
        request.POST or None,
        excursions=excursions,
        initial={"version": bag.version, "excursion": first.pk if first else None},
    )
    submission = form_submit(
        request,
        form,
        lambda data: services.excursion_decide(
            actor=request.user,
            excursion_id=data["excursion"].pk,
            decision=data["decision"],
            reason=data["reason"],
            expected_version=data["version"],
        ),
    )
    if submission.done:
        messages.success(request, f"Decision recorded: {submission.result.get_decision_display().lower()}.")
        return redirect("manufacturing:order", public_id=bag.order.public_id)
    return render(
        request,
        "manufacturing/excursion_decision.html",
        {"bag": bag, "order": bag.order, "patient": bag.order.journey.patient, "form": form, "nothing_to_decide": first is None},
        status=submission.status,
    )


@role_required(Action.VIEW_CLINICAL)
@role_required(Action.DECIDE_EXCURSION)
@require_http_methods(["GET", "POST"])
def mismatch_resolve(request, public_id):
    journey = get_object_or_404(Journey.objects.select_related("patient"), public_id=public_id)
    chain = selectors.chain_for_journey(journey_id=journey.id)
    checks = selectors.mismatches_to_resolve(chain_id=chain.id) if chain else BedsideCheck.objects.none()
    first = checks.first()
    form = MismatchResolveForm(request.POST or None, checks=checks, initial={"check": first.pk if first else None})
    submission = form_submit(
        request,
        form,
        lambda data: services.bedside_mismatch_resolve(
            actor=request.user, check_id=data["check"].pk, resolution=data["resolution"]
        ),
    )
    if submission.done:
        messages.success(request, "Mismatch resolved; a new bedside check may pass.")
        return redirect("manufacturing:bedside", public_id=journey.public_id)
    return render(
        request,
        "manufacturing/mismatch_resolve.html",
        {"journey": journey, "patient": journey.patient, "chain": chain, "form": form, "nothing_to_resolve": first is None},
        status=submission.status,
    )


@role_required(Action.VIEW_CLINICAL)  # a clinic page: a maker's system registers its bags through the API
@role_required(Action.RECORD_CUSTODY)
@require_http_methods(["GET", "POST"])
def bag_register(request, public_id):
    order = _order(public_id)
    chain = selectors.chain_for_journey(journey_id=order.journey_id)
    form = BagRegisterForm(request.POST or None)
    submission = form_submit(
        request,
        form,
        lambda data: services.bag_register(
            actor=request.user, order_id=order.id, kind=data["kind"], chain_on_label=data["chain_on_label"]
        ),
    )
    if submission.done:
        messages.success(request, f"Bag {submission.result.code} registered; its chain of identity matches.")
        return redirect("manufacturing:order", public_id=order.public_id)
    return render(
        request,
        "manufacturing/bag_register.html",
        {"order": order, "patient": order.journey.patient, "chain": chain, "form": form},
        status=submission.status,
    )


# The dashboard's filters, as journeys' dashboard passes them on in the address.
_DASHBOARD_FILTERS = ("indication", "stage", "coordinator")


@role_required(Action.VIEW_CLINICAL)
def dashboard_queue(request):
    """The dashboard's manufacturing-queue card with each order's plant, status, expected release and the Day 0
    at-risk flag. Journeys may not import this app, so its dashboard loads this card by HTMX in place of its
    own plainer one (which stays as the page's content without JavaScript)."""
    form = DashboardFilterForm({name: request.GET[name] for name in _DASHBOARD_FILTERS if name in request.GET} or None)
    filters = form.filters() if form.is_bound else {}
    rows, more = selectors.manufacturing_queue_rows(limit=DASHBOARD_LIST_LIMIT, **filters)
    return render(request, "manufacturing/partials/dashboard_queue.html", {"rows": rows, "more": more})
