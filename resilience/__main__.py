"""``python -m resilience``: the lab's experiments (and the test kit's servers) from a shell.

The command line lives in :mod:`resilience.lab.cli`; it is imported here, on demand, so that
``import resilience`` never pulls in the lab or NumPy.
"""

from __future__ import annotations

import sys

from resilience.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
