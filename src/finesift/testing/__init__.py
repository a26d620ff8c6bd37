"""Test doubles shipped with finesift: the real Qwen3 tokenizer rebuilt offline, tiny random Qwen3
models saved like real checkpoints, and plain re-implementations of the model-card reference code.

Used by finesift's own tests and benchmarks, and available to users testing code built on finesift.
"""
