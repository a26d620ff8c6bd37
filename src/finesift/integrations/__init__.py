"""Framework integrations: each module is imported only when used (``import finesift`` loads none).

- :mod:`finesift.integrations.langchain`: ``FinesiftEmbeddings``, ``FinesiftRerank`` (a document
  compressor) and ``FinesiftRetriever``; needs ``finesift[langchain]``.
- :mod:`finesift.integrations.llamaindex`: ``FinesiftEmbedding``, ``FinesiftRerank`` (a node
  postprocessor) and ``FinesiftRetriever``; needs ``finesift[llamaindex]``.

Every class takes a finesift object (``Embedder``, ``Reranker``, ``KnowledgeBase``), run in this
process, or the URL of a running ``finesift serve``.
"""
