"""Per-subject embeddings of a trained LCM, for users' own downstream models (linear probes, clustering...).

Two feature sets per subject, each the mean over the subject's windows (all its scans):

- ``bei_states`` (P, E): the BEI-token states the readout reads (after the shared readout LayerNorm), at each
  BEI's readout layer: the selected layer under the ``best_layer`` policy, the last layer under ``last``,
  otherwise the mean over layers (what ``mean`` and the momentum stage read; ``max`` has no single layer).
- ``fc_features`` (E,): the FC-encoder output (one E-vector per ROI row) averaged over the ROIs.

```python
from lcm_hf.embeddings import embed_files, read_embeddings
embed_files("runs/finetuned", ["sub-01_bold.tsv", "sub-02_bold.tsv"], "embeddings.parquet")
table = read_embeddings("embeddings.parquet")   # subject_id, bei_states (S, P, E), fc_features (S, E)
```
The command line: ``lcm-hf embed --model M --timeseries FILES... --output F.parquet``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors_lcm import LcmInputError
from .vocabulary_lcm import BeiVocabulary


def readout_states(model, layer_hidden_states: torch.Tensor) -> torch.Tensor:
    """BEI-token states at each BEI's readout layer, after the readout LayerNorm.

    Parameters
    ----------
    model : LcmForBeiPrediction
    layer_hidden_states : torch.Tensor (W, L, P, E)

    Returns
    -------
    torch.Tensor (W, P, E)
    """
    config = model.config
    states = model.readout_norm(layer_hidden_states)  # (W, L, P, E)
    selected = config.readout_layers or {}
    parts = []
    for bei, token_slice in zip(config.beis, config.bei_token_slices()):
        per_layer = states[:, :, token_slice]
        if config.readout_policy == "best_layer" and bei["name"] in selected:
            parts.append(per_layer[:, selected[bei["name"]]])
        elif config.readout_policy == "last":
            parts.append(per_layer[:, -1])
        else:
            parts.append(per_layer.mean(dim=1))
    return torch.cat(parts, dim=1)


@torch.no_grad()
def subject_embeddings(model, processor, timeseries: Sequence, subject_ids: Sequence[str], *,
                       window_batch_size: int = 64) -> dict:
    """Embeddings of scans pooled per subject (windows cut by the processor's contract).

    Parameters
    ----------
    model : LcmForBeiPrediction (its processor's BEIs must match its config)
    processor : LcmProcessor
    timeseries : sequence of (T_i, N) arrays, one per scan
    subject_ids : sequence of str, one per scan; scans of one subject are pooled
    window_batch_size : int

    Returns
    -------
    dict
        ``subject_id`` (list of S str, first-seen order), ``num_windows`` int (S,), ``bei_states`` float32
        (S, P, E), ``fc_features`` float32 (S, E).
    """
    if len(timeseries) != len(subject_ids):
        raise LcmInputError(f"expected one subject id per time series ({len(timeseries)}), got {len(subject_ids)}")
    if len(timeseries) == 0:
        raise LcmInputError("expected at least one time series, got none")
    processor.check_model(model.config)
    model.eval()
    batch = processor(timeseries=list(timeseries), subject_ids=[str(s) for s in subject_ids], return_tensors="pt")
    fc = batch["connectivity"]
    scan = batch.get("subject_index", torch.arange(fc.shape[0]))
    order = list(dict.fromkeys(str(s) for s in subject_ids))
    subject = torch.tensor([order.index(str(subject_ids[i])) for i in scan.tolist()])
    device = next(model.parameters()).device
    bei_parts, fc_parts = [], []
    for chunk in fc.split(window_batch_size):
        out = model.model(chunk.to(device), return_dict=True)
        bei_parts.append(readout_states(model, out.layer_hidden_states).float().cpu())
        fc_parts.append(out.memory.mean(dim=1).float().cpu())
    bei_states, fc_features = torch.cat(bei_parts), torch.cat(fc_parts)
    counts = torch.bincount(subject, minlength=len(order))
    def pooled(values):
        total = torch.zeros((len(order),) + values.shape[1:]).index_add_(0, subject, values)
        return (total / counts.view(-1, *[1] * (values.ndim - 1))).numpy().astype(np.float32)

    return {"subject_id": order, "num_windows": counts.numpy(), "bei_states": pooled(bei_states),
            "fc_features": pooled(fc_features)}


def write_embeddings(embeddings: dict, path: str | os.PathLike, *, token_names: Sequence[str] | None = None,
                     overwrite: bool = False) -> Path:
    """Write :func:`subject_embeddings` output as parquet, one row per subject (atomic: a temporary sibling is
    renamed into place). Columns: ``subject_id``, ``num_windows``, ``bei_states`` (P*E floats, token-major),
    ``fc_features`` (E floats); the token names and shapes go in the schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    bei = np.asarray(embeddings["bei_states"], dtype=np.float32)
    fcf = np.asarray(embeddings["fc_features"], dtype=np.float32)
    metadata = {"num_tokens": bei.shape[1], "hidden_size": bei.shape[2], "token_names": list(token_names or [])}
    table = pa.table({
        "subject_id": pa.array([str(s) for s in embeddings["subject_id"]], pa.string()),
        "num_windows": pa.array(np.asarray(embeddings["num_windows"], dtype=np.int32)),
        "bei_states": pa.FixedSizeListArray.from_arrays(pa.array(bei.reshape(-1)), bei.shape[1] * bei.shape[2]),
        "fc_features": pa.FixedSizeListArray.from_arrays(pa.array(fcf.reshape(-1)), fcf.shape[1]),
    }).replace_schema_metadata({"lcm_hf.embeddings": json.dumps(metadata)})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path


def read_embeddings(path: str | os.PathLike) -> dict:
    """Read a file of :func:`write_embeddings`: ``subject_id`` (list), ``num_windows`` (S,), ``bei_states``
    (S, P, E), ``fc_features`` (S, E), ``token_names`` (list of P str)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = json.loads(table.schema.metadata[b"lcm_hf.embeddings"])
    rows = table.num_rows
    bei = np.asarray(table.column("bei_states").combine_chunks().flatten(), dtype=np.float32)
    fcf = np.asarray(table.column("fc_features").combine_chunks().flatten(), dtype=np.float32)
    return {"subject_id": table.column("subject_id").to_pylist(),
            "num_windows": np.asarray(table.column("num_windows")),
            "bei_states": bei.reshape(rows, metadata["num_tokens"], metadata["hidden_size"]),
            "fc_features": fcf.reshape(rows, metadata["hidden_size"]),
            "token_names": metadata["token_names"]}


def subject_id_of(path: str | os.PathLike) -> str:
    """The subject of a file: its BIDS ``sub-`` entity, else the file name without its suffixes."""
    from .data.readers import parse_bids_name

    name = Path(path).name
    return parse_bids_name(name).get("sub") or name.split(".")[0]


def embed_files(model: str | os.PathLike, files: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                subject_ids: Sequence[str] | None = None, overwrite: bool = False, device=None,
                censored_volumes: str = "refuse", header: str = "auto") -> Path:
    """Embed time-series files with a model folder and write one parquet row per subject.

    Parameters
    ----------
    model : path-like or Hub id of a model folder (with its processor)
    files : time-series files (.npy, .mat, .1D/.txt/.tsv/.csv); their ROI labels and TR are checked
        against the processor's contract like `lcm-hf predict` does
    output : path of the parquet file
    subject_ids : one per file, optional (default: :func:`subject_id_of`)
    overwrite : bool
    device : torch device, optional
    censored_volumes : {"refuse", "drop"}
        Censored volumes in the files: refused (default), or left out of every window (the core reader's policy)
    header : {"auto", "yes", "no"}
        Text files: whether the first line that does not start with ``#`` is a header row
        (:func:`lcm_hf.text_tables_lcm.read_text_table`).

    Returns
    -------
    Path of the written file
    """
    from .atomic import check_output_file
    from .pipeline_lcm import load_phenotype_pipeline

    check_output_file(output, inputs=[*files, model], overwrite=overwrite)  # never over an input
    pipe = load_phenotype_pipeline(model, device=device if device is not None else "cpu")
    processor = pipe.feature_extractor
    subject_ids = list(subject_ids) if subject_ids is not None else [subject_id_of(f) for f in files]
    series = [read_checked(processor, f, censored_volumes, header=header) for f in files]
    embeddings = subject_embeddings(pipe.model, processor, series, subject_ids)
    tokens = BeiVocabulary.from_config(pipe.model.config.beis).token_names()
    return write_embeddings(embeddings, output, token_names=tokens, overwrite=overwrite)


def read_checked(processor, path: str | os.PathLike, censored_volumes: str = "refuse",
                 header: str = "auto") -> np.ndarray:
    """A (T, N) series from a file (the core's one reader, as `lcm-hf predict` and the pipeline read it), its ROI
    labels and TR checked against the processor's contract."""
    from .pipeline_lcm import read_input

    item = read_input(path, censored_volumes, header=header)
    processor.check_roi_labels(item.get("roi_labels"), str(path))
    processor.check_repetition_time(item.get("repetition_time"), str(path))
    return item["timeseries"]


__all__ = ["embed_files", "read_checked", "read_embeddings", "readout_states",
           "subject_embeddings", "subject_id_of", "write_embeddings"]
