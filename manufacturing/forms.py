from django import forms

from manufacturing.models import Criterion, Maker, OrderStatus, Plant, Product
from manufacturing.transitions import MOVABLE_BY_HAND


class CapacityFilterForm(forms.Form):
    maker = forms.ModelChoiceField(Maker.objects.order_by("name"), required=False, empty_label="All makers")
    product = forms.ModelChoiceField(
        Product.objects.select_related("maker").order_by("name"), required=False, empty_label="All products"
    )


class OrderRequestForm(forms.Form):
    product = forms.ModelChoiceField(Product.objects.select_related("maker").order_by("maker__name", "name"))
    plant = forms.ModelChoiceField(Plant.objects.select_related("maker").order_by("maker__name", "name"))


class SlotBookForm(forms.Form):
    week_start = forms.DateField(label="Week starting", widget=forms.DateInput(attrs={"type": "date"}))


class OrderMoveForm(forms.Form):
    to_status = forms.ChoiceField(
        label="Move to", choices=[(s, OrderStatus(s).label) for s in OrderStatus.values if s in MOVABLE_BY_HAND]
    )
    lot_number = forms.CharField(required=False, max_length=40)
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    version = forms.IntegerField(widget=forms.HiddenInput)


class QcResultsForm(forms.Form):
    lot_number = forms.CharField(max_length=40)
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, criteria=(), **kwargs):
        super().__init__(*args, **kwargs)
        for criterion in criteria:
            self.fields[criterion.criterion] = forms.CharField(
                label=f"{Criterion(criterion.criterion).label} ({criterion})", max_length=40
            )


class BedsideCheckForm(forms.Form):
    scanned_bag = forms.CharField(
        label="Bag label (scan or type)",
        max_length=60,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )
    scanned_wristband = forms.CharField(
        label="Wristband (scan or type; MRN or COI)",
        max_length=60,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
