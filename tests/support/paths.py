"""Where the tests find the project's fixtures and the shared material (``../shared`` or ``$PYOCI_SHARED``)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
SHARED = Path(os.environ.get("PYOCI_SHARED") or ROOT.parent / "shared")
SAMPLES = SHARED / "samples"
SCHEMAS = SHARED / "oci-schemas"
