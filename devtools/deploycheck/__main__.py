"""``python -m devtools.deploycheck``: see the package's docstring."""

from __future__ import annotations

import sys

from .command import main

sys.exit(main())
