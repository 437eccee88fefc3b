from django import forms


class DateRangeForm(forms.Form):
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range comes before its start.")
        return cleaned

    def range(self) -> dict:
        """{since, until} of a valid form, else no range."""
        if not self.is_bound or not self.is_valid():
            return {"since": None, "until": None}
        return {"since": self.cleaned_data.get("since"), "until": self.cleaned_data.get("until")}
