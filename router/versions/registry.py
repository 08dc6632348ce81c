"""Model registry: trained versions live in the workspace with their metadata; one is active.

``<workspace>/models/<name>/version.json`` describes a version (method, base model, data set hash,
training figures, validation metrics); ``<workspace>/models/active.json`` names the active embedder
version (a ``full`` fine-tune or a query-side ``adapter``) and the active ``cross-encoder`` reranker.
``base`` means the configured embedder with no adapter and no reranker.

The switch is a single atomic file replace, made only after everything the new version needs (for a
full fine-tune: the catalog re-embedded into its own collections) is in place; the old collections stay.
With a catalog shared by replicas (``chroma_url``) the choice is a setting of the catalog instead of the
file, written through its log like any other change.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentic_router.indexes.atomic import atomic_write_json
from agentic_router.indexes.errors import CatalogError, InputError, ModelError
from agentic_router.indexes.storage.catalog_db import ACTIVE_SETTING, CatalogDB

METHODS = ("full", "adapter", "cross-encoder")
BASE = "base"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass
class ModelVersion:
    name: str
    method: str
    base: str
    path: str  # folder of the model, relative to the models directory
    dataset_hash: str | None = None
    created: float = field(default_factory=time.time)
    figures: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # adapters: which step_N folder to load (None = final)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelRegistry:
    """Trained versions as folders of ``models_dir``; the active choice in ``active.json``, or with a shared
    catalog in its settings (``settings``), so every replica switches together."""

    def __init__(self, models_dir: Path, settings: CatalogDB | None = None) -> None:
        self.dir = models_dir
        self.settings = settings

    # ---- versions ----------------------------------------------------------------------------------
    def new_dir(self, name: str) -> Path:
        """A fresh folder for a version about to be trained; refuses names in use."""
        if name == BASE or not _NAME.match(name):
            raise InputError(f"model name {name!r} must be 1-64 letters, digits, _ . - and not 'base'")
        target = self.dir / name
        if (target / "version.json").exists():
            raise CatalogError(f"model {name!r} already exists; choose another --name")
        target.mkdir(parents=True, exist_ok=True)
        return target

    def register(self, version: ModelVersion) -> ModelVersion:
        if version.method not in METHODS:
            raise InputError(f"unknown method {version.method!r}")
        atomic_write_json(self.dir / version.name / "version.json", version.to_dict())
        return version

    def get(self, name: str) -> ModelVersion:
        path = self.dir / name / "version.json"
        if not path.is_file():
            known = ", ".join(v.name for v in self.list()) or "none"
            raise ModelError(f"unknown model {name!r} (known: {known})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return ModelVersion(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise CatalogError(f"model {name!r} has a corrupt version.json ({exc})".splitlines()[0]) from exc

    def list(self) -> list[ModelVersion]:
        if not self.dir.is_dir():
            return []
        out = []
        for meta in sorted(self.dir.glob("*/version.json")):
            try:
                out.append(ModelVersion(**json.loads(meta.read_text(encoding="utf-8"))))
            except (json.JSONDecodeError, TypeError):
                continue
        return sorted(out, key=lambda v: v.created)

    def model_path(self, version: ModelVersion) -> Path:
        return self.dir / version.path

    # ---- activation --------------------------------------------------------------------------------
    def active(self) -> dict[str, str | None]:
        path = self.dir / "active.json"
        if self.settings is not None:
            data = self.settings.get_setting(ACTIVE_SETTING) or {}
        elif path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = {}
        return {"embedder": data.get("embedder"), "reranker": data.get("reranker")}

    def set_active(self, embedder: str | None | object = ..., reranker: str | None | object = ...) -> dict[str, str | None]:
        current = self.active()
        if embedder is not ...:
            current["embedder"] = embedder  # type: ignore[assignment]
        if reranker is not ...:
            current["reranker"] = reranker  # type: ignore[assignment]
        if self.settings is not None:
            self.settings.set_setting(ACTIVE_SETTING, current)
        else:
            atomic_write_json(self.dir / "active.json", current)
        return current
