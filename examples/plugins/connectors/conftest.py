"""Make ``crm2_connectors`` importable when this folder's tests run from the crm2 checkout.

Installed with ``pip install -e examples/plugins/connectors`` it needs no such file.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
