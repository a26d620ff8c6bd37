"""Knowledge bases: :class:`~finesift.kb.knowledge_base.KnowledgeBase` (create, open, add, search, delete)."""
