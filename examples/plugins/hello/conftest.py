"""Make ``crm2_hello`` importable when this folder's tests run from the crm2 checkout.

A plugin of your own is ``pip install -e``'d instead and needs no such file.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
