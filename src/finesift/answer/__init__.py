"""Cited answers: retrieve from a knowledge base, then answer through an OpenAI-compatible chat model.

``prompt`` assembles the messages (passages delimited as data, numbered, within a token budget),
``llm`` talks to the chat endpoint (streaming, timeouts, retries), ``service`` ties them to a KB and
refuses when no passage is relevant enough.
"""
