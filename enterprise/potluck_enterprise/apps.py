# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
from django.apps import AppConfig


class EnterpriseConfig(AppConfig):
    """Plugs the enterprise edition into ``potluck.extensions``.

    Always (licence or not): the licence panel, ``/api/license``, ``potluck license``,
    the seat policy (a no-op without a licence in force) and the routes of each feature
    (whose views answer only while the licence grants the feature). Licensed features
    themselves are switched on and off at runtime by the licence gate
    (``potluck_enterprise.licensing.gating``), never here: ready() touches no database.
    The licence store (the vendor's installation) mounts its routes too; they answer only
    where the issuer's private key is configured.
    """

    name = "potluck_enterprise"
    label = "potluck_enterprise"
    verbose_name = "Potluck Enterprise"

    def ready(self) -> None:
        from potluck_enterprise.billing import setup as billing_setup
        from potluck_enterprise.compliance import setup as compliance_setup
        from potluck_enterprise.credits import setup as credits_setup
        from potluck_enterprise.licensing import setup as licensing_setup
        from potluck_enterprise.sso import setup as sso_setup
        from potluck_enterprise.store import setup as store_setup

        sso_setup.install()
        billing_setup.install()
        compliance_setup.install()
        credits_setup.install()
        licensing_setup.install()
        store_setup.install()
