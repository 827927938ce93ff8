"""The errors a user can cause, gathered so that the CLI reports each as one clear line."""

from __future__ import annotations


def _user_errors() -> tuple[type[BaseException], ...]:
    from graves.checkpoint import CheckpointError
    from graves.config import ConfigError

    # OSError: a missing file, a folder where a file should be, no permission, a full disk: all one line.
    errors: list[type[BaseException]] = [ConfigError, CheckpointError, OSError]
    for module, name in [
        ("graves.data.iamondb", "DataError"),
        ("graves.data.text", "DataError"),
        ("graves.data.download", "DataError"),
        ("graves.data.alphabet", "UnknownCharacterError"),
        ("graves.data.primer", "PrimerError"),
        ("graves.render", "RenderError"),
        ("graves.render", "OutputError"),
        ("graves.plots", "CurvesError"),
        ("graves.train", "TrainingError"),
    ]:
        try:
            mod = __import__(module, fromlist=[name])
            errors.append(getattr(mod, name))
        except (ImportError, AttributeError):
            pass
    return tuple(dict.fromkeys(errors))


USER_ERRORS = _user_errors()
