"""RouterConfig: where each value comes from, how strings become typed values, and what is refused.

No model, no store: only the dataclass, temporary TOML files and environment variables. The layering
order is the contract the CLI, the Python API and the docs all describe, so each layer is checked against
the one below and above it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from agentic_router.indexes.config import BUNDLED_EMBEDDER, DEFAULT_WORKSPACE, LLM_PROVIDERS, RouterConfig
from agentic_router.indexes.errors import ConfigError, RouterError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own AGENTIC_ROUTER_* variables must not leak into what these tests see."""
    for name in list(os.environ):
        if name.startswith("AGENTIC_ROUTER_"):
            monkeypatch.delenv(name)


def write_config(folder: Path, text: str, name: str = "config.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    """The CLI prints a RouterError as a single line, so every message checked here must be one."""
    message = str(exc.value)
    assert message and "\n" not in message, message
    return message


# ---- layering ------------------------------------------------------------------------------------------
def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    cfg = RouterConfig.load(workspace=tmp_path)
    assert cfg == RouterConfig(workspace=tmp_path)
    assert (cfg.embed_model, cfg.top_k, cfg.chunk_size, cfg.chunk_overlap) == (BUNDLED_EMBEDDER, 5, 256, 32)
    assert (cfg.llm_provider, cfg.llm_model, cfg.card_weight) == ("local", None, 0.15)


def test_each_layer_beats_the_one_below(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """defaults < config.toml < AGENTIC_ROUTER_<FIELD> < keyword overrides; a None override is no override."""
    write_config(tmp_path, 'top_k = 7\nchunk_size = 128\nllm_model = "from-file"\n')
    from_file = RouterConfig.load(workspace=tmp_path)
    assert (from_file.top_k, from_file.chunk_size, from_file.llm_model) == (7, 128, "from-file")
    assert from_file.summary_sentences == 3  # a field the file does not name keeps its default

    monkeypatch.setenv("AGENTIC_ROUTER_TOP_K", "9")
    monkeypatch.setenv("AGENTIC_ROUTER_LLM_MODEL", "from-env")
    from_env = RouterConfig.load(workspace=tmp_path)
    assert (from_env.top_k, from_env.llm_model) == (9, "from-env")
    assert from_env.chunk_size == 128  # the environment only replaces what it names

    explicit = RouterConfig.load(workspace=tmp_path, top_k=11, llm_model=None, chunk_size=None)
    assert explicit.top_k == 11
    assert (explicit.llm_model, explicit.chunk_size) == ("from-env", 128)  # None overrides are ignored


def test_config_env_names_the_only_file_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AGENTIC_ROUTER_CONFIG replaces <workspace>/config.toml: the two files are not merged."""
    workspace = tmp_path / "ws"
    write_config(workspace, "top_k = 7\nchunk_size = 128\n")
    elsewhere = write_config(tmp_path / "etc", "top_k = 3\n", name="router.toml")
    monkeypatch.setenv("AGENTIC_ROUTER_CONFIG", str(elsewhere))
    cfg = RouterConfig.load(workspace=workspace)
    assert (cfg.top_k, cfg.chunk_size) == (3, 256)


def test_where_the_workspace_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Argument, else AGENTIC_ROUTER_HOME, else ./.agentic-router. The workspace holds config.toml, so
    neither that file nor an AGENTIC_ROUTER_WORKSPACE variable can move it."""
    monkeypatch.chdir(tmp_path)
    assert RouterConfig.load().workspace == Path(DEFAULT_WORKSPACE)

    home = tmp_path / "home"
    write_config(home, f'workspace = "{(tmp_path / "elsewhere").as_posix()}"\ntop_k = 4\n')
    monkeypatch.setenv("AGENTIC_ROUTER_HOME", str(home))
    monkeypatch.setenv("AGENTIC_ROUTER_WORKSPACE", str(tmp_path / "ignored"))
    from_home = RouterConfig.load()
    assert from_home.workspace == home and from_home.top_k == 4  # HOME's config.toml is the one read
    assert RouterConfig.load(workspace=tmp_path / "given").workspace == tmp_path / "given"

    cfg = RouterConfig(workspace=tmp_path)
    assert (cfg.chroma_dir, cfg.docs_dir) == (tmp_path / "chroma", tmp_path / "docs")
    assert (cfg.catalog_path, cfg.models_dir) == (tmp_path / "catalog.sqlite", tmp_path / "models")


# ---- types ---------------------------------------------------------------------------------------------
def test_strings_from_the_environment_become_typed_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTIC_ROUTER_TOP_K", "8")
    monkeypatch.setenv("AGENTIC_ROUTER_CARD_WEIGHT", "0.25")
    monkeypatch.setenv("AGENTIC_ROUTER_LLM_TEMPERATURE", "1")
    monkeypatch.setenv("AGENTIC_ROUTER_LLM_MODEL", "none")  # the way to say "no value" in a variable
    monkeypatch.setenv("AGENTIC_ROUTER_DEVICE", "cpu")
    cfg = RouterConfig.load(workspace=tmp_path)
    assert cfg.top_k == 8 and type(cfg.top_k) is int
    assert cfg.card_weight == 0.25 and type(cfg.card_weight) is float
    assert cfg.llm_temperature == 1.0 and type(cfg.llm_temperature) is float
    assert cfg.llm_model is None and cfg.device == "cpu"


def test_toml_numbers_are_coerced_to_the_field_type(tmp_path: Path) -> None:
    write_config(tmp_path, "card_weight = 1\nseed = 3\n")  # TOML reads `1` as an int
    cfg = RouterConfig.load(workspace=tmp_path)
    assert cfg.card_weight == 1.0 and type(cfg.card_weight) is float
    assert cfg.seed == 3 and type(cfg.seed) is int


@pytest.mark.parametrize(("source", "field", "raw"), [
    ("env", "top_k", "many"),
    ("env", "chunk_size", "12.5"),  # an int field does not truncate a float
    ("env", "lexical_weight", "heavy"),
    ("toml", "top_k", '"five"'),
    ("toml", "embed_batch_size", "[1, 2]"),
    ("override", "card_weight", "half"),
])
def test_a_bad_value_is_a_one_line_error_naming_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         source: str, field: str, raw: str) -> None:
    overrides = {}
    if source == "env":
        monkeypatch.setenv(f"AGENTIC_ROUTER_{field.upper()}", raw)
    elif source == "toml":
        write_config(tmp_path, f"{field} = {raw}\n")
    else:
        overrides[field] = raw
    with pytest.raises(ConfigError) as exc:
        RouterConfig.load(workspace=tmp_path, **overrides)
    assert f"setting '{field}' has an invalid value" in one_line(exc)
    assert isinstance(exc.value, RouterError)  # what the CLI turns into exit code 1


# ---- refused input -------------------------------------------------------------------------------------
def test_unknown_settings_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, 'colour = "red"\ntop_k = 3\n[llm]\nmodel = "x"\n')
    with pytest.raises(ConfigError) as exc:
        RouterConfig.load(workspace=tmp_path)
    assert one_line(exc) == "unknown setting(s): colour, llm"

    with pytest.raises(ConfigError) as exc:
        RouterConfig.load(workspace=tmp_path / "empty", topk=3)  # a misspelt keyword is not silently dropped
    assert one_line(exc) == "unknown setting(s): topk"

    # the prefix is shared with the variables that locate things; those are not settings
    monkeypatch.setenv("AGENTIC_ROUTER_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("AGENTIC_ROUTER_CONFIG", str(write_config(tmp_path / "etc", "top_k = 2\n")))
    assert RouterConfig.load().top_k == 2


@pytest.mark.parametrize("content", [b"top_k = \n", b"[unclosed\n", b'top_k = 1\ntop_k = 2\n', b"top_k = 3 \xff\xfe\n"])
def test_a_config_file_that_is_not_toml_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "config.toml").write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        RouterConfig.load(workspace=tmp_path)
    message = one_line(exc)
    assert "is not valid TOML" in message and str(tmp_path / "config.toml") in message


# ---- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("values", [
    {"chunk_size": 32, "chunk_overlap": 0},  # the smallest chunk and no overlap
    {"chunk_size": 64, "chunk_overlap": 63},  # overlap just under the chunk
    {"card_weight": 0.0, "lexical_weight": 1.0},  # both ends of [0, 1]
    {"card_weight": 1.0, "lexical_weight": 0.0},
    {"top_k": 1},
    *({"llm_provider": p} for p in LLM_PROVIDERS),
])
def test_values_on_the_edge_are_accepted(tmp_path: Path, values: dict) -> None:
    cfg = RouterConfig.load(workspace=tmp_path, **values)
    assert all(getattr(cfg, k) == v for k, v in values.items())


@pytest.mark.parametrize(("values", "message"), [
    ({"llm_provider": "gpt"}, "llm_provider must be one of local, openai, openai-like, llama-cpp, none, not 'gpt'"),
    ({"chunk_size": 31, "chunk_overlap": 0}, "chunk_size must be >= 32"),
    ({"chunk_size": 64, "chunk_overlap": 64}, "0 <= chunk_overlap < chunk_size"),
    ({"chunk_overlap": -1}, "0 <= chunk_overlap < chunk_size"),
    ({"card_weight": 1.01}, "card_weight, lexical_weight, tool_lexical_weight and memory_weight must lie in [0, 1]"),
    ({"lexical_weight": -0.1}, "card_weight, lexical_weight, tool_lexical_weight and memory_weight must lie in [0, 1]"),
    ({"memory_weight": 1.5}, "card_weight, lexical_weight, tool_lexical_weight and memory_weight must lie in [0, 1]"),
    ({"memory_floor": 1.0}, "memory_floor must lie in [0, 1)"),
    ({"lexical_norm": "max"}, "lexical_norm must be best, ceiling or ceiling_all, not 'max'"),
    ({"tool_lexical_weight": 2.0}, "card_weight, lexical_weight, tool_lexical_weight and memory_weight must lie in [0, 1]"),
    ({"tool_lexical_norm": "max"}, "tool_lexical_norm must be best, ceiling or ceiling_all, not 'max'"),
    ({"top_k": 0}, "top_k must be >= 1"),
    ({"k_max": 0}, "k_max must be >= 1"),
    ({"auto_k_margin": 1.5}, "auto_k_margin must lie in [0, 1]"),
    ({"abstain_quantile": 1.0}, "abstain_quantile must lie in [0, 1)"),
])
def test_values_out_of_range_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: dict,
                                         message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        RouterConfig.load(workspace=tmp_path, **values)
    assert message in one_line(exc)
    # the same rule holds whichever layer the value comes from
    for name, value in values.items():
        monkeypatch.setenv(f"AGENTIC_ROUTER_{name.upper()}", str(value))
    with pytest.raises(ConfigError) as exc:
        RouterConfig.load(workspace=tmp_path)
    assert message in one_line(exc)


def test_with_overrides_validates_ignores_none_and_leaves_the_original(tmp_path: Path) -> None:
    cfg = RouterConfig.load(workspace=tmp_path)
    changed = cfg.with_overrides(top_k=9, llm_model=None)
    assert (changed.top_k, changed.llm_model) == (9, None) and cfg.top_k == 5
    with pytest.raises(ConfigError, match="top_k must be >= 1"):
        cfg.with_overrides(top_k=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.top_k = 3  # type: ignore[misc]  # shared by every component: must not change under them
