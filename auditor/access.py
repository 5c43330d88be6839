"""What the signed-in identity needs per API, said for the kind of credential in use.

An app registration (client secret, certificate) and a managed identity are *applications*:
they cannot hold an administrator role. They read Dataverse as an application user with a
security role, and reach the admin routes (the environments list, the flow API's
`scopes/admin` routes) only once an administrator has registered them with Power Platform as
a management application. A *person* (`auditor login`, device code) reads Dataverse through
their own security roles and reaches the admin routes through an administrator role. A 401
or 403 hint therefore depends on both the API and the credential.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

Principal = Literal["app", "person"]

APP_METHODS = ("client-secret", "client-certificate", "managed-identity")

MANAGEMENT_APP_URL = (
    "https://learn.microsoft.com/power-platform/admin/powerplatform-api-create-service-principal"
)
APPLICATION_USER_URL = "https://learn.microsoft.com/power-platform/admin/manage-application-users"
SECURITY_ROLES_URL = "https://learn.microsoft.com/power-platform/admin/security-roles-privileges"
ADMIN_ROLE_URL = (
    "https://learn.microsoft.com/power-platform/admin/use-service-admin-role-manage-tenant"
)
CONSENT_URL = "https://learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent"

REGISTER_MANAGEMENT_APP = (
    "An administrator registers the app with Power Platform as a management application "
    "(PowerShell: New-PowerAppManagementApp -ApplicationId <client id>; or PUT "
    "https://api.bap.microsoft.com/providers/Microsoft.BusinessAppPlatform/adminApplications/"
    f"<client id>?api-version=2020-10-01); an app cannot hold an admin role. {MANAGEMENT_APP_URL}"
)
ADMIN_ROLE = (
    "Sign in as a Power Platform administrator (or Dynamics 365 administrator) of the tenant. "
    f"{ADMIN_ROLE_URL}"
)

# The kind of credential of the run in progress (set by the orchestrators from Settings).
current_principal: ContextVar[Principal] = ContextVar("current_principal", default="app")


def principal_of(auth_method: str) -> Principal:
    """`app` for app registrations and managed identities, `person` for a signed-in user."""
    return "app" if auth_method in APP_METHODS else "person"


@dataclass(frozen=True)
class Access:
    """What a request needs: its API (`dataverse`, `flow_api`, `admin_api`) and, for
    Dataverse, the read privilege of its table."""

    source: str
    privilege: str = ""

    def hint(self, status: int, principal: Principal | None = None) -> str | None:
        """What to do about a 401 or 403 of this API for this credential (None otherwise)."""
        who = principal or current_principal.get()
        if status == 403:
            return self._forbidden(who)
        if status == 401:
            return self._unauthorized(who)
        return None

    def _forbidden(self, who: Principal) -> str:
        if self.source == "dataverse":
            grant = self.privilege or "the read privilege"
            if who == "app":
                return (
                    f"Give the app's application user in this environment a security role with "
                    f"{grant}. {SECURITY_ROLES_URL}"
                )
            return (
                f"Ask the environment's system administrator for a security role with {grant}. "
                f"{SECURITY_ROLES_URL}"
            )
        return REGISTER_MANAGEMENT_APP if who == "app" else ADMIN_ROLE

    def _unauthorized(self, who: Principal) -> str:
        if self.source == "dataverse":
            if who == "app":
                return (
                    "Dataverse refused the app's token: create an application user for the app "
                    "registration in this environment (Power Platform admin center > Environments "
                    f"> Settings > Users + permissions > Application users). {APPLICATION_USER_URL}"
                )
            return (
                "Dataverse refused your token: you need a user in this environment, and the app "
                "registration needs the delegated Dynamics CRM permission (user_impersonation) "
                f"with consent; then run `auditor login` again. {CONSENT_URL}"
            )
        if who == "app":
            return (
                "The token was refused: check that the app registration belongs to this tenant "
                f"and has admin consent, then register it as a management application. "
                f"{MANAGEMENT_APP_URL}"
            )
        return (
            "The token was refused: run `auditor login` again; the app registration needs "
            f"delegated permissions for this API, with consent. {CONSENT_URL}"
        )
