# SPDX-License-Identifier: Apache-2.0
"""Prompt tokens of a request whose answer never brought its usage.

vLLM reports usage at the end of an answer. When the client goes away mid-answer, or the
replica fails after it started, the usage never comes, yet the replica processed the
prompt (billing charges for it). ``PromptTokens.settle`` then asks a READY replica of the
same model to count the prompt with vLLM's own ``POST /tokenize`` (the same tokenizer and
chat template the replica applied); completion tokens are the content events relayed, one
token each (vLLM streams a token per event). This costs nothing on the normal path: it
runs only for such requests, after the client is gone or has its error.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

from potluck.inference.catalog import Catalog
from potluck.inference.context import RequestContext
from potluck.protocol.endpoints import CHAT, COMPLETIONS

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=5)


class PromptTokens:
    def __init__(self, http: aiohttp.ClientSession, catalog: Catalog) -> None:
        self.http = http
        self.catalog = catalog

    async def settle(self, ctx: RequestContext) -> None:
        """Set ``ctx.prompt_tokens`` from the replica's tokenizer; on failure leave it (0)
        and log the request id."""
        body = ctx.body if isinstance(ctx.body, dict) else {}
        entry = ctx.entry
        if entry is None or ctx.endpoint not in (CHAT, COMPLETIONS):
            return
        prompt = body.get("prompt")
        if ctx.endpoint is COMPLETIONS and isinstance(prompt, list) and prompt and all(
                isinstance(t, int) for t in prompt):
            ctx.prompt_tokens = len(prompt)  # already token ids
            return
        request: dict[str, Any] = {"model": entry.served_name}
        if ctx.endpoint is CHAT:
            request["messages"] = body.get("messages")
            for key in ("tools", "chat_template_kwargs", "add_generation_prompt"):
                if key in body:
                    request[key] = body[key]
        elif isinstance(prompt, str):
            request["prompt"] = prompt
        else:
            return  # several prompts: their counts are not one number here
        replica = self.catalog.pick(entry, set())
        if replica is None:
            log.warning("request %s: no replica to count its prompt tokens", ctx.request_id)
            return
        try:
            async with self.http.post(replica.url + "/tokenize", data=orjson.dumps(request),
                                      headers={"content-type": "application/json"},
                                      timeout=TIMEOUT) as response:
                answer = orjson.loads(await response.read()) if response.status == 200 \
                    else {}
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            log.warning("request %s: its prompt tokens could not be counted (%s)",
                        ctx.request_id, exc.__class__.__name__)
            return
        count = answer.get("count") if isinstance(answer, dict) else None
        if isinstance(count, int) and count > 0:
            ctx.prompt_tokens = count
