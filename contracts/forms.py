from django import forms

from contracts.models import Contract, ContractStatus, Payer, RebateKind, RemissionDefinition
from journeys.models import Journey
from manufacturing.models import Product


class PayerForm(forms.Form):
    name = forms.CharField(max_length=120)
    contact = forms.CharField(max_length=200, required=False, help_text="Who to write to about the contracts.")


class ContractForm(forms.Form):
    payer = forms.ModelChoiceField(Payer.objects.order_by("name"))
    name = forms.CharField(max_length=120, help_text="How finance names it.")
    product = forms.ModelChoiceField(
        Product.objects.select_related("maker").order_by("maker__name", "name"), required=False, empty_label="Not one of ours"
    )
    product_name = forms.CharField(max_length=120, required=False, label="Product name (when not one of ours)")
    price = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = forms.CharField(max_length=3, min_length=3, help_text="ISO 4217, e.g. EUR.")
    remission_definition = forms.ChoiceField(choices=RemissionDefinition.choices)
    milestone_months = forms.IntegerField(min_value=1, max_value=180, initial=24, help_text="Months from the infusion (Day 0).")
    rebate_kind = forms.ChoiceField(choices=RebateKind.choices, label="If the outcome fails, the payer gets back")
    rebate_value = forms.DecimalField(max_digits=12, decimal_places=2, min_value=0, label="Percent or amount")
    starts_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class EnrolmentForm(forms.Form):
    contract = forms.ModelChoiceField(Contract.objects.select_related("payer").order_by("payer__name", "name"))
    journey = forms.ModelChoiceField(
        Journey.objects.filter(contract_enrolment__isnull=True).select_related("patient").order_by("patient__family_name"),
        label="Patient's journey",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A journey is named by its patient and Day 0: the form is for staff who may see both.
        self.fields["journey"].label_from_instance = lambda j: (
            f"{j.patient.family_name}, {j.patient.given_name} ({j.patient.mrn}) — Day 0 {j.day0:%d %b %Y}"
        )


class EnrolmentFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "All statuses"), *ContractStatus.choices], required=False)
    contract = forms.ModelChoiceField(
        Contract.objects.select_related("payer").order_by("payer__name", "name"), required=False, empty_label="All contracts"
    )
