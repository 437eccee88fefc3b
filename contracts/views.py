"""The finance page, its CSV export, the forms that make payers, contracts and enrolments, and the patient
page's contract line. Reads come from selectors, writes from services."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from carclinic.errors import InvalidInput, NotPermitted
from contracts import selectors, services
from contracts.forms import ContractForm, EnrolmentFilterForm, EnrolmentForm, PayerForm
from journeys.models import Journey
from planning.exports import CHUNK, csv_lines
from staff.access import role_required
from staff.roles import Action, can

PER_PAGE = 50


def _filters(data) -> tuple[EnrolmentFilterForm, dict]:
    form = EnrolmentFilterForm(data or None)
    if form.is_bound and form.is_valid():
        contract = form.cleaned_data.get("contract")
        return form, {"status": form.cleaned_data.get("status") or "", "contract_id": contract.id if contract else None}
    return form, {}


@role_required(Action.VIEW_CONTRACTS)
@require_GET
def finance_page(request):
    form, filters = _filters(request.GET)
    page = Paginator(selectors.enrolment_list(**filters), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "contracts/finance.html",
        {
            "overview": selectors.finance_overview(),
            "form": form,
            "page": page,
            "query": request.GET.urlencode(),
            "may_manage": can(request.user, Action.MANAGE_CONTRACTS),
            "may_export": can(request.user, Action.EXPORT_DATA),
        },
    )


EXPORT_HEADER = [
    "Enrolment",
    "Payer",
    "Contract",
    "Product",
    "MRN",
    "Infusion (Day 0)",
    "Milestone",
    "Status",
    "Since",
    "Currency",
    "Rebate at stake",
]


def _export_row(enrolment) -> list:
    contract = enrolment.contract
    return [
        enrolment.public_id,
        contract.payer.name,
        contract.name,
        contract.product_label,
        enrolment.journey.patient.mrn,
        enrolment.infusion_on,
        enrolment.milestone_on,
        enrolment.get_status_display(),
        enrolment.status_since,
        contract.currency,
        contract.amount_at_stake,
    ]


@role_required(Action.VIEW_CONTRACTS)
@require_POST
def export_csv(request):
    """By POST only, audited before the first byte (as planning's exports): filters never ride in an address."""
    _, filters = _filters(request.POST)
    enrolments = selectors.enrolment_list(**filters)
    count = enrolments.count()
    try:
        services.export_record(
            actor=request.user,
            filters={"status": filters.get("status"), "contract_id": filters.get("contract_id")},
            row_count=count,
        )
    except NotPermitted as refused:
        raise PermissionDenied(refused.message) from refused
    rows = (_export_row(e) for e in enrolments.iterator(chunk_size=CHUNK))
    response = StreamingHttpResponse(csv_lines(EXPORT_HEADER, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="carclinic-contracts-{timezone.localdate():%Y-%m-%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _form_page(request, form_class, title: str, write):
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            write(form.cleaned_data)
        except InvalidInput as error:
            for name, problems in error.field_errors.items():
                for problem in problems:
                    form.add_error(name if name in form.fields else None, problem)
            if not error.field_errors:
                form.add_error(None, error.message)
        except NotPermitted as refused:
            raise PermissionDenied(refused.message) from refused
        else:
            messages.success(request, f"{title}: saved.")
            return redirect("contracts:finance")
    return render(request, "contracts/form.html", {"form": form, "title": title}, status=400 if form.errors else 200)


@role_required(Action.MANAGE_CONTRACTS)
@require_http_methods(["GET", "POST"])
def payer_new(request):
    return _form_page(request, PayerForm, "New payer", lambda data: services.payer_create(actor=request.user, **data))


@role_required(Action.MANAGE_CONTRACTS)
@require_http_methods(["GET", "POST"])
def contract_new(request):
    def write(data):
        payer, product = data.pop("payer"), data.pop("product")
        services.contract_create(actor=request.user, payer_id=payer.id, product_id=product.id if product else None, **data)

    return _form_page(request, ContractForm, "New contract", write)


@role_required(Action.MANAGE_CONTRACTS)
@require_http_methods(["GET", "POST"])
def enrolment_new(request):
    def write(data):
        services.enrolment_create(actor=request.user, contract_id=data["contract"].id, journey_id=data["journey"].id)

    return _form_page(request, EnrolmentForm, "Enrol a treated patient under a contract", write)


@role_required(Action.VIEW_CLINICAL)
@require_GET
def journey_contract_status(request, public_id):
    """The patient page's contract line: status, milestone and since when; prices only for who may see them."""
    journey = get_object_or_404(Journey, public_id=public_id)
    return render(
        request,
        "contracts/partials/journey_status.html",
        {
            "enrolment": selectors.enrolment_for_journey(journey_id=journey.id),
            "may_view_contracts": can(request.user, Action.VIEW_CONTRACTS),
        },
    )
