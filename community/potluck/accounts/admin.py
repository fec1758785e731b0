# SPDX-License-Identifier: Apache-2.0
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from potluck.accounts.models import ApiKey, Membership, Organization, User

admin.site.register(User, UserAdmin)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "display_prefix", "organization", "scopes", "created_at",
                    "last_used_at", "revoked_at"]
    list_filter = ["organization"]
    # The hash is not a secret one can use, but there is no reason to show it either.
    exclude = ["secret_hash"]
    readonly_fields = ["lookup", "created_at", "last_used_at"]
