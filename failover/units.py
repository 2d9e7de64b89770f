"""How quantities are written for people."""

from __future__ import annotations

__all__ = ["human_size"]


def human_size(n: float) -> str:
    """``12647478`` -> ``12.1 MiB`` (binary units; whole bytes below 1 KiB)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
