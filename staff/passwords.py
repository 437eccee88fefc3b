"""Password rules beyond Django's (issue 12, finding 12): a new password may not contain the user name, and a
change must change it."""

from django import forms
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError


class NotContainingUsername:
    """Django's similarity check lets "nurse.nina-2026!" through for the user nurse.nina; this one does not."""

    def validate(self, password, user=None):
        username = (getattr(user, "username", "") or "").strip().lower()
        if len(username) >= 3 and username in password.lower():
            raise ValidationError("Your password cannot contain your user name.", code="password_contains_username")

    def get_help_text(self):
        return "Your password cannot contain your user name."


class ClinicPasswordChangeForm(PasswordChangeForm):
    def clean_new_password1(self):
        password = self.cleaned_data.get("new_password1")
        if password and self.user.check_password(password):
            raise forms.ValidationError("Choose a password different from your current one.", code="password_unchanged")
        return password
