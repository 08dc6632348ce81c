"""One configuration object for the whole product.

Values are layered, later layers winning: built-in defaults, a TOML file (``<workspace>/config.toml`` or
the file named by ``AGENTIC_ROUTER_CONFIG``), environment variables (``AGENTIC_ROUTER_<FIELD>``), and
finally explicit keyword overrides (what CLI flags pass). Keeping every knob on one dataclass means the CLI,
the Python API and later the HTTP service all describe the same settings the same way.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from agentic_router.indexes.errors import ConfigError

ENV_PREFIX = "AGENTIC_ROUTER_"
HOME_ENV = "AGENTIC_ROUTER_HOME"
CONFIG_ENV = "AGENTIC_ROUTER_CONFIG"
DEFAULT_WORKSPACE = ".agentic-router"
BUNDLED_EMBEDDER = "bundled:all-MiniLM-L6-v2"
LLM_PROVIDERS = ("local", "openai", "openai-like", "llama-cpp", "none")
EMBED_BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass(frozen=True)
class RouterConfig:
    """Every setting of the product. Field metadata carries the help text shown by the CLI."""

    workspace: Path = field(default=Path(DEFAULT_WORKSPACE), metadata={"help": "Directory holding everything persisted."})
    embed_model: str = field(
        default=BUNDLED_EMBEDDER,
        metadata={"help": "sentence-transformers name or path; 'bundled:all-MiniLM-L6-v2' uses the packaged model."},
    )
    embed_batch_size: int = field(default=32, metadata={"help": "Texts per embedding batch."})
    embed_backend: str = field(
        default="onnx",
        metadata={"help": f"What encodes questions: {', '.join(EMBED_BACKENDS)} (ONNX Runtime on CPU, exported once "
                          "from the local weights; documents and tool cards are always embedded by torch). "
                          "onnx (fp32) routes as torch does on every CPU; onnx-int8 is faster for one question "
                          "alone, but ONNX Runtime's integer kernels differ between AVX2 and AVX-512 VNNI/AMX, "
                          "so its rankings depend on the machine (docs/benchmarks.md)."},
    )
    llm_provider: str = field(default="local", metadata={"help": f"One of {', '.join(LLM_PROVIDERS)}."})
    llm_model: str | None = field(
        default=None,
        metadata={"help": "Model name (openai/openai-like) or GGUF path (llama-cpp, local). None = provider default."},
    )
    llm_base_url: str | None = field(default=None, metadata={"help": "Base URL of an OpenAI-compatible server."})
    llm_api_key: str | None = field(default=None, metadata={"help": "API key; falls back to OPENAI_API_KEY."})
    llm_max_new_tokens: int = field(default=256, metadata={"help": "Generation budget per LLM call."})
    llm_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0 = greedy)."})
    llm_context_window: int = field(default=8192, metadata={"help": "Context window assumed for the LLM."})
    chunk_size: int = field(default=256, metadata={"help": "Chunk size in tokens (MiniLM reads at most 256)."})
    chunk_overlap: int = field(default=32, metadata={"help": "Token overlap between consecutive chunks."})
    top_k: int = field(default=5, metadata={"help": "Tools offered to the agent per question."})
    k_max: int = field(default=5, metadata={"help": "k auto: at most this many tools."})
    auto_k_margin: float = field(
        default=0.2, metadata={"help": "k auto: keep the tools scoring within this of the best one (recall of the "
                                       "gold tool within 0.004 of k=5 on the dev sets with 3.7 to 4.1 tools)."}
    )
    chunk_candidates: int = field(default=64, metadata={"help": "Chunks searched to find evidence for document tools."})
    query_batch_ms: float = field(
        default=0.0,
        metadata={"help": "Encode questions of concurrent callers together, waiting this long (ms) for company; "
                          "0 = each caller encodes its own (the HTTP service uses 2)."},
    )
    card_weight: float = field(
        default=0.15, metadata={"help": "Weight of the tool-card similarity against chunk evidence (0..1)."}
    )
    lexical_weight: float = field(
        default=0.4, metadata={"help": "Document tools: weight of BM25 over chunks against embedding evidence "
                                       "(0 = embeddings only; chosen on COVID-QA)."}
    )
    tool_lexical_weight: float = field(
        default=0.2, metadata={"help": "Application and MCP tools: weight of BM25 over tool cards against the card "
                                       "embedding (chosen on real requests, BFCL live)."}
    )
    tool_lexical_norm: str = field(
        default="ceiling", metadata={"help": "lexical_norm for tool cards (best, ceiling or ceiling_all); ceiling: "
                                             "a request that shares few of its words with a card gets little BM25."}
    )
    kind_bonus: float = field(
        default=0.05, metadata={"help": "Score bonus for the index kind the question calls for (orders a document's tools)."}
    )
    lexical_norm: str = field(
        default="best",
        metadata={"help": "What a BM25 score is divided by: best (the question's best score) or ceiling (what "
                          "matching all its words would score; a weak match stays weak)."},
    )
    memory_weight: float = field(
        default=0.5, metadata={"help": "Weight of usage memory (votes of the nearest recorded requests) once any exist."}
    )
    abstain_below: float = field(
        default=0.0, metadata={"help": "Say no tool fits when the best tool's similarity is below this (set by "
                                       "calibrate from labelled requests with gold []; 0 = use abstain_quantile)."}
    )
    abstain_quantile: float = field(
        default=0.5, metadata={"help": "With no abstain_below: say no tool fits when a request fits the catalog no "
                                        "better than this share of background requests no catalog serves (0 = never)."}
    )
    memory_floor: float = field(
        default=0.6, metadata={"help": "Similarity a recorded request must exceed to vote for its tool (0..1)."}
    )
    summary_sentences: int = field(default=3, metadata={"help": "Sentences in an extractive summary."})
    keywords_per_tool: int = field(default=10, metadata={"help": "Salient keywords written into a tool description."})
    device: str = field(default="auto", metadata={"help": "torch device: auto, cpu, cuda, mps."})
    chroma_url: str | None = field(
        default=None,
        metadata={"help": "A Chroma server (http://host:port) holding the vectors of a catalog replicas share "
                          "(with state_url); None = embedded Chroma."},
    )
    state_url: str | None = field(
        default=None,
        metadata={"help": "PostgreSQL (postgresql://user@host/db) holding the catalog's rows, shared by every "
                          "replica (with chroma_url); None = the workspace's SQLite file."},
    )
    state_poll_seconds: float = field(
        default=5.0, metadata={"help": "With state_url: how often a replica checks for changes it was not notified of."}
    )
    models_path: str | None = field(
        default=None,
        metadata={"help": "Folder of trained model versions (default <workspace>/models); replicas of one catalog "
                          "point it at one shared folder."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for anything random."})

    # ---- derived locations -------------------------------------------------------------------------
    @property
    def chroma_dir(self) -> Path:
        return self.workspace / "chroma"

    @property
    def docs_dir(self) -> Path:
        return self.workspace / "docs"

    @property
    def catalog_path(self) -> Path:
        return self.workspace / "catalog.sqlite"

    @property
    def models_dir(self) -> Path:
        return Path(self.models_path).expanduser() if self.models_path else self.workspace / "models"

    @property
    def shared(self) -> bool:
        """True when the catalog is shared with other replicas (rows in PostgreSQL, vectors on Chroma)."""
        return bool(self.state_url)

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def load(cls, workspace: str | Path | None = None, **overrides: Any) -> "RouterConfig":
        """Build the config from defaults, file, environment and ``overrides`` (None values are ignored)."""
        ws = Path(workspace or os.environ.get(HOME_ENV) or DEFAULT_WORKSPACE).expanduser()
        values: dict[str, Any] = {}
        file = Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else ws / "config.toml"
        if file.is_file():
            try:
                values.update(tomllib.loads(file.read_text(encoding="utf-8")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"config file {file} is not valid TOML: {exc}") from exc
        for f in fields(cls):
            env = os.environ.get(ENV_PREFIX + f.name.upper())
            if env is not None and f.name != "workspace":
                values[f.name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["workspace"] = ws
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RouterConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        defaults = cls()
        for name, raw in values.items():
            kwargs[name] = _coerce(name, raw, getattr(defaults, name))
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def with_overrides(self, **overrides: Any) -> "RouterConfig":
        cfg = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.embed_backend not in EMBED_BACKENDS:
            raise ConfigError(f"embed_backend must be one of {', '.join(EMBED_BACKENDS)}, not {self.embed_backend!r}")
        if self.llm_provider not in LLM_PROVIDERS:
            raise ConfigError(f"llm_provider must be one of {', '.join(LLM_PROVIDERS)}, not {self.llm_provider!r}")
        if self.chunk_size < 32 or not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError("chunk_size must be >= 32 and 0 <= chunk_overlap < chunk_size")
        if not all(0.0 <= w <= 1.0 for w in (self.card_weight, self.lexical_weight, self.tool_lexical_weight,
                                             self.memory_weight)):
            raise ConfigError("card_weight, lexical_weight, tool_lexical_weight and memory_weight must lie in [0, 1]")
        if not 0.0 <= self.abstain_quantile < 1.0:
            raise ConfigError("abstain_quantile must lie in [0, 1)")
        if not 0.0 <= self.memory_floor < 1.0:
            raise ConfigError("memory_floor must lie in [0, 1)")
        for name in ("lexical_norm", "tool_lexical_norm"):
            if getattr(self, name) not in ("best", "ceiling", "ceiling_all"):
                raise ConfigError(f"{name} must be best, ceiling or ceiling_all, not {getattr(self, name)!r}")
        if self.top_k < 1:
            raise ConfigError("top_k must be >= 1")
        if self.k_max < 1:
            raise ConfigError("k_max must be >= 1")
        if not 0.0 <= self.auto_k_margin <= 1.0:
            raise ConfigError("auto_k_margin must lie in [0, 1]")
        if not 0.0 <= self.query_batch_ms <= 1000.0:
            raise ConfigError("query_batch_ms must lie in [0, 1000]")
        if self.chroma_url is not None and not self.chroma_url.startswith(("http://", "https://")):
            raise ConfigError(f"chroma_url must be an http(s):// URL, not {self.chroma_url!r}")
        if self.state_url is not None and not self.state_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("state_url must be a postgresql:// URL")
        if bool(self.state_url) != bool(self.chroma_url):
            raise ConfigError("replicas share a catalog through both state_url (PostgreSQL, the rows) and "
                              "chroma_url (a Chroma server, the vectors); give both or neither")
        if not 0.1 <= self.state_poll_seconds <= 3600.0:
            raise ConfigError("state_poll_seconds must lie in [0.1, 3600]")


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Turn strings from env/TOML into the field's type, with a one-line error naming the field."""
    try:
        if name == "workspace":
            return Path(raw)
        if isinstance(default, bool):
            return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if raw in ("", "none", "None") and default is None:
            return None
        return str(raw) if raw is not None else None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} has an invalid value {raw!r}") from exc
