# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Buying a licence in a real browser, from one installation's console to another's store.

Two installations, each a real Potluck web process (gunicorn + uvicorn, the same
``potluck.asgi`` that ``potluck up`` runs) with a database of its own, beside the Stripe
fake: the vendor's store (its issuer key in a file) and a customer's installation (its
console built from frontend/). What they leave out of ``potluck up`` (beat, the node agent,
vLLM and the demo model) plays no part in buying or installing a licence, and two whole
``potluck up`` would take this 2-core machine minutes; online renewal (beat's part) is
tested in test_installations_renew_online.py.

frontend/e2e/store.e2e.mjs (playwright-core driving Debian's chromium), as people do it:
the customer's operator signs in to the console, reads the installation id on the
Enterprise page and follows its store link; on the store, the buyer asks for a sign-in
link (read from the store's mail folder), signs in, starts a free trial for that
installation and downloads the licence; back in the console a damaged copy is refused
with the verifier's reason, then the file is uploaded and ``sso`` switches on. Then a paid
purchase: the buyer chooses Business, pays on Stripe's (the fake's) Checkout page, the
fake's signed webhooks reach the store, the licence appears in the account, and pasted
into the console it switches ``compliance`` on. The store's logs, the customer's logs and
both databases are then searched for the issuer's private key.
Screenshots: .potluck-test/artifacts/store/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from fake_stripe import WEBHOOK_SECRET, FakeStripe
from gateway_harness import running_gateway
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from store_helpers import PLANS, dump_tables, leaks, secret_forms

from potluck_enterprise.licensing import format

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / ".potluck-test" / "artifacts" / "store"
CHROMIUM = Path("/usr/bin/chromium")
PLUGIN_DIR = ROOT / "tests" / "enterprise" / "plugins"
BUYER = "buyer@acme-e2e.test"


def _admin_conninfo(dbname: str) -> str:
    params = conninfo_to_dict(os.environ["DATABASE_URL"])
    params["dbname"] = dbname
    return make_conninfo(**params)


def _url(dbname: str) -> str:
    params = conninfo_to_dict(os.environ["DATABASE_URL"])
    host, user = params.get("host", ""), params.get("user") or "postgres"
    if host.startswith("/"):
        return f"postgresql://{user}@/{dbname}?host={host}"
    password = params.get("password", "")
    return f"postgresql://{user}:{password}@{host}:{params.get('port') or 5432}/{dbname}"


def _run(env: dict[str, str], *args: str, stdin: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "potluck", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done


def _dump(dbname: str) -> str:
    """Every value of every row of every table of ``dbname``, as text."""
    with psycopg.connect(_admin_conninfo(dbname)) as conn:
        return dump_tables(lambda sql: list(conn.execute(sql)))[1]


def _query(dbname: str, sql: str) -> list[tuple]:
    with psycopg.connect(_admin_conninfo(dbname)) as conn:
        return list(conn.execute(sql))


def test_a_trial_and_a_purchase_end_installed_through_another_console(tmp_path: Path) -> None:
    began = time.monotonic()
    assert shutil.which("node") and CHROMIUM.exists(), "Node.js and Debian's chromium"
    assert (FRONTEND / "node_modules").is_dir(), "run `cd frontend && npm ci` first"
    build = subprocess.run(["npm", "run", "build"], cwd=FRONTEND, capture_output=True,
                           text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    # The throwaway issuer: its private key in the store's file, its public key trusted by
    # both processes through the test plug-in (production trusts only the shipped key).
    private_pem, public_pem = format.generate_key_pair()
    key_file, public_file = tmp_path / "issuer-private.pem", tmp_path / "issuer-public.pem"
    key_file.write_bytes(private_pem)
    key_file.chmod(0o600)
    public_file.write_bytes(public_pem)

    suffix = f"{os.getpid()}_{int(time.time())}"
    store_db, customer_db = f"e2e_store_{suffix}", f"e2e_customer_{suffix}"
    fake = FakeStripe().start()
    try:
        with psycopg.connect(_admin_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{store_db}"')
        base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        base.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(PLUGIN_DIR), base.get("PYTHONPATH")])),
            POTLUCK_PLUGINS="potluck_test_issuer_key", PYTHONUNBUFFERED="1",
            POTLUCK_TEST_ISSUER_PUBLIC_KEY_FILE=str(public_file),
            POTLUCK_CONSOLE_DIR=str(FRONTEND / "dist"), POTLUCK_LOG_LEVEL="DEBUG")
        _run({**base, "DATABASE_URL": _url(store_db),
              "POTLUCK_DATA_DIR": str(tmp_path / "store-data")}, "manage", "migrate", "-v", "0")
        with psycopg.connect(_admin_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{customer_db}" TEMPLATE "{store_db}"')
        mail = tmp_path / "store-mail"
        store_env = {
            **base, "DATABASE_URL": _url(store_db),
            "POTLUCK_DATA_DIR": str(tmp_path / "store-data"),
            "POTLUCK_STORE_ISSUER_KEY_FILE": str(key_file),
            "POTLUCK_STORE_STRIPE_API_KEY": fake.api_key,
            "POTLUCK_STORE_STRIPE_API_BASE": fake.url,
            "POTLUCK_STORE_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "POTLUCK_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "POTLUCK_EMAIL_FILE_PATH": str(mail)}
        customer_env = {**base, "DATABASE_URL": _url(customer_db),
                        "POTLUCK_DATA_DIR": str(tmp_path / "customer-data")}
        _run(store_env, "bootstrap")
        password = _run(customer_env, "bootstrap").stdout.strip().splitlines()[-1]
        password = password.removeprefix("password:")
        plans_file = tmp_path / "plans.json"
        plans_file.write_text(json.dumps(PLANS))
        set_plans = _run(store_env, "store", "plans", "set", str(plans_file))
        assert "Stripe: 6 new prices created" in set_plans.stdout
        checked = _run(store_env, "store", "check")
        assert "matches the issuer public key" in checked.stdout
        started = time.monotonic() - began

        (tmp_path / "store").mkdir()
        (tmp_path / "customer").mkdir()
        with running_gateway(store_env, tmp_path / "store") as store:
            fake.webhook_url = f"{store.url}/api/store/stripe/webhook"
            # The customer's console on "localhost", the store on "127.0.0.1": one browser
            # keeps their cookies apart, as two sites' are.
            store_port = store.url.rsplit(":", 1)[1]
            customer_env["POTLUCK_LICENSE_STORE_URL"] = f"http://127.0.0.1:{store_port}"
            with running_gateway({**customer_env, "POTLUCK_STORE_PUBLIC_URL": ""},
                                 tmp_path / "customer") as customer:
                console = customer.url.replace("127.0.0.1", "localhost")
                shutil.rmtree(ARTIFACTS, ignore_errors=True)
                ARTIFACTS.mkdir(parents=True)
                browser_began = time.monotonic()
                browser = subprocess.run(
                    ["node", "e2e/store.e2e.mjs"], cwd=FRONTEND, capture_output=True,
                    text=True, timeout=900, check=False,
                    env={**os.environ, "CONSOLE_URL": console, "ADMIN": "admin",
                         "PASSWORD": password, "BUYER": BUYER, "MAIL_DIR": str(mail),
                         "ARTIFACTS": str(ARTIFACTS), "CHROMIUM": str(CHROMIUM)})
                browser_seconds = time.monotonic() - browser_began
                print(browser.stdout)
                print(browser.stderr[-4000:])
                assert browser.returncode == 0, (
                    browser.stdout[-4000:], browser.stderr[-4000:],
                    store.log_path.read_text()[-3000:], customer.log_path.read_text()[-3000:])
            logs = store.log_path.read_text() + customer.log_path.read_text()

        # What each side holds: the store issued a trial and a purchase, nothing else;
        # the customer installed both, the purchase last, bound to its own installation.
        issued = _query(store_db, "SELECT reason, plan_id, installation_id FROM "
                        "potluck_enterprise_issuedlicence ORDER BY issued_at")
        ours = _query(customer_db, "SELECT installation_id FROM "
                      "potluck_enterprise_installation")[0][0]
        assert issued == [("trial", "team", ours), ("purchase", "business", ours)]
        assert _query(store_db, "SELECT count(*) FROM potluck_enterprise_installation")[0][0] \
            in (0, 1)
        installed = _query(customer_db, "SELECT license_id, features, active FROM "
                           "potluck_enterprise_installedlicence ORDER BY installed_at")
        assert [row[2] for row in installed] == [False, True]
        assert sorted(installed[1][1]) == ["billing", "compliance", "credits", "sso"]

        # The private key: in its file, and nowhere else.
        forms = secret_forms(private_pem)
        places = {"web logs": logs, "store database": _dump(store_db),
                  "customer database": _dump(customer_db),
                  "mail": "\n".join(p.read_text() for p in mail.iterdir()),
                  "browser output": browser.stdout + browser.stderr}
        assert "lic-" in places["store database"] and "inst_" in places["web logs"]
        for where, text in places.items():
            assert leaks(text, forms) == [], f"the private key leaked into the {where}"
        # Nor did a sign-in token reach a log (the access log writes paths).
        tokens = re.findall(r"/store/sign-in/([A-Za-z0-9_\-]{20,})", places["mail"])
        assert tokens and "/store/sign-in/[token]" in logs
        assert not [t for t in tokens if t in logs]
        steps = json.loads((ARTIFACTS / "steps.json").read_text())
        print(f"set-up {started:.1f} s, browser {browser_seconds:.1f} s, whole test "
              f"{time.monotonic() - began:.1f} s; steps: {steps}")
    finally:
        fake.stop()
        with psycopg.connect(_admin_conninfo("postgres"), autocommit=True) as admin:
            for name in (customer_db, store_db):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
