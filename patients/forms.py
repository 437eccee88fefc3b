from django import forms

from patients.models import ConsentKind, Indication, Sex
from staff.models import User
from staff.roles import Role


class PatientEnrolForm(forms.Form):
    mrn = forms.CharField(label="MRN (medical record number)", max_length=32)
    given_name = forms.CharField(label="Given name", max_length=100)
    family_name = forms.CharField(label="Family name", max_length=100)
    date_of_birth = forms.DateField(
        label="Date of birth", widget=forms.DateInput(attrs={"type": "date", "min": "1900-01-01"}, format="%Y-%m-%d")
    )
    sex = forms.ChoiceField(label="Sex", choices=[("", "Choose…"), *Sex.choices])
    indication = forms.ChoiceField(label="Indication", choices=[("", "Choose…"), *Indication.choices])
    indication_other = forms.CharField(label="Indication, if other", required=False, max_length=200)
    phone = forms.CharField(label="Phone", required=False, max_length=40)
    email = forms.EmailField(label="Email", required=False)
    coordinator = forms.ModelChoiceField(
        label="Coordinator", required=False, queryset=User.objects.none(), empty_label="Not assigned yet"
    )
    nurse = forms.ModelChoiceField(
        label="Named nurse", required=False, queryset=User.objects.none(), empty_label="Any nurse on the ward"
    )
    physician = forms.ModelChoiceField(
        label="Treating physician", required=False, queryset=User.objects.none(), empty_label="Any physician of the clinic"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["coordinator"].queryset = User.objects.filter(groups__name=Role.COORDINATOR, is_active=True).distinct()
        self.fields["nurse"].queryset = User.objects.filter(groups__name=Role.NURSE, is_active=True).distinct()
        self.fields["physician"].queryset = User.objects.filter(groups__name=Role.PHYSICIAN, is_active=True).distinct()

    def clean(self):
        data = super().clean()
        if data.get("indication") == Indication.OTHER and not data.get("indication_other"):
            self.add_error("indication_other", "Describe the indication.")
        return data


class PatientEnrolmentForm(PatientEnrolForm):
    """Enrolment, with the confirmation asked only once the register has found a likely duplicate."""

    confirm_not_duplicate = forms.BooleanField(
        label="I have checked: this is a different person, enrol anyway", required=False, widget=forms.HiddenInput
    )

    def ask_to_confirm(self) -> None:
        self.fields["confirm_not_duplicate"].widget = forms.CheckboxInput()


class PatientDetailsForm(PatientEnrolForm):
    """The same details after enrolment, with the version they were read at: two people editing one record
    at once must not overwrite each other."""

    version = forms.IntegerField(widget=forms.HiddenInput)


class ConsentForm(forms.Form):
    kind = forms.ChoiceField(label="Kind of consent", choices=ConsentKind.choices)
    document_version = forms.CharField(
        label="Version of the consent document", max_length=40, help_text="As printed on the form, e.g. 3.1 of 2026-02-01."
    )
    signed_on = forms.DateField(label="Signed on", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    taken_by = forms.ModelChoiceField(
        label="Taken by",
        queryset=User.objects.none(),
        required=False,
        empty_label="Choose who explained the form…",
        help_text="The clinician who explained the form and took the signature.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["taken_by"].required = True
        self.fields["taken_by"].error_messages["required"] = "Say who took the consent."
        self.fields["taken_by"].queryset = (
            User.objects.filter(groups__name__in=[Role.PHYSICIAN, Role.COORDINATOR, Role.NURSE], is_active=True)
            .distinct()
            .order_by("last_name", "first_name")
        )


class ConsentWithdrawForm(forms.Form):
    withdrawn_on = forms.DateField(label="Withdrawn on", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    reason = forms.CharField(
        label="Reason (goes into the audit trail)", max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    version = forms.IntegerField(widget=forms.HiddenInput)


class MeasurementForm(forms.Form):
    measured_on = forms.DateField(
        label="Measured on", widget=forms.DateInput(attrs={"type": "date", "min": "1900-01-01"}, format="%Y-%m-%d")
    )
    height_cm = forms.DecimalField(
        label="Height",
        max_digits=4,
        decimal_places=1,
        min_value=50,
        max_value=250,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.1"}),
    )
    weight_kg = forms.DecimalField(
        label="Weight",
        max_digits=4,
        decimal_places=1,
        min_value=20,
        max_value=350,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.1"}),
    )
    weight_change_confirmed = forms.BooleanField(
        label="Yes, the weight changed",
        required=False,
        help_text="Only when the service asks: a weight far from the previous one is recorded once confirmed.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["height_cm"].unit, self.fields["weight_kg"].unit = "cm", "kg"
