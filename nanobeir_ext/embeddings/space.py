"""Will the store fit? A forecast of the disk the rest of a run's encoding needs.

Token vectors per character depend on the tokenizer, the language and the role (queries are
expanded to a fixed length), so the forecast is learned as the run goes: after each stored
embedding set, bytes per character of that role times the characters still to encode in that
role. A real-size 9-language run of one ColBERT model writes tens of gigabytes; the warning
comes after the first document set instead of when the disk fills hours later (a run stopped by
a full disk still resumes from every finished set).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nanobeir_ext.protocol import PLURAL, Role

GB = 1e9


@dataclass
class SpaceForecast:
    root: Path
    remaining_chars: dict[Role, int]  # characters of the sets not yet in the store, per role
    free_bytes: Callable[[Path], int] = lambda root: shutil.disk_usage(root).free
    written_bytes: dict[Role, int] = field(default_factory=dict)
    encoded_chars: dict[Role, int] = field(default_factory=dict)
    warned: bool = False

    def needed_bytes(self) -> float:
        """Projected bytes still to write, from the roles seen so far (0 for a role not yet seen)."""
        return sum(self.written_bytes[role] / self.encoded_chars[role] * max(0, self.remaining_chars.get(role, 0))
                   for role in self.written_bytes if self.encoded_chars[role] > 0)

    def record(self, role: Role, chars: int, written: int) -> str | None:
        """Count one stored set; the warning text the first time the projection exceeds the free disk."""
        self.remaining_chars[role] = self.remaining_chars.get(role, 0) - chars
        self.written_bytes[role] = self.written_bytes.get(role, 0) + written
        self.encoded_chars[role] = self.encoded_chars.get(role, 0) + chars
        needed = self.needed_bytes()
        if self.warned or needed <= 0:
            return None
        free = self.free_bytes(self.root)
        if needed <= free:
            return None
        self.warned = True
        seen = ", ".join(f"{self.written_bytes[r] / max(1, self.encoded_chars[r]):.0f} bytes per character of "
                         f"{PLURAL[r]}" for r in self.written_bytes)
        return (f"DISK: the embedding store needs about {needed / GB:.1f} GB more for the sets still to encode "
                f"(projected from those written so far: {seen}), but only {free / GB:.1f} GB are free under "
                f"{self.root}. Free space or set runtime.cache_dir to a larger disk; a run stopped by a full disk "
                "resumes from every finished set.")
