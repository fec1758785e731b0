# SPDX-License-Identifier: Apache-2.0
"""The embedded default serves ``potluck-demo`` to every organization out of the box."""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from potluck.registry import services as registry
from potluck.registry.models import RegisteredModel
from potluck.serving import services as serving
from potluck.serving.models import Deployment, DeploymentState

DEMO_NAME = "potluck-demo"
# LoRA on: fine-tuned adapters of the demo model are hot-loaded into its replica.
DEMO_ENGINE_ARGS = {"dtype": "float32", "max_model_len": 512, "enable_lora": True,
                    "max_lora_rank": 16}


@transaction.atomic
def ensure_demo_deployment(path: Path) -> str:
    """Register the built demo model as public and deploy one replica, unless already done.

    Idempotent: a second start changes nothing, and an operator's own scaling or
    undeploy of the demo is left as the operator made it.
    """
    model = RegisteredModel.objects.filter(name=DEMO_NAME, organization__isnull=True).first()
    if model is None:
        model = registry.register_local_model(DEMO_NAME, path, organization=None,
                                              license="apache-2.0", operator=True)
    elif model.path != str(path.resolve()):
        return f"{DEMO_NAME} is registered from {model.path}; left as it is"
    if Deployment.objects.filter(model=model).exists():
        live = Deployment.objects.filter(model=model).exclude(
            state=DeploymentState.STOPPED).first()
        return (f"{DEMO_NAME} is deployed ({live.replicas} replica(s))" if live else
                f"{DEMO_NAME} was undeployed by the operator; left stopped")
    serving.create_deployment(model, 1, DEMO_ENGINE_ARGS, organization=None, operator=True)
    return f"{DEMO_NAME} deployed: 1 replica starting (about a minute; `potluck ps`)"
