"""Django admin: tenants, aliases with their candidates (passwords write-only), history."""

from django import forms
from django.contrib import admin

from .models import BreakerEvent, Candidate, Tenant, TenantDatabase


class CandidateForm(forms.ModelForm):
    # Write-only: the current password is never rendered; leaving it empty keeps it.
    password = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False)

    class Meta:
        model = Candidate
        fields = ["position", "host", "port", "name", "user", "password"]

    def clean_password(self):
        password = self.cleaned_data["password"]
        return password or (self.instance.password if self.instance.pk else "")


class CandidateInline(admin.TabularInline):
    model = Candidate
    form = CandidateForm
    extra = 0


class BreakerEventInline(admin.TabularInline):
    model = BreakerEvent
    fields = ["at", "kind", "from_state", "to_state", "reason", "failure_rate", "calls", "epoch", "actor"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TenantDatabase)
class TenantDatabaseAdmin(admin.ModelAdmin):
    list_display = ["alias", "tenant", "active_candidate", "generation"]
    search_fields = ["alias", "tenant__name"]
    readonly_fields = ["generation", "failover_epoch", "active_candidate"]
    inlines = [CandidateInline, BreakerEventInline]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["id", "name"]
