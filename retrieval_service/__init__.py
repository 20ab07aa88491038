"""retrieval_service: the Chroma deployment that holds the template embeddings in server mode.

The open-source Chroma 1.x server has no authentication of its own; this package runs ``chroma run`` behind a
small token-checking reverse proxy, so clients configured with ``CHROMA_TOKEN`` (sent as a bearer token) reach it
and nothing else does. The embedding and query code lives in ``openstack_rca.retrieve``; this is the server side.
"""

from .auth_proxy import TokenProxy

__all__ = ["TokenProxy"]
