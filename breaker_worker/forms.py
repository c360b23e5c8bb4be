"""Admin forms: an alias and its candidates, validated before anything is saved."""

from __future__ import annotations

import re

from django import forms

from .models import ALIAS_PATTERN, Breaker, Candidate


class BreakerForm(forms.ModelForm):
    class Meta:
        model = Breaker
        fields = ["alias", "tenant", "probe_sql"]

    def clean(self):
        cleaned = super().clean()
        alias, tenant = cleaned.get("alias"), cleaned.get("tenant")
        match = re.match(ALIAS_PATTERN, alias or "")
        if match and tenant is not None and int(match["tenant"]) != tenant.pk:
            self.add_error("tenant", f"The alias {alias} belongs to tenant {match['tenant']}, not {tenant.pk}.")
        if not (cleaned.get("probe_sql") or "").strip():
            self.add_error("probe_sql", "The probe query must not be empty.")
        return cleaned


class CandidateForm(forms.ModelForm):
    # Write-only: the current password is never rendered; leaving it empty keeps it.
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        help_text="Write-only. Leave empty to keep the current password.",
    )

    class Meta:
        model = Candidate
        fields = ["position", "host", "port", "name", "user", "password"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Compared with the empty field, the stored password would count as changed on every save:
        # the admin's history would say "Changed password" for each candidate each time.
        self.initial["password"] = ""

    def clean_host(self):
        host = self.cleaned_data["host"].strip()
        if not host or any(c.isspace() for c in host):
            raise forms.ValidationError("Enter a host name or address, without spaces.")
        return host

    def clean_password(self):
        password = self.cleaned_data["password"]
        return password or (self.instance.password if self.instance.pk else "")
