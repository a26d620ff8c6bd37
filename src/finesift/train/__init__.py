"""Adapt the models to a corpus: synthesize query–passage pairs, fine-tune, merge (issue 15).

Nothing is imported here: each module pulls in what it needs (torch only in the training modules).
"""
