# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The price book: a usage record is priced by the version in force at its own time, in
the time-of-day window it fell in (DeepSeek's 2025 and 2026 schemes, a window across
midnight, a window across a DST change), with an organization's override and an
adapter at its base model's price; amounts are exact Decimals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from potluck_enterprise.billing import pricebook
from potluck_enterprise.billing.pricebook import BOOK, PriceBookError, price_usage

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window_of(model: str, moment: datetime) -> tuple[str, Decimal]:
    book = BOOK.refresh()
    version = book.version_at(moment)
    return version.window_at(moment, model)


@pytest.fixture
def deepseek_books(db, settings):
    settings.BILLING_CURRENCY = "USD"
    # 2025: off-peak UTC 16:30-00:30 every day, V3 50 % off and R1 75 % off.
    pricebook.create_version({
        "effective_from": "2025-02-26T00:00:00Z", "time_zone": "UTC",
        "windows": [{"name": "off-peak", "days": "all", "start": "16:30", "end": "00:30",
                     "multiplier": "0.5", "models": {"deepseek-reasoner": "0.25"}}],
        "default_window": "standard",
        "models": {"deepseek-chat": {"input": "0.27", "cached_input": "0.07",
                                     "output": "1.10"},
                   "deepseek-reasoner": {"input": "0.55", "cached_input": "0.14",
                                         "output": "2.19"}}})
    # 2026 (from 08-16): peak 01-04 and 06-10 UTC on weekdays, off-peak is half price.
    pricebook.create_version({
        "effective_from": "2026-08-16T00:00:00Z", "time_zone": "UTC",
        "default_window": "off-peak", "default_multiplier": "0.5",
        "windows": [{"name": "peak", "days": WEEKDAYS, "start": "01:00", "end": "04:00",
                     "multiplier": "1"},
                    {"name": "peak", "days": WEEKDAYS, "start": "06:00", "end": "10:00",
                     "multiplier": "1"}],
        "models": {"deepseek-chat": {"input": "0.28", "cached_input": "0.028",
                                     "output": "0.42"}}})


def test_deepseek_2025_night_discount_crosses_midnight(deepseek_books):
    # 2025-03-05 is a Wednesday.
    assert window_of("deepseek-chat", utc(2025, 3, 5, 16, 29)) == ("standard", Decimal(1))
    assert window_of("deepseek-chat", utc(2025, 3, 5, 16, 30)) == ("off-peak", Decimal("0.5"))
    assert window_of("deepseek-chat", utc(2025, 3, 5, 23, 59)) == ("off-peak", Decimal("0.5"))
    # After midnight the window still runs (it began the day before) until 00:30.
    assert window_of("deepseek-chat", utc(2025, 3, 6, 0, 29)) == ("off-peak", Decimal("0.5"))
    assert window_of("deepseek-chat", utc(2025, 3, 6, 0, 30)) == ("standard", Decimal(1))
    assert window_of("deepseek-reasoner", utc(2025, 3, 6, 0, 10)) == \
        ("off-peak", Decimal("0.25"))


def test_deepseek_2026_peak_on_weekdays_only(deepseek_books):
    # 2026-11-02 is a Monday, 2026-11-07 a Saturday.
    assert window_of("deepseek-chat", utc(2026, 11, 2, 0, 59))[0] == "off-peak"
    assert window_of("deepseek-chat", utc(2026, 11, 2, 1, 0)) == ("peak", Decimal(1))
    assert window_of("deepseek-chat", utc(2026, 11, 2, 4, 0)) == ("off-peak", Decimal("0.5"))
    assert window_of("deepseek-chat", utc(2026, 11, 2, 9, 59))[0] == "peak"
    assert window_of("deepseek-chat", utc(2026, 11, 7, 2, 0)) == ("off-peak", Decimal("0.5"))


def test_each_record_is_priced_by_the_version_of_its_own_time(deepseek_books):
    book = BOOK.refresh()
    old = price_usage(book, "org", "deepseek-chat", utc(2026, 8, 15, 12, 0),
                      prompt_tokens=1_000_000, completion_tokens=1_000_000)
    new = price_usage(book, "org", "deepseek-chat", utc(2026, 8, 17, 2, 0),  # Monday, peak
                      prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert {d.kind: d.amount for d in old} == {"input": Decimal("0.27"),
                                               "output": Decimal("1.10")}
    assert {d.kind: d.amount for d in new} == {"input": Decimal("0.28"),
                                               "output": Decimal("0.42")}
    assert old[0].version_id != new[0].version_id
    # deepseek-reasoner has no price in the 2026 version: no lines.
    assert price_usage(book, "org", "deepseek-reasoner", utc(2026, 9, 1, 2, 0),
                       prompt_tokens=10) == []


def test_amounts_are_exact_decimals_with_cached_tokens_and_windows(deepseek_books):
    book = BOOK.refresh()
    # 2025 off-peak, R1: 75 % off; 7 prompt tokens of which 3 cached, 11 output tokens.
    drafts = {d.kind: d for d in price_usage(
        book, "org", "deepseek-reasoner", utc(2025, 3, 5, 20, 0), prompt_tokens=7,
        cached_tokens=3, completion_tokens=11)}
    assert drafts["input"].quantity == 4
    assert drafts["input"].amount == Decimal("4") * Decimal("0.55") * Decimal("0.25") / 10**6
    assert drafts["cached_input"].amount == Decimal("0.000000105")  # 3 x 0.14 x 0.25 / 1M
    assert drafts["output"].amount == Decimal("0.00000602250")  # 11 x 2.19 x 0.25 / 1M
    assert drafts["output"].list_amount == Decimal("0.00002409")
    assert all(isinstance(d.amount, Decimal) for d in drafts.values())


def test_a_window_across_a_dst_change_follows_the_wall_clock(db, settings):
    # Berlin, night tariff 22:00-06:00 local. On 2026-03-29 clocks jump 02:00 -> 03:00
    # (CET -> CEST); on 2026-10-25 they fall back 03:00 -> 02:00.
    pricebook.create_version({
        "effective_from": "2026-01-01T00:00:00Z", "time_zone": "Europe/Berlin",
        "windows": [{"name": "night", "days": "all", "start": "22:00", "end": "06:00",
                     "multiplier": "0.6"}],
        "models": {"m": {"input": "1", "output": "1"}}})
    berlin = ZoneInfo("Europe/Berlin")
    # Spring: the night of 28/29 March ends at 06:00 CEST = 04:00 UTC (7 h of night).
    assert window_of("m", utc(2026, 3, 28, 20, 59))[0] == "standard"  # 21:59 CET
    assert window_of("m", utc(2026, 3, 28, 21, 0))[0] == "night"  # 22:00 CET
    assert window_of("m", utc(2026, 3, 29, 3, 59))[0] == "night"  # 05:59 CEST
    assert window_of("m", utc(2026, 3, 29, 4, 0))[0] == "standard"  # 06:00 CEST
    # Autumn: the night of 24/25 October runs 22:00 CEST (20:00 UTC) to 06:00 CET
    # (05:00 UTC): 9 hours, and 02:30 happens twice, both at night.
    assert window_of("m", utc(2026, 10, 24, 19, 59))[0] == "standard"
    assert window_of("m", utc(2026, 10, 24, 20, 0))[0] == "night"
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=0)
    second = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=1)
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    assert window_of("m", first.astimezone(UTC))[0] == "night"
    assert window_of("m", second.astimezone(UTC))[0] == "night"
    assert window_of("m", utc(2026, 10, 25, 4, 59))[0] == "night"  # 05:59 CET
    assert window_of("m", utc(2026, 10, 25, 5, 0))[0] == "standard"  # 06:00 CET


def test_overrides_and_adapters(db, org, other_org):
    from potluck.registry.models import Kind, RegisteredModel, Source

    pricebook.create_version({"effective_from": "2026-01-01T00:00:00Z",
                              "models": {"base": {"input": "2", "output": "4"}}})
    base = RegisteredModel.objects.create(name="base", source=Source.HUGGINGFACE,
                                          repo_id="t/base")
    RegisteredModel.objects.create(name="ft:base:acme:owl:1", source=Source.HUGGINGFACE,
                                   repo_id="t/ft", base=base, organization=org,
                                   kind=Kind.ADAPTER)
    pricebook.create_override(org, {"discount": "0.25",
                                    "effective_from": "2026-06-01T00:00:00Z"})
    pricebook.create_override(org, {"model": "base", "output": "3",
                                    "effective_from": "2026-07-01T00:00:00Z"})
    book = BOOK.refresh()

    def out(org_id: str, model: str, moment: datetime) -> Decimal:
        drafts = price_usage(book, org_id, model, moment, completion_tokens=1_000_000)
        return drafts[0].amount

    assert out(str(org.pk), "ft:base:acme:owl:1", utc(2026, 5, 1)) == Decimal(4)  # base price
    assert out(str(org.pk), "base", utc(2026, 6, 15)) == Decimal(3)  # 25 % off
    assert out(str(org.pk), "base", utc(2026, 7, 15)) == Decimal(3)  # custom price, no discount
    assert out(str(other_org.pk), "base", utc(2026, 7, 15)) == Decimal(4)  # not theirs
    line = price_usage(book, str(org.pk), "ft:base:acme:owl:1", utc(2026, 5, 1),
                       prompt_tokens=5)[0]
    assert line.priced_model == "base"


@pytest.mark.parametrize(("book", "field"), [
    ({"models": {"m": {"input": 0.1, "output": "1"}}}, "models.m.input"),  # a float
    ({"models": {"m": {"input": "0.0000001", "output": "1"}}}, "models.m.input"),
    ({"models": {"m": {"output": "1"}}}, "models.m.input"),
    ({"currency": "EUR", "models": {"m": {"input": "1", "output": "1"}}}, "currency"),
    ({"time_zone": "Mars/Olympus", "models": {"m": {"input": "1", "output": "1"}}},
     "time_zone"),
    ({"windows": [{"name": "w", "days": ["funday"], "start": "01:00", "end": "02:00"}],
      "models": {"m": {"input": "1", "output": "1"}}}, "windows[0].days"),
    ({"windows": [{"name": "w", "days": "all", "start": "25:00", "end": "02:00"}],
      "models": {"m": {"input": "1", "output": "1"}}}, "windows[0].start"),
])
def test_a_bad_book_is_refused_naming_the_field_and_writes_nothing(db, settings, book, field):
    from potluck_enterprise.billing.models import PriceVersion

    settings.BILLING_CURRENCY = "USD"
    with pytest.raises(PriceBookError) as caught:
        pricebook.create_version({"effective_from": "2026-01-01T00:00:00Z", **book})
    assert caught.value.field == field
    assert not PriceVersion.objects.exists()
