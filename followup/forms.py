"""The patient's questionnaire: the step's own record fields, as journeys' record form draws them."""

from django import forms

from journeys import records
from journeys.forms import record_form_field


class QuestionnaireForm(forms.Form):
    def __init__(self, *args, specs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.specs = records.parse_specs(specs)
        for spec in self.specs:
            self.fields[records.error_key(spec.name)] = record_form_field(spec)

    def answers(self) -> dict:
        """The answers by field name, as typed (the service judges them by the record schema)."""
        return {
            spec.name: self.cleaned_data[records.error_key(spec.name)]
            for spec in self.specs
            if self.cleaned_data.get(records.error_key(spec.name)) not in (None, "")
        }
