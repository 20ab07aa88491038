"""retrieve: sentence-transformer embeddings of log templates (ONNX Runtime, cached per machine), the issue's
similarity to them, and Chroma for ingested corpora and semantic search."""

from .embeddings import Embedder, EmbeddingUnavailable
from .index import RetrievalUnavailable, SemanticIndex, collection_name, connect, template_texts
from .similarity import Similarity

__all__ = ["Embedder", "EmbeddingUnavailable", "RetrievalUnavailable", "SemanticIndex", "Similarity",
           "collection_name", "connect", "template_texts"]
