"""The errors a user can cause, gathered so that the CLI reports each as one clear line."""

from __future__ import annotations


def _user_errors() -> tuple[type[BaseException], ...]:
    from graves.checkpoint import CheckpointError
    from graves.config import ConfigError

    # the OSErrors a user causes: a missing file, a folder where a file should be (or the reverse), no
    # permission, a name taken; a full disk is :func:`disk_full` (an errno, not a class). Other OSErrors
    # (too many open files, a broken pipe, ...) keep their traceback: they are not the input's fault.
    errors: list[type[BaseException]] = [ConfigError, CheckpointError, FileNotFoundError, IsADirectoryError,
                                         NotADirectoryError, PermissionError, FileExistsError]
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


def disk_full(exc: BaseException) -> bool:
    """An OSError that is the input's or the machine's doing, not a bug: the disk (or the quota, or the file
    system) takes no more writes, or a path is too long or loops."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                                                   errno.ENAMETOOLONG, errno.ELOOP)
