"""Recurring tasks: the rules the API allows, time zones, next occurrences.

Occurrences come from dateutil's ``rrule``, computed in the task's IANA time
zone (``zoneinfo``, with the ``tzdata`` package when the system has no zone
database), so a task due at 09:00 local time stays at 09:00 across DST
changes. This module only checks that a rule stays within the subset
docs/api.md allows ("Recurring tasks") and asks dateutil for the next
occurrence; the rule's start (RFC 5545's DTSTART) is the task's own ``due_at``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr
from marshmallow import ValidationError

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "WKST")
WEEKDAY = "(MO|TU|WE|TH|FR|SA|SU)"
BYDAY_ITEM = re.compile(rf"([+-]?[0-9]{{1,2}})?{WEEKDAY}", re.ASCII)
SIGNED_NUMBER = re.compile(r"[+-]?[0-9]{1,2}", re.ASCII)
UNTIL_UTC = re.compile(r"[0-9]{8}T[0-9]{6}Z", re.ASCII)
# BYDAY=+2MO: the second Monday of the month (at most 5) or of the year (at most 53).
ORDINAL_LIMITS = {"DAILY": None, "WEEKLY": None, "MONTHLY": 5, "YEARLY": 53}
# A rule whose next occurrence is further away than this has none, as far as the
# API is concerned (FREQ=YEARLY;INTERVAL=366 looks twice its interval ahead).
HORIZON_YEARS = 100
DAYS_PER_GREGORIAN_CYCLE = 146_097  # 400 years, a whole number of weeks
# The parts that rrule evaluates in wall clock time.
WALL_CLOCK = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "WKST")


@cache
def known_time_zones() -> frozenset[str]:
    """The zone names of the pinned tzdata package: the same on every machine."""
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split())


def check_time_zone(name: str) -> None:
    if name not in known_time_zones():
        raise ValidationError("Not a known IANA time zone name (e.g. Europe/Berlin).")


def check_rule(rule: str) -> None:
    """Raise ValidationError unless ``rule`` is a well-formed rule in the allowed subset."""
    rule_parts(rule)


def rule_parts(rule: str) -> dict[str, str]:
    """The rule's parts by upper-cased name and value; ValidationError for any other rule."""
    parts = split_rule(rule)
    if parts.get("FREQ") not in FREQUENCIES:
        raise ValidationError(f"FREQ is required: one of {', '.join(FREQUENCIES)}.")
    for name, check in PART_CHECKS.items():
        if name in parts:
            check(parts)
    return parts


def split_rule(rule: str) -> dict[str, str]:
    """``NAME=VALUE;...`` as a dict, each name a supported part given once."""
    if rule[:6].upper() == "RRULE:":
        raise ValidationError("Leave out the RRULE: prefix (e.g. FREQ=WEEKLY;BYDAY=MO).")
    if not rule.isascii():  # a dotless i upper-cases to I: it must not pass for DAILY
        raise ValidationError("A rule is ASCII only (e.g. FREQ=WEEKLY;BYDAY=MO).")
    parts: dict[str, str] = {}
    for part in rule.split(";"):
        name, equals, value = part.partition("=")
        name, value = name.upper(), value.upper()
        if not equals or not name or not value:
            raise ValidationError(f"Malformed rule part {part!r}: use NAME=VALUE parts.")
        if name not in PARTS:
            raise ValidationError(f"{name} is not supported; use {', '.join(PARTS)}.")
        if name in parts:
            raise ValidationError(f"{name} is given twice.")
        parts[name] = value
    return parts


def check_interval(parts: dict) -> None:
    check_number(parts, "INTERVAL", 1, 366)


def check_count(parts: dict) -> None:
    check_number(parts, "COUNT", 1, 1000)


def check_until(parts: dict) -> None:
    if "COUNT" in parts:
        raise ValidationError("Give COUNT or UNTIL, not both.")
    until_of(parts)


def check_byday(parts: dict) -> None:
    for item in values_of(parts, "BYDAY"):
        match = BYDAY_ITEM.fullmatch(item)
        if not match:
            raise ValidationError(
                f"BYDAY takes weekdays (MO to SU), e.g. MO,WE or -1FR; not {item}."
            )
        if match.group(1) is not None:
            check_byday_ordinal(int(match.group(1)), parts)


def check_byday_ordinal(ordinal: int, parts: dict) -> None:
    """The number in ``+2MO``: which such weekday of the month, or of the year."""
    limit = ORDINAL_LIMITS[parts["FREQ"]]
    if limit is None:
        raise ValidationError("BYDAY with a number (e.g. 1MO) needs FREQ=MONTHLY or YEARLY.")
    if "BYMONTH" in parts:  # RFC 5545 then counts the weekday within the month
        limit = ORDINAL_LIMITS["MONTHLY"]
    if not 1 <= abs(ordinal) <= limit:
        raise ValidationError(f"The number in BYDAY must be 1 to {limit} or -{limit} to -1.")


def check_bymonthday(parts: dict) -> None:
    month_days(parts)
    if parts["FREQ"] == "WEEKLY":
        raise ValidationError("BYMONTHDAY cannot be used with FREQ=WEEKLY.")


def check_bymonth(parts: dict) -> None:
    months = [number_in(item, "BYMONTH", 12, signed=False) for item in values_of(parts, "BYMONTH")]
    # Every day in BYMONTHDAY fits some month of the year: only BYMONTH can rule them all out.
    days = month_days(parts)
    if days and not any(abs(day) <= longest_month(month) for day in days for month in months):
        raise ValidationError("No month has the days in BYMONTHDAY: the rule never occurs.")


def check_wkst(parts: dict) -> None:
    if not re.fullmatch(WEEKDAY, parts["WKST"]):
        raise ValidationError("WKST is a weekday: MO to SU.")


# Each part's check, in the order they are made (FREQ, required, is checked first).
PART_CHECKS = {
    "INTERVAL": check_interval,
    "COUNT": check_count,
    "UNTIL": check_until,
    "BYDAY": check_byday,
    "BYMONTHDAY": check_bymonthday,
    "BYMONTH": check_bymonth,
    "WKST": check_wkst,
}


def month_days(parts: dict) -> list[int]:
    return [number_in(item, "BYMONTHDAY", 31) for item in values_of(parts, "BYMONTHDAY")]


def check_number(parts: dict, name: str, low: int, high: int) -> None:
    value = parts.get(name)
    if value is not None and not (
        value.isascii() and value.isdigit() and low <= int(value) <= high
    ):
        raise ValidationError(f"{name} must be a whole number from {low} to {high}.")


def values_of(parts: dict, name: str) -> list[str]:
    return parts[name].split(",") if name in parts else []


def number_in(item: str, name: str, limit: int, *, signed: bool = True) -> int:
    if (
        SIGNED_NUMBER.fullmatch(item)
        and (signed or item.isdigit())
        and 1 <= abs(int(item)) <= limit
    ):
        return int(item)
    span = f"1 to {limit}" + (f" or -{limit} to -1" if signed else "")
    raise ValidationError(f"{name} takes numbers from {span}; not {item}.")


def longest_month(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def until_of(parts: dict) -> datetime | None:
    value = parts.get("UNTIL")
    if value is None:
        return None
    try:
        if not UNTIL_UTC.fullmatch(value):
            raise ValueError(value)
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationError("UNTIL is a UTC time like 20270131T000000Z.") from None


def next_due_at(task: Mapping) -> datetime | None:
    """When the task's next occurrence is due (UTC), or None when its series has ended.

    The rule starts at the task's ``due_at`` (RFC 5545 DTSTART), read as wall
    clock time in the task's zone, and the next occurrence is the rule's first
    one strictly after it. ``COUNT`` counts the whole series: the task's
    ``occurrence`` is its place in it. An occurrence more than the horizon
    away counts as none.
    """
    parts = rule_parts(task["recurrence"])
    if "COUNT" in parts and task["occurrence"] >= int(parts["COUNT"]):
        return None
    zone = ZoneInfo(task["time_zone"] or "UTC")
    try:
        start = task["due_at"].astimezone(zone).replace(tzinfo=None)
        limit = start + relativedelta(years=horizon_years(parts))
        # dateutil looks for a match until year 9999, however long that takes (a
        # rule like FREQ=DAILY;INTERVAL=7;BYDAY=TU from a Monday never matches).
        # Moved by whole 400-year Gregorian cycles (same weekdays, same leap
        # years), the search starts at most 400 years before it gives up.
        cycles = max(0, (datetime.max.year - limit.year) // 400)
        shift = timedelta(days=DAYS_PER_GREGORIAN_CYCLE * cycles)
        # COUNT is the series' (above), UNTIL an instant (below): the rest is wall clock.
        rule = ";".join(f"{name}={value}" for name, value in parts.items() if name in WALL_CLOCK)
        found = rrulestr(rule, dtstart=start + shift).after(start + shift)
        if found is None or found - shift > limit:
            return None
        found = (found - shift).replace(tzinfo=zone)
    except (OverflowError, ValueError, IndexError):
        # Near the ends of the calendar (years 1 and 9999), or a combination
        # dateutil cannot expand: as far as the API is concerned, no occurrence.
        return None
    until = until_of(parts)
    if until is not None and found > until:
        return None
    # rrule works in whole seconds; the series keeps the fraction it started with.
    return found.replace(microsecond=start.microsecond).astimezone(UTC)


def horizon_years(parts: dict) -> int:
    if parts["FREQ"] == "YEARLY":
        return max(HORIZON_YEARS, 2 * int(parts.get("INTERVAL", 1)))
    return HORIZON_YEARS


def check_schedule(task: Mapping) -> None:
    """A recurring task needs ``due_at`` and a rule with an occurrence after it."""
    if task["recurrence"] is None:
        return
    if task["due_at"] is None:
        raise ValidationError({"due_at": ["A recurring task needs due_at (the rule's start)."]})
    if next_due_at({**task, "occurrence": 1}) is None:
        raise ValidationError(
            {"recurrence": ["The rule has no occurrence after due_at (in its time zone)."]}
        )
