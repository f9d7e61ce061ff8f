"""``ChemActorSeeds``: the annotated seed sources of ChemActor in the one record schema.

One config per source:

- ``paragraph2actions``: procedure sentence -> action sequence (readable grammar), upstream splits;
- ``smiles2actions``: reaction -> action sequence with ``$n$`` placeholders, upstream splits; the
  space-tokenized reaction SMILES is joined and canonicalized, the ordered precursors that ``$n$``
  names are kept in ``meta["precursors"]`` (canonicalization writes ``~`` salts as ``.``, so the
  reaction string alone no longer says which fragments form one compound);
- ``ord``: reaction -> experimental procedure (Open Reaction Database), with component roles and
  ORD ids in ``meta``. A USPTO paragraph is often shared by several reactions, so the split is a
  function of the normalized procedure text (:func:`chemactor.data.text_hash`), never of the reaction:
  the same text cannot land in two splits.

``datasets`` no longer runs dataset scripts, so the builder is used directly::

    builder = ChemActorSeeds(config_name="ord", data_dir="../shared/data")
    builder.download_and_prepare(); dataset = builder.as_dataset()

or through ``chemactor.builders.load_seeds("ord", "../shared/data")`` / ``chemactor data build``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import datasets

from chemactor.builders.drops import RowDrops
from chemactor.chem import (
    COMPONENT_ROLES,
    InvalidSmilesError,
    canonicalize_reaction,
    canonicalize_smiles,
    detokenize_reaction,
    reaction_precursors,
)
from chemactor.data import RECORD_FEATURES, RecordError, iter_jsonl, make_record, read_text_lines, text_hash

# A row to build lazily, so that its errors surface inside the loop that names its file and line.
RowBuild = Callable[[], "dict[str, str] | None"]

_UPSTREAM_SPLITS = {"train": "train", "validation": "valid", "test": "test"}
# The share of procedure-text hash buckets (out of 10) that go to each split.
_ORD_BUCKETS = {"train": range(0, 8), "validation": range(8, 9), "test": range(9, 10)}


def ord_split(text: str) -> str:
    """The split of an ORD reaction, a function of its procedure text alone (so no text leaks across splits)."""
    bucket = int(text_hash(text), 16) % 10
    return next(split for split, buckets in _ORD_BUCKETS.items() if bucket in buckets)


_CITATIONS = {
    "paragraph2actions": """@article{vaucher2020automated,
  title   = {Automated extraction of chemical synthesis actions from experimental procedures},
  author  = {Vaucher, Alain C. and Zipoli, Federico and Geluykens, Joppe and Nair, Vishnu H. and
             Schwaller, Philippe and Laino, Teodoro},
  journal = {Nature Communications}, volume = {11}, pages = {3601}, year = {2020},
  doi     = {10.1038/s41467-020-17266-6}
}""",
    "smiles2actions": """@article{vaucher2021inferring,
  title   = {Inferring experimental procedures from text-based representations of chemical reactions},
  author  = {Vaucher, Alain C. and Schwaller, Philippe and Geluykens, Joppe and Nair, Vishnu H. and
             Iuliano, Anna and Laino, Teodoro},
  journal = {Nature Communications}, volume = {12}, pages = {2573}, year = {2021},
  doi     = {10.1038/s41467-021-22951-1}
}""",
    "ord": """@article{kearnes2021open,
  title   = {The Open Reaction Database},
  author  = {Kearnes, Steven M. and Maser, Michael R. and Wleklinski, Michael and Kast, Anton and
             Doyle, Abigail G. and Dreher, Spencer D. and Hawkins, Joel M. and Jensen, Klavs F. and
             Coley, Connor W.},
  journal = {Journal of the American Chemical Society}, volume = {143}, number = {45},
  pages   = {18820--18826}, year = {2021}, doi = {10.1021/jacs.1c09820}
}
@misc{lowe2017chemical,
  title  = {Chemical reactions from US patents (1976-Sep2016)},
  author = {Lowe, Daniel}, year = {2017}, doi = {10.6084/m9.figshare.5104873.v1}
}""",
}


@dataclass
class SeedConfig(datasets.BuilderConfig):
    """A seed source: where its files live upstream and how it is licensed and cited.

    ``skip_bad_rows`` drops (and counts by reason) a row that cannot be read instead of raising.
    """

    license: str = ""
    citation: str = ""
    homepage: str = ""
    skip_bad_rows: bool = False
    upstream_files: dict[str, str] = field(default_factory=dict)


def _upstream_text_files(repo: str, commit: str, folder: str) -> dict[str, str]:
    base = f"https://raw.githubusercontent.com/{repo}/{commit}/{folder}"
    names = [f"{side}-{split}.txt" for split in _UPSTREAM_SPLITS.values() for side in ("src", "tgt")]
    return {name: f"{base}/{name}" for name in names}


class ChemActorSeeds(datasets.GeneratorBasedBuilder):
    """Seed datasets in the ChemActor record schema; one config per source (see the module docstring)."""

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = SeedConfig
    BUILDER_CONFIGS: ClassVar[list[SeedConfig]] = [
        SeedConfig(
            name="paragraph2actions",
            version=VERSION,
            description=(
                "Procedure sentences from patents with their synthesis action sequences in the readable "
                "Paragraph2Actions grammar (hand-annotated test sentences of Vaucher et al. 2020)."
            ),
            license="mit",
            citation=_CITATIONS["paragraph2actions"],
            homepage="https://github.com/rxn4chemistry/paragraph2actions",
            upstream_files=_upstream_text_files("rxn4chemistry/paragraph2actions", "37d9642", "test_data"),
        ),
        SeedConfig(
            name="smiles2actions",
            version=VERSION,
            description=(
                "Reactions (canonical reaction SMILES) with the action sequence that carries them out, "
                "written with placeholders: $n$ is the n-th precursor (meta.precursors), $-1$ the product, "
                "#n# a binned temperature and @n@ a binned duration (Vaucher et al. 2021)."
            ),
            license="mit",
            citation=_CITATIONS["smiles2actions"],
            homepage="https://github.com/rxn4chemistry/smiles2actions",
            upstream_files=_upstream_text_files("rxn4chemistry/smiles2actions", "63cfe0a", "model_training"),
        ),
        SeedConfig(
            name="ord",
            version=VERSION,
            description=(
                "Reactions from the Open Reaction Database (USPTO grant extractions and the AstraZeneca ELN "
                "dataset, as kept in the ORDerly test fixtures) with their experimental procedure text and "
                "component roles. Split by a hash of the normalized procedure text, so no text occurs in two splits."
            ),
            license="cc-by-sa-4.0",
            citation=_CITATIONS["ord"],
            homepage="https://open-reaction-database.org",
        ),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = RowDrops(self.config.skip_bad_rows)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=self.config.description,
            features=RECORD_FEATURES,
            homepage=self.config.homepage,
            license=self.config.license,
            citation=self.config.citation,
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        self.dropped.reset()
        if self.config.name == "ord":
            path = self._local_file("ord_r2d", "reactions.jsonl.gz")
            return [datasets.SplitGenerator(name=s, gen_kwargs={"path": path, "split": s}) for s in _ORD_BUCKETS]
        if self.config.data_dir:
            files = {name: self._local_file(self.config.name, name) for name in self.config.upstream_files}
        else:
            files = {name: Path(local) for name, local in dl_manager.download(self.config.upstream_files).items()}
        return [
            datasets.SplitGenerator(
                name=split,
                gen_kwargs={"src": files[f"src-{upstream}.txt"], "tgt": files[f"tgt-{upstream}.txt"], "split": split},
            )
            for split, upstream in _UPSTREAM_SPLITS.items()
        ]

    def _local_file(self, folder: str, name: str) -> Path:
        if not self.config.data_dir:
            # The upstream ORD data are protocol buffers; the reaction/procedure/role extraction that
            # this config reads is the reference-data file, so it has to be given.
            raise FileNotFoundError(
                f"config {self.config.name!r} reads {folder}/{name} from data_dir; pass data_dir=<reference data>"
            )
        path = Path(self.config.data_dir) / folder / name
        if not path.is_file():
            raise FileNotFoundError(f"config {self.config.name!r}: missing input file {path}")
        return path

    def _generate_examples(self, split: str, **files: Path) -> Iterator[tuple[str, dict[str, str]]]:
        rows = self._ord_rows(split=split, **files) if self.config.name == "ord" else self._pairs(split=split, **files)
        for where, build in rows:
            try:
                record = build()
            except (RecordError, InvalidSmilesError) as exc:
                self.dropped.reject(where, exc)
                continue
            if record is not None and self.dropped.is_new(record["id"], where):
                yield record["id"], record

    def _pairs(self, src: Path, tgt: Path, split: str) -> Iterator[tuple[str, RowBuild]]:
        sources, targets = read_text_lines(src), read_text_lines(tgt)
        if len(sources) != len(targets):
            raise RecordError(f"{src} has {len(sources)} lines but {tgt} has {len(targets)}; they must align")
        for line_no, (source, target) in enumerate(zip(sources, targets, strict=True), start=1):
            record_id = f"{self.config.name}-{split}-{line_no:05d}"
            if self.config.name == "paragraph2actions":
                build = partial(self._paragraph2actions_record, record_id, source, target, split)
            else:
                build = partial(self._smiles2actions_record, record_id, source, target, split)
            yield f"{tgt}:{line_no}", build

    def _paragraph2actions_record(self, record_id: str, sentence: str, actions: str, split: str) -> dict[str, str]:
        if not sentence.strip() or not actions.strip():
            raise RecordError("empty sentence or action sequence")
        return make_record(id=record_id, source="paragraph2actions", description=sentence, actions=actions, split=split)

    def _smiles2actions_record(self, record_id: str, tokenized: str, actions: str, split: str) -> dict[str, str]:
        if not actions.strip():
            raise RecordError("empty action sequence")
        reaction = detokenize_reaction(tokenized)
        return make_record(
            id=record_id,
            source="smiles2actions",
            reaction_smiles=canonicalize_reaction(reaction),
            actions=actions,
            split=split,
            meta={"actions_style": "placeholder", "precursors": reaction_precursors(reaction)},
        )

    def _ord_rows(self, path: Path, split: str) -> Iterator[tuple[str, RowBuild]]:
        # Each split reads the whole file; a line that is not JSON has no text to hash, so it is
        # reported (or counted) once, by the train pass, and passed over silently by the others.
        on_error = self.dropped.reject if split == "train" else lambda where, problem: None
        for line_no, row in iter_jsonl(path, on_error=on_error):
            text = row.get("procedure_details") or ""
            if not isinstance(text, str):  # no text to hash either: reported once, like a line that is not JSON
                if split == "train":
                    yield f"{path}:{line_no}", partial(self._ord_record, row, split)
                continue
            # Hashing first keeps every reaction's RDKit work to the one split it belongs to.
            if ord_split(text) == split:
                yield f"{path}:{line_no}", partial(self._ord_record, row, split)

    def _ord_record(self, row: dict[str, Any], split: str) -> dict[str, str] | None:
        missing = [name for name in ("reaction_id", "procedure_details", "reaction_smiles_unmapped") if name not in row]
        if missing:
            raise RecordError(f"missing field(s) {', '.join(missing)}")
        _check_ord_types(row)
        # Rows a reaction -> procedure dataset cannot use are dropped by design, and counted.
        if not row["reaction_smiles_unmapped"]:
            self.dropped["empty reaction SMILES"] += 1
            return None
        if not row["procedure_details"].strip():
            self.dropped["empty procedure text"] += 1
            return None
        components = {
            role: [
                {"smiles": canonicalize_smiles(c["smiles"]) if c.get("smiles") else "", "name": c.get("name") or ""}
                for c in row.get(role) or []
            ]
            for role in COMPONENT_ROLES
        }
        meta = {
            "ord_reaction_id": row["reaction_id"],
            "ord_dataset_id": row.get("ord_dataset_id", ""),
            "ord_dataset_name": row.get("ord_dataset_name", ""),
            "patent": row.get("patent") or "",
            "doi": row.get("doi") or "",
            "components": components,
        }
        return make_record(
            id=row["reaction_id"],
            source="ord",
            reaction_smiles=canonicalize_reaction(row["reaction_smiles_unmapped"]),
            description=row["procedure_details"],
            split=split,
            meta=meta,
        )


def _check_ord_types(row: dict[str, Any]) -> None:
    """Raise :class:`RecordError` naming the field when an ORD row's value has the wrong JSON type."""
    for name in ("reaction_id", "procedure_details", "reaction_smiles_unmapped"):
        if not isinstance(row[name], str):
            raise RecordError(f"field {name!r} must be a string, got {type(row[name]).__name__}")
    for name in ("ord_dataset_id", "ord_dataset_name", "patent", "doi"):
        if row.get(name) is not None and not isinstance(row[name], str):
            raise RecordError(f"field {name!r} must be a string, got {type(row[name]).__name__}")
    for role in COMPONENT_ROLES:
        components = row.get(role) or []
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise RecordError(f"field {role!r} must be a list of objects, got {type(components).__name__}")
        for index, component in enumerate(components):
            for key in ("smiles", "name"):
                if component.get(key) is not None and not isinstance(component[key], str):
                    value = type(component[key]).__name__
                    raise RecordError(f"field {role}[{index}].{key} must be a string, got {value}")
