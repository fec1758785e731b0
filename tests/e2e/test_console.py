# SPDX-License-Identifier: Apache-2.0
"""The web console in a real headless Chromium against a live `potluck up`.

The frontend is built, `potluck up` serves it with the demo model, a person with a password
is added with a colleague and a model of their organization (deployed with no replica, so
nothing starts), and frontend/e2e/console.e2e.mjs (playwright-core driving Debian's chromium)
walks every journey: sign in; scale (a refused count) and undeploy (confirmed); create and
revoke a key; chat with streamed tokens, a prompt too long for the model then a normal one,
and a model that is not deployed; fine-tune and watch the whole loss curve of a run of more
than 100 steps; try the result; create a batch from an uploaded file; see usage (one
Playground key); change a role and remove a member (confirmed); invite a new email (mail is
not configured: the link comes from `potluck invitations link ID`, run by the script), which
a fresh browser opens to choose a password and land as a member, shown in the owner's list;
guess that person's password until sign-in is throttled (429, Retry-After; short here, by
POTLUCK_SIGNIN_BASE_DELAY_SECONDS), then sign in once the wait is over; answer another
organization's invitation (the layout's badge, the Invitations page); a scale refused by the
organization's replica quota; lose the session and come back to the page; an unknown
address; then every page again at a phone's width.
Screenshots of every page at 1280x800 (desktop-*.png) and 390x844 (phone-*.png) are kept in
.potluck-test/artifacts/console/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from embedded import potluck_up

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / ".potluck-test" / "artifacts" / "console"
CHROMIUM = Path("/usr/bin/chromium")
EMAIL = "console-e2e@potluck.test"
MEMBER = "bob@potluck.test"
TEAM_MODEL = "team-demo"
PASSWORD = "correct horse battery staple"
NEWCOMER = "newcomer@potluck.test"  # invited in the console; no account until they accept
OTHER_ORG = "Globex"  # invites EMAIL, who answers in the console
REPLICA_QUOTA = 1  # the organization's, so that scaling to 2 is refused by the server
PAGES = ("01-sign-in", "02-overview", "03-models", "04-keys", "05-playground", "09-batches",
         "10-usage", "11-members", "12-enterprise", "14-not-found")
DESKTOP_ONLY = ("05-playground-refused", "06-fine-tuning-running", "07-fine-tuning-succeeded",
                "08-playground-fine-tuned", "13-session-ended", "16-invitation-joined")
PHONE_ONLY = ("00-menu", "07-fine-tuning-job")
# The invitation pages and the throttled sign-in, at both sizes.
BOTH_NEW = ("15-members-invited", "16-invitation-link", "17-sign-in-throttled",
            "18-invitations-received")



def test_the_console_end_to_end_in_a_real_browser(tmp_path: Path, demo_model_dir: Path) -> None:
    assert shutil.which("node") and shutil.which("npm"), "Node.js is needed for the console"
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install chromium)"
    assert (FRONTEND / "node_modules").is_dir(), "run `cd frontend && npm ci` first"
    build = subprocess.run(["npm", "run", "build"], cwd=FRONTEND, capture_output=True,
                           text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    # A short first throttling delay (the default is 1 s, doubling): the browser shows the
    # wait and signs in once it is over, within the test's time.
    with potluck_up(tmp_path, demo_model_dir, slot=2, POTLUCK_CONSOLE_DIR=str(FRONTEND / "dist"),
                    POTLUCK_SIGNIN_BASE_DELAY_SECONDS="10") as up:
        added = up.cli("users", "add", EMAIL, "--org", "default", "--role", "owner")
        assert added.returncode == 0, added.stderr
        password = up.cli("users", "set-password", EMAIL, "--password-stdin",
                          stdin=PASSWORD + "\n")
        assert password.returncode == 0, password.stderr
        colleague = up.cli("users", "add", MEMBER, "--org", "default", "--role", "member")
        assert colleague.returncode == 0, colleague.stderr
        ours = up.cli("models", "add", TEAM_MODEL, "--path",
                      str(up.data / "models" / "potluck-demo"), "--org", "default")
        assert ours.returncode == 0, ours.stderr
        deployed = up.cli("deploy", TEAM_MODEL, "--org", "default", "--replicas", "0")
        assert deployed.returncode == 0, deployed.stderr
        quota = up.cli("orgs", "quota", "default", "--replicas", str(REPLICA_QUOTA))
        assert quota.returncode == 0, quota.stderr
        other = up.cli("orgs", "create", OTHER_ORG)
        assert other.returncode == 0, other.stderr
        invited = up.cli("invitations", "create", EMAIL, "--org", OTHER_ORG, "--role", "admin",
                         "--url", up.base)
        assert invited.returncode == 0, invited.stderr

        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True)
        browser = subprocess.run(
            ["node", "e2e/console.e2e.mjs"], cwd=FRONTEND, capture_output=True, text=True,
            timeout=1800, check=False,
            # up.env: the script runs `potluck invitations link` against this data dir.
            env={**up.env, "BASE_URL": up.base, "EMAIL": EMAIL, "MEMBER": MEMBER,
                 "TEAM_MODEL": TEAM_MODEL, "PASSWORD": PASSWORD, "ARTIFACTS": str(ARTIFACTS),
                 "CHROMIUM": str(CHROMIUM), "PYTHON": sys.executable, "NEWCOMER": NEWCOMER,
                 "OTHER_ORG": OTHER_ORG, "REPLICA_QUOTA": str(REPLICA_QUOTA)})
        print(browser.stdout)
        print(browser.stderr[-4000:])  # the failing step's error, whole
        assert browser.returncode == 0, (browser.stdout[-4000:], browser.stderr[-4000:],
                                         up.output()[-3000:])
        shots = {p.name for p in ARTIFACTS.glob("*.png")}
        wanted = ({f"desktop-{name}.png" for name in (*PAGES, *DESKTOP_ONLY, *BOTH_NEW)}
                  | {f"phone-{name}.png" for name in (*PAGES, *PHONE_ONLY, *BOTH_NEW)})
        assert shots == wanted, sorted(shots ^ wanted)
    assert up.returncode == 0, up.output()[-3000:]
