"""Forms of the journey pages. They check shapes (a date is a date); the services check the clinic's rules."""

from django import forms
from django.utils import timezone

from journeys import records
from journeys.models import ProtocolTemplate, SignatureMeaning, StageNumber
from patients.models import Indication
from staff.models import User
from staff.roles import Role

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=DATETIME_LOCAL, **kwargs)


class DashboardFilterForm(forms.Form):
    q = forms.CharField(label="Search by MRN or name", required=False, max_length=100)
    indication = forms.ChoiceField(label="Indication", required=False, choices=[("", "All indications"), *Indication.choices])
    stage = forms.TypedChoiceField(
        label="Stage",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "All stages"), *[(n, f"{n} {label}") for n, label in StageNumber.choices]],
    )
    coordinator = forms.ModelChoiceField(
        label="Coordinator", required=False, empty_label="All coordinators", queryset=User.objects.none()
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["coordinator"].queryset = User.objects.filter(groups__name=Role.COORDINATOR, is_active=True).distinct()

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        coordinator = self.cleaned_data.get("coordinator")
        return {
            "indication": self.cleaned_data.get("indication") or "",
            "stage": self.cleaned_data.get("stage"),
            "coordinator_id": coordinator.id if coordinator else None,
        }


class SignedRecordForm(forms.Form):
    """A step's own fields, signed electronically: the signer re-enters the password (21 CFR Part 11 spirit)."""

    password = forms.CharField(
        label="Your password (electronic signature)",
        strip=False,
        error_messages={"required": "Enter your password to sign."},
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)
    refused_signature = "That is not your password. The step was not recorded."

    def __init__(self, *args, signer=None, record_fields=(), measurement=None, facts=None, indication=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.signer = signer
        # The step's own fields, named "record.<name>" like the service's errors, so each lands by its input.
        # Only what the patient's indication asks (an MG-ADL item is not shown for a lupus patient).
        indication = facts.indication if facts is not None else indication
        asked = [
            (raw, spec)
            for raw, spec in zip(record_fields or [], records.parse_specs(record_fields), strict=True)
            if (facts is None and indication is None) or spec.asked_for(indication)
        ]
        self.record_specs = [spec for _, spec in asked]
        self.facts = facts
        labels = {spec.name: spec.label.lower() for spec in self.record_specs}
        shown_so_far = {}  # the computed values in the specs' order: a dose shows the BSA it is computed from
        for raw, spec in asked:
            field = self.fields[records.error_key(spec.name)] = record_form_field(
                spec, facts=facts, labels=labels, so_far=shown_so_far
            )
            if calculated := records.calculated_dose(raw, measurement and measurement.body_surface_area_m2):
                field.help_text = (
                    f"{field.help_text} Calculated from the height and weight of "
                    f"{measurement.measured_on:%d %b %Y}: {calculated}."
                ).strip()

    @property
    def record_field_names(self) -> list[str]:
        return [records.error_key(spec.name) for spec in self.record_specs]

    def clean_password(self):
        password = self.cleaned_data["password"]
        if self.signer is None or not self.signer.check_password(password):
            raise forms.ValidationError(self.refused_signature)
        return password

    def clean(self):
        cleaned = super().clean()
        # A computed field's input is read-only and never sent back: the service computes it.
        raw = {spec.name: cleaned.get(records.error_key(spec.name)) for spec in self.record_specs if not spec.computed}
        record, errors = records.record_errors(self.record_specs, raw, facts=self.facts)
        # The service computes them again, as on the day performed: the form only shows what would be refused.
        cleaned["record"] = {name: value for name, value in record.items() if name in raw}
        for key, messages in errors.items():
            if key in self.fields and key not in self.errors:
                for message in messages:
                    self.add_error(key, message)
        return cleaned


class StepCompleteForm(SignedRecordForm):
    """Recording a pending step as done."""

    performed_at = forms.DateTimeField(
        label="Time performed", widget=DateTimeLocalInput(), input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
    )
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
    signature_meaning = forms.ChoiceField(
        label="Meaning of your signature",
        choices=SignatureMeaning.choices,
        widget=forms.RadioSelect,
        initial=SignatureMeaning.PERFORMED,
    )

    def __init__(self, *args, late: bool = False, two_person: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        second = []
        if two_person:
            # The second person types their own name and password on the same screen; the service checks them.
            self.fields["second_signer_username"] = forms.CharField(
                label="Second signer: user name",
                max_length=150,
                error_messages={"required": "A second person signs this step."},
                widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
                help_text="A second, different member of staff checks and signs with you.",
            )
            self.fields["second_signer_password"] = forms.CharField(
                label="Second signer: password",
                strip=False,
                error_messages={"required": "The second signer enters their password."},
                widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
            )
            second = ["second_signer_username", "second_signer_password"]
        # The signatures come last, after everything they sign.
        self.order_fields(
            ["performed_at", *self.record_field_names, "notes", "signature_meaning", "password", *second, "version"]
        )
        if late:
            # A late step was seldom done just now: "now" as a default would be signed without a thought.
            self.fields["performed_at"].help_text = "This step is late: enter when it was actually done."
            self.fields["performed_at"].error_messages["required"] = "Enter when the step was actually done."
        elif not self.is_bound:
            self.initial.setdefault("performed_at", timezone.localtime().replace(second=0, microsecond=0))


class StepCorrectForm(SignedRecordForm):
    """Correcting what a done step recorded: the values as they stand, changed, with a reason, signed again."""

    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
    reason = forms.CharField(
        label="Reason for the correction (goes into the audit trail)", max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    refused_signature = "That is not your password. Nothing was corrected."

    def __init__(self, *args, step=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields([*self.record_field_names, "notes", "reason", "password", "version"])
        if not self.is_bound and step is not None:
            self.initial.update({"notes": step.notes, "version": step.version})
            for spec in self.record_specs:
                if spec.name in (step.record or {}):
                    self.initial[records.error_key(spec.name)] = form_value(spec, step.record[spec.name])


def form_value(spec: records.FieldSpec, stored):
    """A stored value as its input shows it: a required yes/no as the radio's "yes"/"no"."""
    if spec.type == "boolean" and spec.required and not spec.computed:
        return "yes" if stored else "no"
    return stored


def record_form_field(spec: records.FieldSpec, *, facts=None, labels=None, so_far=None) -> forms.Field:
    """A bedside input for one record field spec. Fields only shape the input (number keypad, a select, a
    date picker); `journeys.records` judges the value, as it does for the API. A computed field is shown
    read-only with its formula, and its value when the patient's facts alone give it."""
    kind = spec.type
    required = spec.required
    common = {
        "label": spec.label,
        "help_text": spec.help or "",
        "required": required,
        "error_messages": {"required": "Required for this step."},
    }
    if spec.computed is not None:
        value, problem = None, ""
        so_far = {} if so_far is None else so_far
        if facts is not None:
            try:
                value = spec.computed_value(so_far, facts)
            except ValueError as error:
                # "Weigh the patient first" is said before the nurse signs, not after.
                problem = f"{error}." if str(error).startswith("weigh") else ""
        if value is not None:
            so_far[spec.name] = value
        dumped = spec.model_dump(exclude_none=True)
        shown = records.display_value(dumped, value) if value is not None else ""
        formula = records.computed_help(spec, facts, labels, record=so_far)
        help_text = " ".join(
            filter(
                None,
                (
                    spec.help,
                    f"{formula} = {shown}." if shown else f"{formula}.",
                    problem[:1].upper() + problem[1:],
                    "Calculated when you sign." if value is None and not problem else "",
                ),
            )
        )
        field = forms.CharField(
            label=f"{spec.label} (computed)",
            required=False,
            disabled=True,
            initial=shown,
            help_text=help_text,
            widget=forms.TextInput(attrs={"readonly": True}),
        )
        field.unit = ""
        return field
    if kind in records.NUMBER_TYPES:
        attrs = {
            "inputmode": "numeric" if kind == "integer" else "decimal",
            "step": 1 if kind == "integer" else (spec.step if spec.step is not None else "any"),
        }
        attrs.update({key: getattr(spec, key) for key in ("min", "max") if getattr(spec, key) is not None})
        field = forms.CharField(widget=forms.NumberInput(attrs=attrs), **common)
    elif kind == "choice":
        field = forms.CharField(widget=forms.Select(choices=[("", "Choose…"), *[(c[0], c[1]) for c in spec.choices]]), **common)
    elif kind == "boolean" and required:
        # A required yes/no is asked as a question: an unticked box cannot tell "no" from "not looked".
        field = forms.CharField(widget=forms.RadioSelect(choices=[("yes", "Yes"), ("no", "No")]), **common)
    elif kind == "boolean":
        field = forms.BooleanField(**{**common, "required": False})
    elif kind == "date":
        field = forms.CharField(widget=DateInput(), **common)
    else:
        field = forms.CharField(max_length=spec.max_length or records.TEXT_MAX_LENGTH, **common)
    field.unit = spec.unit or ""
    return field


class StepSkipForm(forms.Form):
    reason = forms.CharField(label="Reason for skipping", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    version = forms.IntegerField(widget=forms.HiddenInput)


class JourneyStartForm(forms.Form):
    protocol = forms.ModelChoiceField(label="Protocol", queryset=ProtocolTemplate.objects.none(), empty_label=None)
    leukapheresis_date = forms.DateField(label="Planned leukapheresis date", widget=DateInput())
    day0_planned = forms.DateField(
        label="Planned Day 0 (infusion)",
        required=False,
        widget=DateInput(),
        help_text="Leave empty to plan it from the protocol's vein-to-vein time.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["protocol"].queryset = ProtocolTemplate.objects.filter(is_active=True)


class Day0RescheduleForm(forms.Form):
    new_day0 = forms.DateField(label="New Day 0", widget=DateInput())
    reason = forms.CharField(
        label="Reason (goes into the audit trail)", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    version = forms.IntegerField(widget=forms.HiddenInput)


class JourneyStatusForm(forms.Form):
    reason = forms.CharField(
        label="Reason (goes into the audit trail)", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )
    version = forms.IntegerField(widget=forms.HiddenInput)
