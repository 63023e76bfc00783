"""Which data each worker sees (docs/spec.md §8.4)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar


@dataclasses.dataclass(frozen=True)
class GlobalData:
  """One global data stream for every worker (docs/spec.md §1; the default)."""

  is_default: ClassVar[bool] = True


PLACEMENTS = {"global": GlobalData}
