"""Slurm-style compressed host lists: ``nid[001-004,007]``, ``a[1-2],b3``.

Pure Python so the launcher can read ``SLURM_JOB_NODELIST`` on the head
without calling ``scontrol show hostnames`` (which may not be on PATH).
"""
from __future__ import annotations

import itertools
import re
from typing import Iterable

__all__ = ["expand_hostlist", "compress_hostlist"]

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_TRAILING_NUM = re.compile(r"^(.*?)(\d+)(\D*)$")


def _split_top_level(s: str, text: str) -> list[str]:
    """Split ``s`` on commas outside brackets; check bracket balance."""
    items: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in s:
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested '[' in host list {text!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in host list {text!r}")
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced '[' in host list {text!r}")
    items.append("".join(cur))
    return items


def _expand_range_set(body: str, text: str) -> list[str]:
    """Expand the inside of one bracket group, e.g. ``001-004,007``."""
    out: list[str] = []
    for part in body.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"bad range {part!r} in host list {text!r}")
        lo_s, hi_s = m.group(1), m.group(2)
        if hi_s is None:
            out.append(lo_s)
            continue
        lo, hi = int(lo_s), int(hi_s)
        if hi < lo:
            raise ValueError(f"reversed range [{part}] in host list {text!r}")
        width = len(lo_s)  # Slurm pads to the width of the range start
        out.extend(str(i).zfill(width) for i in range(lo, hi + 1))
    return out


def _expand_item(item: str, text: str) -> list[str]:
    """Expand one top-level item: literal pieces and bracket groups."""
    pieces = re.split(r"(\[[^\]]*\])", item)
    choices: list[list[str]] = []
    for piece in pieces:
        if piece.startswith("["):
            choices.append(_expand_range_set(piece[1:-1], text))
        elif piece:
            choices.append([piece])
    return ["".join(combo) for combo in itertools.product(*choices)]


def expand_hostlist(s: str) -> list[str]:
    """Expand a Slurm compressed host list into host names, in order.

    Multiple bracket groups in one item give their cartesian product
    (``rack[1-2]-n[01-02]`` -> rack1-n01, rack1-n02, rack2-n01, ...).
    Zero padding is preserved. Raises ValueError on malformed input.
    """
    if not isinstance(s, str):
        raise ValueError(f"host list must be a string, got {s!r}")
    text = s
    # Host names never contain whitespace: drop it inside brackets, and treat
    # it as a separator between items elsewhere.
    cleaned = re.sub(r"\[[^\]]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), s)
    cleaned = ",".join(cleaned.split())
    if not cleaned.strip(","):
        raise ValueError(f"empty host list {text!r}")
    hosts: list[str] = []
    for item in _split_top_level(cleaned, text):
        if not item:
            continue  # tolerate "a,,b" and trailing commas
        hosts.extend(_expand_item(item, text))
    return hosts


def _fmt_group(prefix: str, suffix: str, width: int, nums: list[int]) -> str:
    if len(nums) == 1:
        return f"{prefix}{str(nums[0]).zfill(width)}{suffix}"
    ranges: list[str] = []
    start = prev = nums[0]
    for n in nums[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        lo, hi = str(start).zfill(width), str(prev).zfill(width)
        ranges.append(lo if start == prev else f"{lo}-{hi}")
        if n is not None:
            start = prev = n
    return f"{prefix}[{','.join(ranges)}]{suffix}"


def compress_hostlist(hosts: Iterable[str]) -> str:
    """Compress host names into a Slurm-style list, for display.

    Only adjacent hosts sharing prefix, suffix and digit width are merged, so
    ``expand_hostlist(compress_hostlist(h)) == list(h)``.
    """
    parts: list[str] = []
    key = None
    nums: list[int] = []
    for host in hosts:
        m = _TRAILING_NUM.match(host)
        if not m or "[" in host or "," in host:
            if key is not None:
                parts.append(_fmt_group(*key, nums))
                key, nums = None, []
            parts.append(host)
            continue
        k = (m.group(1), m.group(3), len(m.group(2)))
        if k != key:
            if key is not None:
                parts.append(_fmt_group(*key, nums))
            key, nums = k, []
        nums.append(int(m.group(2)))
    if key is not None:
        parts.append(_fmt_group(*key, nums))
    return ",".join(parts)
