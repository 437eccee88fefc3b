from django import forms
from django.utils import timezone

from manufacturing.models import BagKind, Criterion, ExcursionDecision, Maker, OrderStatus, Plant, Product
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


class ExceptionalReleaseForm(forms.Form):
    """A physician releases an out-of-specification product; a second person signs on the same screen."""

    reason = forms.CharField(
        label="Reason (clinical justification; goes into the audit trail and shows wherever the product does)",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2000,
    )
    countersigner_username = forms.CharField(
        label="Second signer: user name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    countersigner_password = forms.CharField(
        label="Second signer: password",
        error_messages={"required": "The second signer enters their password."},
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)


class ExcursionDecisionForm(forms.Form):
    excursion = forms.ModelChoiceField(queryset=None, label="Excursion", empty_label=None, widget=forms.RadioSelect)
    decision = forms.ChoiceField(
        label="Decision",
        widget=forms.RadioSelect,
        choices=[(value, label) for value, label in ExcursionDecision.choices if value],
    )
    reason = forms.CharField(
        label="Reason (goes into the audit trail)", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, excursions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["excursion"].queryset = excursions
        self.fields["excursion"].label_from_instance = lambda x: (
            f"{x.get_kind_display()}: {x.detail}" + (f" (kept in quarantine by {x.decided_by})" if x.decision else "")
        )


class MismatchResolveForm(forms.Form):
    check = forms.ModelChoiceField(queryset=None, label="Mismatch", empty_label=None, widget=forms.RadioSelect)
    resolution = forms.CharField(
        label="Resolution (what was found and done; goes into the audit trail)",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )

    def __init__(self, *args, checks, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["check"].queryset = checks
        self.fields["check"].label_from_instance = lambda c: (
            f"{timezone.localtime(c.checked_at):%d %b %Y %H:%M}, {c.checked_by}: scanned {c.scanned_bag} — {c.detail}"
        )


class BagRegisterForm(forms.Form):
    kind = forms.ChoiceField(label="Kind of bag", choices=BagKind.choices, widget=forms.RadioSelect)
    chain_on_label = forms.CharField(
        label="Chain of identity on the bag (scan or type)",
        max_length=60,
        help_text="Compared with the journey's chain of identity, check character first.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )
