# SPDX-License-Identifier: Apache-2.0
"""Password sign-in is throttled per account and per client address, with Retry-After,
and no lock-out is permanent (issue 19: 30 wrong passwords, then the right one, were
all answered at once and the right one was accepted)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from potluck.accounts import services, signin

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9137"


@pytest.fixture(autouse=True)
def fast_password_hashes(settings) -> None:
    """Django's default hasher costs most of a second per attempt on CI's machines; these
    tests make hundreds (the throttle, not the hash, is what they are about)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(org):
    user = services.get_or_create_user("alice@acme.test")
    services.set_password(user, PASSWORD)
    services.add_member(org, "alice@acme.test", "member")
    return user


class Clock:
    """The throttle's clock, moved by the test instead of waiting."""

    def __init__(self, monkeypatch) -> None:
        self.now = 1_800_000_000.0
        monkeypatch.setattr(signin, "_now", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def _browser(address: str = "203.0.113.7") -> APIClient:
    client = APIClient(enforce_csrf_checks=True, REMOTE_ADDR=address)
    client.get("/api/session")
    return client


def _sign_in(client: APIClient, password: str, email: str = "alice@acme.test"):
    return client.post("/api/session", {"email": email, "password": password},
                       format="json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)


def _sign_out(client: APIClient) -> None:
    response = client.delete("/api/session",
                             HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 204


def test_thirty_wrong_passwords_then_the_right_one_is_not_accepted_at_once(alice, clock):
    client = _browser()
    codes = [_sign_in(client, f"wrong-{n}").status_code for n in range(30)]

    right = _sign_in(client, PASSWORD)

    assert codes[:6] == [400] * 6  # five free failures, and the sixth starts the delay
    assert set(codes[6:]) == {429}
    assert right.status_code == 429
    assert int(right["Retry-After"]) >= 1
    assert right.json() == {"detail": "too many failed sign-ins; try again in 1 second"}
    assert client.get("/api/session").json()["authenticated"] is False
    # Once the delay has passed, the right password works (no permanent lock-out).
    clock.advance(int(right["Retry-After"]))
    assert _sign_in(client, PASSWORD).status_code == 200


@override_settings(SIGNIN_MAX_DELAY_SECONDS=16)
def test_the_delay_doubles_with_each_failure_up_to_the_maximum(alice, clock):
    client = _browser()
    for n in range(5):
        assert _sign_in(client, f"wrong-{n}").status_code == 400
    delays = []
    for n in range(7):
        assert _sign_in(client, f"late-{n}").status_code == 400  # allowed, and counted
        refused = _sign_in(client, f"early-{n}")  # at once: must wait
        assert refused.status_code == 429
        delays.append(int(refused["Retry-After"]))
        clock.advance(delays[-1])
    assert delays == [1, 2, 4, 8, 16, 16, 16]


def test_a_right_password_clears_the_account_counter(alice, clock):
    client = _browser()
    for n in range(5):
        _sign_in(client, f"wrong-{n}")
    assert _sign_in(client, PASSWORD).status_code == 200
    other = _browser("198.51.100.1")
    for n in range(5):  # five free failures again: the counter started over
        assert _sign_in(other, f"wrong-{n}").status_code == 400


def test_an_unknown_account_is_throttled_like_a_real_one(alice, clock):
    for email in ("alice@acme.test", "nobody@acme.test"):
        client = _browser(f"192.0.2.{len(email)}")
        codes = [_sign_in(client, "guess", email=email).status_code for _ in range(8)]
        assert codes == [400] * 6 + [429] * 2, email


def test_one_address_spraying_many_accounts_is_throttled(alice, clock):
    client = _browser("203.0.113.50")
    codes = [_sign_in(client, "Summer2026!", email=f"user{n}@acme.test").status_code
             for n in range(22)]

    assert codes[:21] == [400] * 21  # twenty free failures per address, the next one counts
    assert codes[21] == 429
    # Another address is not slowed down by it.
    assert _sign_in(_browser("203.0.113.51"), PASSWORD).status_code == 200
    # Signing in to one's own account does not wipe the address's failures: the next
    # wrong guess from there starts a delay again.
    clock.advance(int(_sign_in(client, PASSWORD)["Retry-After"]))
    assert _sign_in(client, PASSWORD).status_code == 200
    clock.advance(int(_sign_in(client, "Autumn2026!", email="u@acme.test")["Retry-After"]))
    assert _sign_in(client, "Winter2026!", email="user99@acme.test").status_code == 400
    assert _sign_in(client, "Spring2026!", email="user98@acme.test").status_code == 429


def test_ipv6_addresses_are_counted_by_their_64_bit_prefix(alice, clock):
    for n in range(21):
        _sign_in(_browser(f"2001:db8:1:2::{n + 1:x}"), "guess", email=f"u{n}@acme.test")
    same_prefix = _sign_in(_browser("2001:db8:1:2:ffff::1"), "guess", email="x@acme.test")
    other_prefix = _sign_in(_browser("2001:db8:1:3::1"), "guess", email="y@acme.test")
    assert same_prefix.status_code == 429 and other_prefix.status_code == 400


def test_an_attacker_cannot_keep_the_owner_out_of_a_browser_that_signed_in_before(alice,
                                                                                  clock):
    owner = _browser("198.51.100.20")
    assert _sign_in(owner, PASSWORD).status_code == 200
    assert signin.DEVICE_COOKIE in owner.cookies
    _sign_out(owner)
    attacker = _browser("203.0.113.66")
    for n in range(30):
        _sign_in(attacker, f"wrong-{n}")
    assert _sign_in(attacker, PASSWORD).status_code == 429  # the account is slowed down

    back = _sign_in(owner, PASSWORD)  # but not for the device the owner used before

    assert back.status_code == 200, back.json()


def test_a_device_cookie_counts_only_for_the_account_it_was_given_for(alice, clock):
    owner = _browser("198.51.100.20")
    _sign_in(owner, PASSWORD)
    attacker = _browser("203.0.113.66")
    attacker.cookies[signin.DEVICE_COOKIE] = owner.cookies[signin.DEVICE_COOKIE].value
    attacker.cookies[signin.DEVICE_COOKIE]["path"] = "/api/session"
    for n in range(6):
        _sign_in(attacker, f"wrong-{n}", email="owner@acme.test")
    # owner@acme.test's own counters apply, not alice's device: it is slowed down.
    assert _sign_in(attacker, "wrong", email="owner@acme.test").status_code == 429


def test_a_known_device_is_throttled_on_its_own(alice, clock):
    owner = _browser()
    _sign_in(owner, PASSWORD)
    _sign_out(owner)
    codes = [_sign_in(owner, f"wrong-{n}").status_code for n in range(8)]
    assert codes == [400] * 6 + [429] * 2


def test_parallel_guesses_are_all_counted(alice, clock):
    attempt = signin.Attempt(keys=["potluck:signin:account:parallel"], free=[5],
                             account_key="potluck:signin:account:parallel", address_key=None,
                             device_key=None)
    allowed: list[bool] = []
    lock = threading.Lock()

    def guess() -> None:
        try:
            signin._count(attempt)
            ok = True
        except signin.SignInThrottled:
            ok = False
        with lock:
            allowed.append(ok)

    threads = [threading.Thread(target=guess) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 6 and allowed.count(False) == 34


def test_the_operator_lifts_a_delay_at_once(alice, clock, live_env):
    client = _browser()
    for n in range(10):
        _sign_in(client, f"wrong-{n}")
    assert _sign_in(client, PASSWORD).status_code == 429

    done = subprocess.run([sys.executable, "-m", "potluck", "users", "unlock",
                           "alice@acme.test"], env=live_env, capture_output=True, text=True,
                          timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    assert "failed sign-ins of alice@acme.test forgotten" in done.stdout
    assert _sign_in(_browser("198.51.100.9"), PASSWORD).status_code == 200
