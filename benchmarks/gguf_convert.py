"""Seconds and bytes of ``finesift gguf convert`` per type on the tiny test model; prints JSON.

    python benchmarks/gguf_convert.py [--kind embedding] [--types q8_0,q4_k_m] [--out DIR]

The tiny model (2 layers, hidden 64, the real 151,669-token vocabulary) is what the tests convert:
the time is mostly writing the vocabulary and merges, the same for every model size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from finesift.runtime.gguf import FILE_TYPES, convert
from finesift.testing.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", default="embedding", choices=("embedding", "reranker"))
    parser.add_argument("--types", default=",".join(FILE_TYPES))
    parser.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        model = build_model(out / f"tiny-{args.kind}", args.kind)
        rows = []
        for file_type in args.types.split(","):
            began = time.perf_counter()
            path = convert(
                model, out / f"tiny-{args.kind}.{file_type}.gguf", kind=args.kind, file_type=file_type
            )
            seconds = time.perf_counter() - began
            rows.append({"type": file_type, "seconds": round(seconds, 2), "bytes": path.stat().st_size})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "kind": args.kind, "results": rows}))


if __name__ == "__main__":
    main()
