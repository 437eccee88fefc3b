from django import forms

from alerts.services import NOTE_MAX_LENGTH


class AlertAcknowledgeForm(forms.Form):
    note = forms.CharField(
        label="What you are doing about it", required=False, max_length=NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3})
    )
    password = forms.CharField(
        label="Your password (electronic signature)",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)
