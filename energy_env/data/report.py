"""What happened to the rows of one load: the :class:`LoadReport` (read = kept + rejected, always).

Every loader fills one: row checks (``rows.py``), resampling and gaps (``assemble.py``,
``resample.py``), plausibility warnings (``checks.py``). :meth:`LoadReport.summary` is what a
command prints; :meth:`LoadReport.to_dict` what a results file records.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from energy_env.data.redact import redact
from energy_env.data.resample import GapRange

_log = logging.getLogger(__name__)

@dataclass
class LoadReport:
    """What happened to the rows of one load: read = kept + rejected, with reasons.

    Attributes:
        source: where the rows came from (a table or file; never a credential).
        rows_read: rows received from the source after its server-side filters.
        rows_kept: rows that made it into the result.
        rejected: reason -> rows.
        examples: reason -> the first affected row, e.g. "file line 12: household h1, ...: 'abc'".
        adjusted: change -> rows kept but altered (e.g. tiny negative PV read as 0).
        expected_rows: the server's count of matching rows, when it gives one (checked = rows_read).
        resolution_minutes: the interval length of the input when every series shares one, else None;
            ``resampling`` says what was done.
        series_resolutions: series -> interval length, when the series differ; empty otherwise
            (a stated ``resolution_minutes`` applies to all; a series contradicting it is a warning).
        warnings: check -> slots or homes that failed a plausibility or consistency check; the data
            are kept unchanged (see ``energy_env/data/checks.py``). Each is logged at WARNING.
        warning_examples: check -> the first case, e.g. "household h1 at 2025-10-06 12:00: pv_kwh 1999".
        dst_merged_slots: local slots that averaged the two intervals of the fall-back hour.
        gaps: every run of missing 30-minute slots, filled or not.
        notes: anything else worth knowing (estimates, alignment).
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    adjusted: Counter = field(default_factory=Counter)
    expected_rows: int | None = None
    resolution_minutes: int | None = None
    series_resolutions: dict[str, int] = field(default_factory=dict)
    warnings: Counter = field(default_factory=Counter)
    warning_examples: dict[str, str] = field(default_factory=dict)
    resampling: str = ""
    fill_policy: str = ""
    dst_merged_slots: int = 0
    gaps: list[GapRange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        """Rows rejected, over every reason."""
        return int(sum(self.rejected.values()))

    def reject(self, reason: str, count: int, example: str | None = None) -> None:
        """Count ``count`` rows rejected for ``reason``; ``example`` (the first) is kept per reason."""
        if count <= 0:
            return
        self.rejected[reason] += int(count)
        if example is not None and reason not in self.examples:
            self.examples[reason] = example

    def warn(self, check: str, count: int, example: str | None = None) -> None:
        """Count ``count`` slots or homes failing ``check`` (data unchanged) and log it at WARNING."""
        if count <= 0:
            return
        self.warnings[check] += int(count)
        if example is not None and check not in self.warning_examples:
            self.warning_examples[check] = example
        _log.warning("%s", redact(f"{self.source}: warning {count}: {check}" + (f"; first: {example}" if example else "")))

    def check_balance(self) -> None:
        """Raise if a row went missing between read and kept + rejected (a bug, never bad data)."""
        if self.rows_read != self.rows_kept + self.rows_rejected:
            raise AssertionError(
                f"{self.source}: {self.rows_read} rows read but {self.rows_kept} kept + {self.rows_rejected} rejected"
            )

    def summary(self) -> str:
        """A few lines for a log or the terminal."""
        lines = [
            f"{self.source}: {self.rows_read} rows read, {self.rows_kept} kept, {self.rows_rejected} rejected"
            + (f" (server count {self.expected_rows})" if self.expected_rows is not None else "")
        ]
        for reason, n in self.rejected.most_common():
            ex = f"; first: {self.examples[reason]}" if reason in self.examples else ""
            lines.append(f"  rejected {n}: {reason}{ex}")
        for change, n in self.adjusted.most_common():
            lines.append(f"  adjusted {n}: {change}")
        for check, n in self.warnings.most_common():
            ex = f"; first: {self.warning_examples[check]}" if check in self.warning_examples else ""
            lines.append(f"  WARNING {n}: {check}{ex}")
        if self.series_resolutions:
            by_minutes: dict[int, list[str]] = {}
            for key, minutes in self.series_resolutions.items():
                by_minutes.setdefault(minutes, []).append(key)
            lines.append("  interval lengths per series: " + "; ".join(
                f"{m} min: {', '.join(keys[:5])}{f' (+{len(keys) - 5} more)' if len(keys) > 5 else ''}"
                for m, keys in sorted(by_minutes.items())
            ))
        if self.resampling:
            lines.append(f"  {self.resampling}")
        if self.dst_merged_slots:
            lines.append(f"  DST fall back: {self.dst_merged_slots} local slots averaged two intervals")
        filled = [g for g in self.gaps if g.filled_by]
        if self.gaps:
            lines.append(f"  gaps: {len(self.gaps)} ({len(filled)} filled; {self.fill_policy})")
            for g in self.gaps[:10]:
                lines.append(f"    {g}")
            if len(self.gaps) > 10:
                lines.append(f"    ... {len(self.gaps) - 10} more")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (gap list shortened to counts per kind plus the first 20 ranges)."""
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_rejected": self.rows_rejected,
            "rejected": dict(self.rejected),
            "examples": dict(self.examples),
            "adjusted": dict(self.adjusted),
            "expected_rows": self.expected_rows,
            "resolution_minutes": self.resolution_minutes,
            "series_resolutions": dict(self.series_resolutions),
            "warnings": dict(self.warnings),
            "warning_examples": dict(self.warning_examples),
            "resampling": self.resampling,
            "fill_policy": self.fill_policy,
            "dst_merged_slots": self.dst_merged_slots,
            "gaps": dict(Counter(f"{g.kind}, {'filled by ' + g.filled_by if g.filled_by else 'not filled'}" for g in self.gaps)),
            "first_gaps": [str(g) for g in self.gaps[:20]],
            "notes": list(self.notes),
        }
