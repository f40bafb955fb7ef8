"""Progress events shared by the advice generators."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdviceProgress:
    """One step of a long advice measurement: `stage` names the phase ("features", "probe")."""

    stage: str
    done: int
    total: int  # 0 when the total is unknown

    def to_dict(self) -> dict[str, object]:
        """The JSON form (for logs and the GUI)."""
        return {"event": "advice_progress", "stage": self.stage, "done": self.done,
                "total": self.total}
