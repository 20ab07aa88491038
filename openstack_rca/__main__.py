"""``python -m openstack_rca`` is ``rca``."""

from .cli import main

raise SystemExit(main())
