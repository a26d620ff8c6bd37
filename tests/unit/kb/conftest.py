from __future__ import annotations

from pathlib import Path

import pytest

from finesift.settings import Settings


@pytest.fixture
def kb_settings(tmp_path: Path) -> Settings:
    """Fake models, a private home, small commits (so several commits happen per run)."""
    pytest.importorskip("lancedb")
    return Settings(
        home=tmp_path / "home",
        embedding={"model": "fake"},
        reranker={"model": "fake"},
        kb={"commit_chunks": 4, "chunk_size": 64, "chunk_overlap": 8},
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "db.md").write_text(
        "# 数据库\n\n如何优化数据库查询？使用索引，避免全表扫描。\n\n# 缓存\n\n热点数据放在缓存里。",
        encoding="utf-8",
    )
    (root / "gbk.txt").write_bytes("连接池的大小应该根据并发量设置。".encode("gbk"))
    (root / "sub" / "code.py").write_text(
        "def getUserName(user):\n    return user.name\n\n\nclass Cache:\n"
        "    def evict(self):\n        pass\n",
        encoding="utf-8",
    )
    (root / "sub" / "page.html").write_text(
        "<h1>Deploy</h1><p>Deploy with docker compose up.</p>", encoding="utf-8"
    )
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / ".hidden.md").write_text("secret", encoding="utf-8")
    return root
