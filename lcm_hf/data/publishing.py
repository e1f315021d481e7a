"""Publish a connectome dataset as parquet shards + a dataset card, readable offline.

Layout written by :func:`publish_dataset`::

    folder/
      README.md                    # dataset card, YAML ``configs:`` + ``dataset_info.features``
      data/<split>-00000-of-0000n.parquet
      bei_vocabulary.json          # when a vocabulary is given
      .lcm_hf_output.json          # marks the folder as written by lcm-hf ({"kind": "dataset", ...})

``datasets.load_dataset(folder)`` reads it back (features, Array2D included, intact). The folder is written
to a temporary sibling and swapped in, so a kill or a full disk leaves the previous dataset intact, and
``overwrite`` replaces only a dataset lcm-hf wrote, never a folder holding the inputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..atomic import check_output_folder, staged_folder
from ..errors_lcm import LcmInputTypeError

CARD_TEMPLATE = """{header}
# {name}

{description}

Connectome dataset in the lcm-hf schema: one row per scan (or window) with `subject_id`,
`dataset`, `site`, `{data_column}` and phenotype columns ({phenotypes}).
Splits: {splits}. Rows: {rows}.

Load it offline with:

```python
from datasets import load_dataset
ds = load_dataset("{folder_name}")
```
"""


def publish_dataset(dataset, folder: str | os.PathLike, *, name: str | None = None, description: str = "",
                    max_rows_per_shard: int = 2000, vocabulary=None, license: str | None = None,
                    overwrite: bool = False, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Write ``dataset`` (Dataset -> split "train", or DatasetDict) as parquet shards + README.md.

    Parameters
    ----------
    dataset : datasets.Dataset or datasets.DatasetDict
    folder : path-like
        Output folder (created; must be empty unless ``overwrite``).
    name, description, license : str, optional
        Dataset card fields.
    max_rows_per_shard : int
        Rows per parquet file.
    vocabulary : BeiVocabulary, optional
        Saved as ``bei_vocabulary.json``.
    overwrite : bool
        Replace an existing non-empty folder; only one holding a dataset lcm-hf wrote (its
        ``.lcm_hf_output.json`` marker, or a card tagged lcm-hf over parquet shards) is replaced, else
        ValueError.
    inputs : iterable of path-like
        The files/folders the dataset was made from: a `folder` equal to or containing one is refused.

    Returns
    -------
    pathlib.Path of the folder
    """
    from datasets import Dataset, DatasetDict

    if isinstance(dataset, Dataset):
        dataset = DatasetDict({"train": dataset})
    if not isinstance(dataset, DatasetDict):
        raise LcmInputTypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")
    folder = check_output_folder(folder, kind="dataset", overwrite=overwrite, inputs=inputs)
    with staged_folder(folder, kind="dataset") as staging:
        _write_dataset(dataset, staging, folder, name, description, max_rows_per_shard, vocabulary, license)
    return folder


ROW_GROUP_BYTES = 16 << 20
"""Uncompressed bytes per parquet row group: a streaming reader holds one row group per shard it reads at once."""


def write_parquet_shard(dataset, path: str | os.PathLike, row_group_bytes: int = ROW_GROUP_BYTES) -> None:
    """Write `dataset` to one parquet file (snappy), dictionary-encoding only its scalar columns.

    ``Dataset.to_parquet`` dictionary-encodes every column; for array columns (``timeseries``,
    ``connectivity``: nearly all values distinct) that saves nothing and makes them about 3x slower to decode,
    which bounds streaming throughput. Row groups hold about `row_group_bytes` of uncompressed data, written one
    at a time (memory: one row group).
    """
    import pyarrow.parquet as pq
    from datasets import Value

    schema = dataset.features.arrow_schema
    scalar = [name for name, feature in dataset.features.items() if isinstance(feature, Value)]
    rows = dataset.with_format("arrow")
    sample = rows[: min(len(dataset), 16)]
    rows_per_group = max(1, row_group_bytes * max(1, len(sample)) // max(1, sample.nbytes))
    with pq.ParquetWriter(str(path), schema, compression="snappy", use_dictionary=scalar) as writer:
        for table in rows.iter(batch_size=rows_per_group):
            writer.write_table(table.cast(schema), row_group_size=rows_per_group)


def _write_dataset(dataset, staging: Path, folder: Path, name, description, max_rows_per_shard, vocabulary,
                   license) -> None:
    """The shards, card and vocabulary of :func:`publish_dataset`, written into `staging`."""
    import yaml

    (staging / "data").mkdir(parents=True, exist_ok=True)
    data_files = []
    for split, ds in dataset.items():
        n_shards = max(1, -(-len(ds) // max_rows_per_shard))
        for i in range(n_shards):
            shard = ds.shard(n_shards, i, contiguous=True)
            write_parquet_shard(shard, staging / "data" / f"{split}-{i:05d}-of-{n_shards:05d}.parquet")
        data_files.append({"split": split, "path": f"data/{split}-*"})
    first = next(iter(dataset.values()))
    features_yaml = first.features._to_yaml_list()
    meta = {"configs": [{"config_name": "default", "data_files": data_files}],
            "dataset_info": {"features": features_yaml},
            "tags": ["fmri", "connectome", "lcm-hf"]}
    if license:
        meta["license"] = license
    header = "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---"
    data_column = "timeseries" if "timeseries" in first.column_names else "connectivity"
    phenotypes = [c for c in first.column_names if c not in ("subject_id", "dataset", "site", data_column)]
    card = CARD_TEMPLATE.format(header=header, name=name or folder.name, description=description,
                                data_column=data_column, phenotypes=", ".join(phenotypes) or "none",
                                splits=", ".join(f"{k} ({len(v)})" for k, v in dataset.items()),
                                rows=sum(len(v) for v in dataset.values()), folder_name=str(folder))
    (staging / "README.md").write_text(card, encoding="utf-8")
    if vocabulary is not None:
        vocabulary.save_pretrained(staging)


def load_published(folder: str | os.PathLike, *, fresh: bool = True, **kwargs):
    """``datasets.load_dataset(folder)``: the published DatasetDict.

    ``datasets`` caches a local folder by its name and file names: two folders of one name (``a/dataset``,
    ``b/dataset``) would share one cache entry and read back each other's rows. Each folder gets its own cache
    (:func:`local_cache_dir`, unless ``cache_dir`` is given), and ``fresh=True`` (default) re-reads the parquet files
    (``download_mode="force_redownload"``, the split sizes of an earlier read not enforced), so a folder republished
    in place never comes back stale. Extra keyword arguments go to ``load_dataset``.
    """
    from datasets import load_dataset

    kwargs.setdefault("cache_dir", local_cache_dir(folder))
    if fresh:
        kwargs.setdefault("download_mode", "force_redownload")
        kwargs.setdefault("verification_mode", "no_checks")
    return load_dataset(str(folder), **kwargs)


def local_cache_dir(folder: str | os.PathLike) -> str:
    """The ``datasets`` cache folder of one local dataset folder: keyed by its absolute path, not its name."""
    import hashlib

    from datasets import config

    key = hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    return os.path.join(str(config.HF_DATASETS_CACHE), "lcm_hf_local", key)


def load_connectome_dataset(path: str | os.PathLike, split: str = "train"):
    """One split of a connectome dataset on disk, whichever way it was written.

    Parameters
    ----------
    path : str or PathLike
        A ``save_to_disk`` folder (``Dataset`` or ``DatasetDict``), a folder that
        ``datasets.load_dataset`` reads (e.g. one written by :func:`publish_dataset`), or a parquet file.
    split : str
        The split to return from a ``DatasetDict`` or a folder (a single parquet file is one split).

    Returns
    -------
    datasets.Dataset
    """
    import datasets

    path = Path(path)
    if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(str(path))
    elif path.is_dir():  # by path, not by name (two folders named "dataset" are two datasets)
        loaded = load_published(path, split=split)
    else:
        loaded = datasets.load_dataset("parquet", data_files=str(path), split="train")
    if isinstance(loaded, datasets.DatasetDict):
        loaded = loaded[split]
    return loaded


__all__ = ["load_connectome_dataset", "load_published", "local_cache_dir", "publish_dataset"]
