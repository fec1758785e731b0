# SPDX-License-Identifier: Apache-2.0
"""LoRA adapters in running replicas: each READY replica of a LoRA-enabled deployment
holds every adapter registered on its base model, loaded at run time through vLLM's
``/v1/load_lora_adapter`` (and unloaded when the adapter is deleted).

An adapter is loaded under a server name of its own, ``adapter-<registered id>``,
never its registered name: vLLM's adapter names are global to a server, and two
organizations may each register an adapter called ``helper`` on one public base. The
gateway (and the batch runner) send the server name upstream and give the caller's
name back in the answer (``ModelEntry.served_name``, ``ModelEntry.public_body``).

``Replica.adapters`` records the server names a replica holds; the gateway routes an
adapter's requests only to replicas that hold it, so a request never meets a replica
that would not know the name. A restarted server starts empty and is filled again here.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid

from potluck.registry.models import Kind, RegisteredModel
from potluck.serving.models import Replica, ReplicaState

log = logging.getLogger(__name__)
RETRY_FAILED_AFTER_SECONDS = 60.0
TIMEOUT_SECONDS = 30.0


def server_name(model_id: uuid.UUID | str) -> str:
    """The name an adapter is loaded under in vLLM: unique to the registered adapter."""
    return f"adapter-{uuid.UUID(str(model_id)).hex}"


def _post(url: str, body: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


def sync_adapters(replica: Replica, failures: dict[tuple[str, str], float]) -> None:
    """Load missing adapters into a READY replica and unload removed ones.

    ``failures`` remembers (replica, adapter) loads that failed, so that a bad adapter
    (e.g. a rank above the server's max_lora_rank) is retried once a minute, not on
    every pass.
    """
    if not replica.deployment.engine_args.get("enable_lora"):
        return
    wanted = {server_name(model_id): path for model_id, path in
              RegisteredModel.objects.filter(base_id=replica.deployment.model_id,
                                             kind=Kind.ADAPTER).values_list("id", "path")}
    held = set(replica.adapters)
    loaded, unloaded = [], []
    for name in sorted(set(wanted) - held):
        key = (str(replica.id), name)
        if time.monotonic() - failures.get(key, -1e9) < RETRY_FAILED_AFTER_SECONDS:
            continue
        status, text = _post(f"{replica.base_url}/v1/load_lora_adapter",
                             {"lora_name": name, "lora_path": wanted[name]})
        if status == 200 or "already been loaded" in text:
            loaded.append(name)
            failures.pop(key, None)
            log.info("replica %s loaded adapter %s", replica.id, name)
        else:
            failures[key] = time.monotonic()
            log.warning("replica %s could not load adapter %s: %s %s", replica.id, name,
                        status, text[:300])
    for name in sorted(held - set(wanted)):
        status, text = _post(f"{replica.base_url}/v1/unload_lora_adapter", {"lora_name": name})
        if status in (200, 404) or "not found" in text.lower():
            unloaded.append(name)
    if loaded or unloaded:
        adapters = sorted((held | set(loaded)) - set(unloaded))
        Replica.objects.filter(pk=replica.pk, state=ReplicaState.READY,
                               pid=replica.pid).update(adapters=adapters)
        replica.adapters = adapters
