"""openstack-rca: root-cause analysis for OpenStack logs.

The core library runs in one direction: parse -> score -> retrieve -> diagnose -> narrate.
Shells (CLI, BentoML service, dashboard) only call into it.
"""

__version__ = "0.1.0"
