"""all-MiniLM-L6-v2 on onnxruntime: the same vectors as sentence-transformers, ~3x faster for the
one-sentence queries that make up most of a search on this CPU.

The ONNX graph is exported once from the packaged model with torch (``dynamo=False`` gave
vectors identical to sentence-transformers) and cached outside git; at run time only
onnxruntime and tokenizers are used. (sentence-transformers' own ONNX backend needs
optimum-onnx, which cannot be installed beside vLLM's transformers.)

The graph starts after the word-embedding lookup: the word table (30,522 x 384 float32, 47 MB,
80% of the int8 graph) is a ``.npy`` file beside it, memory-mapped and indexed in numpy. Loaded
into onnxruntime it was private memory in every process holding the model; mapped, only the rows
of tokens actually seen are read in, as file pages that processes share. Same numbers either
way: the lookup is a copy of rows, before any arithmetic.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import anyio
import anyio.to_thread
import numpy as np

from runtime.config import cache_dir
from runtime.embedders.sentence import resolve_model_path
from runtime.errors import BackendUnavailable

MAX_TOKENS = 256


def export_onnx(model_dir: Path, target: Path) -> Path:
    """Export the transformer from the looked-up word vectors on (without pooling, done in numpy),
    and its word table beside it (``word_table_path``)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class Encoder(torch.nn.Module):  # keyword call: the positional order of forward() is not stable
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_dir)).eval()

        def forward(self, inputs_embeds, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.bert(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    model = Encoder().eval()
    table = model.bert.embeddings.word_embeddings.weight.detach().numpy()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sample = tokenizer(["a sentence to trace"], return_tensors="np")
    inputs = (torch.from_numpy(table[sample["input_ids"]]), torch.from_numpy(sample["attention_mask"]),
              torch.from_numpy(sample["token_type_ids"]))
    names = ["inputs_embeds", "attention_mask", "token_type_ids"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on data-dependent branches it folds
        out, words = Path(scratch) / "model.onnx", Path(scratch) / "words.npy"
        with torch.no_grad():
            torch.onnx.export(
                model, inputs, str(out), input_names=names,
                output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                              "last_hidden_state": {0: "batch", 1: "tokens"}},
            )
        np.save(words, np.ascontiguousarray(table, dtype=np.float32))
        words.rename(word_table_path(target))
        out.rename(target)  # last: its presence says the export is whole
    return target


def word_table_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(f"{onnx_path.stem.removesuffix('-int8')}-words.npy")


def quantize_int8(source: Path, target: Path) -> Path:
    """onnxruntime's dynamic int8 quantization of the MatMul weights, per output channel. The word
    embeddings stay float32, outside the graph (quantizing them too moved the vectors further from
    float32 - cosine 0.988 against 0.989 - and bought no speed)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent) as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(scratch) / "model.onnx"
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        out.rename(target)
    return target


def prepared_model(model_dir: Path, quantize: str = "none") -> Path:
    """The ONNX graph for the packaged model (exported, and quantized, once into the cache)."""
    # "encoder": the graph without its word table (earlier exports, named "model", included it)
    onnx_path = cache_dir() / "models" / f"{model_dir.parent.name}-{model_dir.name}-encoder.onnx"
    if not onnx_path.is_file():
        export_onnx(model_dir, onnx_path)
    if quantize == "none":
        return onnx_path
    quantized = onnx_path.with_name(f"{onnx_path.stem}-{quantize}.onnx")
    if not quantized.is_file():
        quantize_int8(onnx_path, quantized)
    return quantized


class OnnxEmbedder:
    def __init__(self, model: str = "all-MiniLM-L6-v2", *, threads: int = 1, batch_size: int = 64,
                 quantize: str = "none"):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import onnxruntime
        from tokenizers import Tokenizer

        model_dir = Path(resolve_model_path(model))
        onnx_path = prepared_model(model_dir, quantize)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # idle pool threads spin by default, burning cores the rest of a busy box needs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._words = np.load(word_table_path(onnx_path), mmap_mode="r")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        config = json.loads((model_dir / "config.json").read_text())
        self.dims: int = int(config["hidden_size"])
        self._batch_size = batch_size
        self._lock = anyio.Lock()

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors: list[np.ndarray] = []
        for start in range(0, len(texts), self._batch_size):
            encodings = self._tokenizer.encode_batch(texts[start:start + self._batch_size])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            words = self._words[ids]  # the rows of these tokens, copied out of the mapped table
            hidden = self._session.run(None, {"inputs_embeds": words, "attention_mask": mask,
                                              "token_type_ids": types})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            vectors.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        return np.concatenate(vectors).tolist()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        async with self._lock:
            try:
                return await anyio.to_thread.run_sync(self._encode, texts)
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
                raise BackendUnavailable(f"ONNX embedder failed: {exc}", backend="embedder") from exc

    async def close(self) -> None:
        return None

