"""``python -m experiments run CONFIG ...`` (see experiments.run)."""

from .run import main

raise SystemExit(main())
