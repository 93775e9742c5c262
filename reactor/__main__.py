"""``python -m reactor``: the ``reactor`` command (see :mod:`reactor.cli`)."""

from .cli import main

raise SystemExit(main())
