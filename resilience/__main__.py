"""``python -m resilience``: the lab's experiments and the test kit's chaos server from a shell.

``python -m resilience chaos ...`` runs the chaos server (:mod:`resilience.testing.chaos.cli`);
every other command is the lab's (:mod:`resilience.lab.cli`). Each is imported here, on
demand, so that ``import resilience`` never pulls in the lab, NumPy or the server.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``chaos`` to the chaos server's command line, anything else to the lab's."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["chaos"]:
        from resilience.testing.chaos.cli import main as chaos_main

        return chaos_main(args[1:])
    from resilience.lab.cli import main as lab_main

    return lab_main(args)


if __name__ == "__main__":
    sys.exit(main())
