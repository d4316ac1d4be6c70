"""Parsing of the memory and CPU quantities in ``limits`` and ``requests``.

Pure functions: they raise ValueError with a sentence fragment describing the accepted forms, and
the request schema turns that into a 400 naming the field.
"""

from __future__ import annotations

import re
from decimal import Decimal

# Memory suffixes are binary multiples whether written M or Mi, as Docker reads them.
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])(i)?b?|b)?", re.IGNORECASE | re.ASCII)
_MEMORY_SHIFT = {None: 0, "k": 10, "m": 20, "g": 30, "t": 40}
# Docker refuses to start a container whose memory limit is below 6 MiB.
MIN_MEMORY_LIMIT = 6 * 1024 * 1024
_CPU = re.compile(r"(\d+(?:\.\d+)?)(m)?", re.ASCII)
# Docker stores both as signed 64-bit integers.
_INT64_MAX = 2**63 - 1


def parse_memory(text: str) -> int:
    """Return bytes for ``128M``, ``128Mi``, ``1G``, ``512k`` or plain bytes such as ``1048576``.

    Raises ValueError when the text is not such a quantity or is zero.
    """
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a memory quantity such as 128M, 128Mi, 1G or 512k")
    number = Decimal(match.group(1))
    unit = match.group(2).lower() if match.group(2) else None
    size = int(number * (1 << _MEMORY_SHIFT[unit]))
    if not 0 < size <= _INT64_MAX:
        raise ValueError(f"{text!r} must be more than zero bytes and less than 8 EiB")
    return size


def parse_cpu(text: str) -> int:
    """Return nano-CPUs for cores (``0.5``, ``1``) or millicores (``500m``).

    Raises ValueError when the text is not such a quantity or is below one nano-CPU.
    """
    match = _CPU.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a CPU quantity such as 0.5, 1 or 500m")
    cores = Decimal(match.group(1)) / (1000 if match.group(2) else 1)
    nano = int(cores * 1_000_000_000)
    if not 0 < nano <= _INT64_MAX:
        raise ValueError(f"{text!r} must be more than zero CPUs and at most 9 billion")
    return nano
