"""Write tests/fixtures/tokenizer_ids.json: the ids the official Qwen3 tokenizer gives a few hard texts.

Run once, by hand, against the official ``tokenizer.json`` of Qwen3-Embedding (with the ``tokenizers``
package directly, not finesift's rebuild); the test ``tests/unit/test_tokenizer_fixture.py`` then holds
finesift's tokenizer to these ids without needing the official file::

    python scripts/gen_tokenizer_fixture.py /path/to/Qwen3-Embedding-0.6B/tokenizer.json

The texts cover what a wrong merge or pre-tokenizer would break first: Chinese, code, mixed scripts,
emoji (4-byte UTF-8), full-width punctuation, long digit runs (Qwen splits digits one by one),
whitespace runs and newlines, and the chat markers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tokenizer_ids.json"

TEXTS: dict[str, str] = {
    "chinese": "如何优化数据库查询性能？向量检索使用嵌入模型把文本映射为向量。",
    "chinese_classical": "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？",
    "traditional": "機器學習與資料庫索引的關係",
    "japanese_korean": "東京は日本の首都です。서울은 한국의 수도입니다.",
    "code_python": "def cosine(a, b):\n    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))\n",
    "code_sql": "SELECT title, score FROM documents WHERE score > 0.5 ORDER BY score DESC LIMIT 10;",
    "code_js": "const fuse = (a, b) => [...new Set([...a, ...b])].sort((x, y) => rank(y) - rank(x));",
    "identifiers": "camelCaseName snake_case_name HTTPServerError __init__ getUserByID",
    "mixed": "用 Python 的 sorted(items) 排序列表，或者 items.sort() 原地排序 (O(n log n))。",
    "mixed_markdown": "## 安装\n\n```bash\npip install 'finesift[kb]'\n```\n\n- 支持 PDF、DOCX 和 HTML\n",
    "emoji": "检索很快 🚀🚀 but 😀 and 👩‍💻 (ZWJ) ✅ 🇨🇳",
    "fullwidth": "全角标点：“引号”、《书名》、【括号】；问号？感叹号！ＡＢＣ１２３",
    "numbers": "3.14159265358979 12345678901234567890 2026-11-30 1,234,567.89 0x7fffffff",
    "whitespace": "a  b   c\t\td\n\n\ne    \n  f",
    "chat_markers": (
        "<|im_start|>user\nIs BM25 lexical?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    ),
    "english": "Hybrid retrieval combines BM25 with dense vectors; don't you think it's better?",
}


def compact(fixture: dict) -> str:
    """JSON with one line per case (id lists inline): small, and a diff shows which text changed."""
    cases = fixture["cases"]
    head = {k: v for k, v in fixture.items() if k != "cases"}
    lines = [f"  {json.dumps(name)}: {json.dumps(case, ensure_ascii=False)}" for name, case in cases.items()]
    body = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    return body + ',\n "cases": {\n' + ",\n".join(lines) + "\n }\n}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokenizer_json", type=Path, help="the official tokenizer.json of Qwen3-Embedding")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(args.tokenizer_json))
    raw = args.tokenizer_json.read_bytes()
    fixture = {
        "source": {
            "file": "Qwen3-Embedding-0.6B/tokenizer.json",
            "bytes": len(raw),
            "git_blob_sha1": hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest(),
            "sha256": hashlib.sha256(raw).hexdigest(),
        },
        "vocab_size": tok.get_vocab_size(),
        "cases": {
            name: {
                "text": text,
                "ids": tok.encode(text, add_special_tokens=False).ids,
                "ids_with_eos": tok.encode(text).ids,
            }
            for name, text in TEXTS.items()
        },
    }
    args.out.write_text(compact(fixture) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(TEXTS)} texts)")


if __name__ == "__main__":
    main()
