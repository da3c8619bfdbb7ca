"""The motive taxonomy, kept as data (``config/taxonomy.yaml``) and validated on load.

The eight top-level ids are a contract shared with Elasticsearch documents, Kibana searches,
alert subscriptions and the evaluation, so a missing one is an error, not a warning. Children are
free to add (``military_technology.naval``) and always imply their parent. Validation errors point
at the line of the YAML file, because the people who edit it are analysts, not programmers.

The same file carries the ``topic`` section: the multilingual keyword lists the on-topic gate uses
(see ``pipeline.classify.gate``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.settings import DEFAULT_CONFIG_DIR

__all__ = ["REQUIRED_IDS", "Motive", "Taxonomy", "TopicTerms", "load_taxonomy"]

REQUIRED_IDS = (
    "hard_currency", "military_technology", "combat_experience", "security_guarantees",
    "diplomatic_cover", "prestige", "economic_aid", "costs_and_risks",
)
DEFAULT_PATH = DEFAULT_CONFIG_DIR / "taxonomy.yaml"


@dataclass(frozen=True)
class Exemplar:
    text: str
    seed: str | None = None


@dataclass(frozen=True)
class Motive:
    id: str
    name: str
    description: str
    parent: str | None = None
    keywords: tuple[str, ...] = ()
    exemplars: tuple[Exemplar, ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class TopicTerms:
    """Keyword groups for the on-topic gate, per language (``en``, ``de``, ``vi``, ...)."""

    actor: dict[str, tuple[str, ...]] = field(default_factory=dict)      # North Korea
    partner: dict[str, tuple[str, ...]] = field(default_factory=dict)    # Russia and its war
    deployment: dict[str, tuple[str, ...]] = field(default_factory=dict)  # troops, munitions, treaty
    threshold: float = 0.5


@dataclass(frozen=True)
class Taxonomy:
    motives: dict[str, Motive]
    topic: TopicTerms
    path: Path | None = None
    version: str = "1"

    @property
    def ids(self) -> list[str]:
        return list(self.motives)

    @property
    def top_level(self) -> list[str]:
        return [m.id for m in self.motives.values() if m.parent is None]

    def children(self, motive_id: str) -> list[str]:
        return [m.id for m in self.motives.values() if m.parent == motive_id]

    def parent_chain(self, motive_id: str) -> list[str]:
        chain, current = [], self.motives[motive_id].parent
        while current is not None:
            chain.append(current)
            current = self.motives[current].parent
        return chain

    def expand(self, ids: Iterable[str]) -> list[str]:
        """The ids plus every ancestor, in taxonomy order (children imply parents)."""
        wanted: set[str] = set()
        for motive_id in ids:
            if motive_id not in self.motives:
                raise KeyError(f"unknown motive id {motive_id!r}")
            wanted.add(motive_id)
            wanted.update(self.parent_chain(motive_id))
        return [m for m in self.motives if m in wanted]


def _line_loader(text: str, path: str) -> Any:
    """Parse YAML keeping the line of every mapping (``__line__``) for error messages."""
    import yaml

    class LineLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        if duplicates:
            raise ConfigError(f"duplicate key {sorted(duplicates)[0]!r}", path=path,
                              line=node.start_mark.line + 1)
        mapping = loader.construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        return yaml.load(text, Loader=LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=path,
                          line=mark.line + 1 if mark else None) from exc


def _strings(value: Any, *, path: str, item: str, fld: str, line: int | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError("must be a list of non-empty strings", path=path, item=item, field=fld,
                          line=line)
    return tuple(v.strip() for v in value)


def _parse_motive(raw: Any, parent: str | None, path: str, out: dict[str, Motive]) -> None:
    if not isinstance(raw, dict):
        raise ConfigError("each motive must be a mapping with id, name, description", path=path)
    line = raw.get("__line__")
    motive_id = raw.get("id")
    if not isinstance(motive_id, str) or not motive_id.strip():
        raise ConfigError("missing id", path=path, line=line, field="id")
    motive_id = motive_id.strip()
    if parent is None and "." in motive_id and raw.get("parent") is None:
        parent = motive_id.rsplit(".", 1)[0]
    parent = raw.get("parent", parent)
    if motive_id in out:
        raise ConfigError(f"duplicate motive id (first defined at line {out[motive_id].line})",
                          path=path, item=motive_id, line=line)
    for fld in ("name", "description"):
        value = raw.get(fld)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{fld} must be a non-empty string", path=path, item=motive_id,
                              field=fld, line=line)
    exemplars = []
    for ex in raw.get("exemplars") or []:
        if isinstance(ex, str) and ex.strip():
            exemplars.append(Exemplar(ex.strip()))
        elif isinstance(ex, dict) and isinstance(ex.get("text"), str) and ex["text"].strip():
            exemplars.append(Exemplar(ex["text"].strip(), ex.get("seed")))
        else:
            raise ConfigError("an exemplar is a string or a mapping with text (and seed)", path=path,
                              item=motive_id, field="exemplars", line=line)
    out[motive_id] = Motive(
        id=motive_id, name=raw["name"].strip(), description=" ".join(raw["description"].split()),
        parent=parent, line=line, exemplars=tuple(exemplars),
        keywords=_strings(raw.get("keywords"), path=path, item=motive_id, fld="keywords", line=line),
    )
    children = raw.get("children") or []
    if not isinstance(children, list):
        raise ConfigError("children must be a list", path=path, item=motive_id, field="children",
                          line=line)
    for child in children:
        _parse_motive(child, motive_id, path, out)


def _parse_topic(raw: Any, path: str) -> TopicTerms:
    if raw is None:
        raise ConfigError("missing the topic section (keywords for the on-topic gate)", path=path)
    line = raw.get("__line__") if isinstance(raw, dict) else None
    groups: dict[str, dict[str, tuple[str, ...]]] = {}
    for group in ("actor", "partner", "deployment"):
        per_lang = raw.get(group) if isinstance(raw, dict) else None
        if not isinstance(per_lang, dict) or not per_lang:
            raise ConfigError("must map language codes to keyword lists", path=path, item="topic",
                              field=group, line=line)
        groups[group] = {lang: _strings(words, path=path, item="topic", fld=f"{group}.{lang}",
                                        line=per_lang.get("__line__"))
                         for lang, words in per_lang.items() if lang != "__line__"}
    threshold = raw.get("threshold", 0.5)
    if not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise ConfigError("threshold must be a number between 0 and 1", path=path, item="topic",
                          field="threshold", line=line)
    return TopicTerms(actor=groups["actor"], partner=groups["partner"],
                      deployment=groups["deployment"], threshold=float(threshold))


def parse_taxonomy(text: str, path: str = "<taxonomy>") -> Taxonomy:
    """Validate and build a taxonomy from YAML text; errors name the file, item, field and line."""
    data = _line_loader(text, path)
    if not isinstance(data, dict) or not isinstance(data.get("motives"), list):
        raise ConfigError("expected a mapping with a 'motives' list", path=path)
    motives: dict[str, Motive] = {}
    for raw in data["motives"]:
        _parse_motive(raw, None, path, motives)
    for motive in motives.values():
        if motive.parent is not None and motive.parent not in motives:
            raise ConfigError(f"unknown parent {motive.parent!r}", path=path, item=motive.id,
                              field="parent", line=motive.line)
    missing = [m for m in REQUIRED_IDS if m not in motives]
    if missing:
        raise ConfigError(f"missing required top-level motive ids: {', '.join(missing)}", path=path)
    for required in REQUIRED_IDS:
        if motives[required].parent is not None:
            raise ConfigError("a required id must be top-level", path=path, item=required,
                              line=motives[required].line)
    return Taxonomy(motives=motives, topic=_parse_topic(data.get("topic"), path),
                    path=Path(path) if path != "<taxonomy>" else None,
                    version=str(data.get("version", "1")))


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate the taxonomy file.

    Default: ``taxonomy.yaml`` in the configured folder (``NEWSWATCH_CONFIG_DIR``), falling back
    to the repository's ``config/taxonomy.yaml`` when that folder has none.
    """
    if path is None:
        from pipeline.settings import load_settings

        configured = load_settings().taxonomy_file
        resolved = configured if configured.is_file() else DEFAULT_PATH
    else:
        resolved = Path(path)
    return _load_cached(str(resolved.resolve()), resolved.stat().st_mtime_ns
                        if resolved.exists() else 0)


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int) -> Taxonomy:
    file = Path(path)
    if not file.is_file():
        raise ConfigError("taxonomy file not found", path=path)
    return parse_taxonomy(file.read_text(encoding="utf-8"), path)
