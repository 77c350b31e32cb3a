"""``python -m treadle``: the same command as ``treadle``."""

from treadle.cli import main

raise SystemExit(main())
