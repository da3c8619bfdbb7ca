"""The exceptions newswatch raises, in one tree.

    NewswatchError
    ├── ConfigError            a configuration file or value is invalid (names file, item, field)
    │   └── ConfigErrors       several problems in one file, reported together
    ├── SetupError             the local stack cannot be set up (Java, Maven, ports, state folder)
    ├── ServiceError           a service answered with an error we cannot recover from here
    │   └── ServiceUnavailable a service is down or unreachable: the task should fail and retry
    ├── FeedError              one feed could not be fetched or parsed (reported per feed)
    ├── ExtractionError        one article page could not be turned into text
    └── ClassifierError        the model or taxonomy could not be loaded

Third-party exceptions (httpx, elasticsearch, smtplib) are mapped to these at the module
boundaries, so callers handle one hierarchy and per-item failures travel as data.
"""

from __future__ import annotations


class NewswatchError(Exception):
    """Base class for every error newswatch raises on purpose."""


class ConfigError(NewswatchError):
    """Invalid configuration. The message names the file, the item and the field."""

    def __init__(self, message: str, *, path: str | None = None, item: str | None = None,
                 field: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.item = item
        self.field = field
        self.line = line
        where = []
        if path:
            where.append(f"{path}:{line}" if line else path)
        if item:
            where.append(f"item {item!r}")
        if field:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ConfigErrors(ConfigError):  # noqa: N818 - plural of ConfigError: it holds several
    """Every problem found in one configuration file, so one edit fixes them all.

    Subclasses ``ConfigError`` so callers need no change; ``path``, ``item``, ``field`` and ``line``
    are the first problem's, and ``problems`` holds all of them in file order.
    """

    def __init__(self, problems: list[ConfigError]) -> None:
        if not problems:
            raise ValueError("ConfigErrors needs at least one problem")
        self.problems = list(problems)
        first = problems[0]
        self.path, self.item, self.field, self.line = first.path, first.item, first.field, first.line
        files = {p.path for p in problems if p.path}
        where = f" in {files.pop()}" if len(files) == 1 else ""
        # the first line stands alone (it is what `newswatch: error:` prints first); one problem a line
        lines = [f"{len(problems)} problems{where}:"] + [f"  - {p}" for p in problems]
        NewswatchError.__init__(self, "\n".join(lines))


def raise_config_problems(problems: list[ConfigError]) -> None:
    """Raise nothing, the one problem as it is, or all of them as one ``ConfigErrors``."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigErrors(problems)


class SetupError(NewswatchError):
    """The local stack cannot be set up; the message says what to do."""


class ServiceError(NewswatchError):
    """A service (Elasticsearch, SMTP, Kibana) answered with an error."""


class ServiceUnavailable(ServiceError):  # noqa: N818 - reads as a state, like httpx.ConnectTimeout
    """A service is down or unreachable. Tasks let this propagate so Airflow retries them."""


class FeedError(NewswatchError):
    """One feed failed. Carried as data in the per-feed report; never stops a run."""


class ExtractionError(NewswatchError):
    """One article page could not be extracted."""


class ClassifierError(NewswatchError):
    """The model or the taxonomy could not be loaded."""
