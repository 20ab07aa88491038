"""retrieve: sentence-transformer embeddings of log templates in Chroma, for the semantic signal."""

from .embeddings import Embedder, EmbeddingUnavailable
from .index import RetrievalUnavailable, SemanticIndex, collection_name, connect

__all__ = ["Embedder", "EmbeddingUnavailable", "RetrievalUnavailable", "SemanticIndex", "collection_name",
           "connect"]
