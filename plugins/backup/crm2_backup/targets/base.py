"""The contract of a backup target, and helpers the built-in targets share."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from crm2_backup.errors import BadTargetAddress, DrillMismatch, TargetFailed


@runtime_checkable
class BackupTarget(Protocol):
    """What ``crm2_backup_targets`` returns (structural: no import of crm2_backup needed).

    ``dump`` writes the plaintext artefact at ``path`` (the plugin encrypts and
    deletes it) and returns facts kept in the set's manifest. ``restore`` puts the
    artefact into ``to``; with ``dry_run`` it only checks that it would. ``drill``
    restores into a scratch place, compares with the dump's facts, removes the
    scratch place and returns figures; it raises when anything differs. A restore that
    fails after writing part of its target says what it wrote in the error's text and
    extensions (``TargetFailed(detail, restored=…)``): the restore run records them.
    """

    name: str
    extension: str

    async def dump(self, path: Path) -> Mapping[str, Any]: ...

    async def restore(self, path: Path, to: str, dry_run: bool) -> Mapping[str, Any]: ...

    async def drill(self, path: Path, facts: Mapping[str, Any]) -> Mapping[str, Any]: ...


async def run_program(
    argv: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109 - passed to wait_for around the whole program run
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> bytes:
    """Run a program; its stdout, or :class:`TargetFailed` with the tail of its stderr.

    The command line never holds a secret (passwords travel in ``env``), so the
    error can name the program.
    """
    full_env = {**os.environ, **(env or {})}
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
        )
    except FileNotFoundError as exc:
        raise TargetFailed(f"{argv[0]} is not installed or not on PATH") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise TargetFailed(f"{Path(argv[0]).name} ran longer than {timeout:.0f} s") from None
    except BaseException:
        # cancelled (the handler's time limit, Ctrl-C, a shutdown): the program stops too,
        # rather than go on writing into a target whose run already says it was interrupted
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        tail = err.decode("utf-8", "replace").strip()[-800:]
        raise TargetFailed(f"{Path(argv[0]).name} exited with {process.returncode}: {tail}")
    return out


def compare(target: str, expected: Mapping[str, Any], found: Mapping[str, Any]) -> None:
    """Raise :class:`DrillMismatch` naming every key whose value differs."""
    wrong = {
        key: (expected.get(key), found.get(key))
        for key in sorted(set(expected) | set(found))
        if expected.get(key) != found.get(key)
    }
    if wrong:
        shown = "; ".join(
            f"{key}: backed up {was!r}, restored {now!r}"
            for key, (was, now) in list(wrong.items())[:10]
        )
        raise DrillMismatch(f"{target}: the restored copy differs: {shown}")


def write_new_file(target: Path, write: Callable[[Path], None]) -> None:
    """Make the new file ``target`` with ``write(path)``: it appears whole or not at all.

    ``write`` fills a file beside it, which is then linked in: a file that appeared
    meanwhile (another restore into the same name) is never overwritten, and a write
    that fails half-way leaves nothing. An empty file already there is replaced. The
    file is mode 0600 (it holds every row, every key): ``write`` fills the empty file
    made so, whatever the umask.
    """
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        write(partial)
        try:
            os.link(partial, target)
        except FileExistsError:
            if target.stat().st_size > 0:
                raise BadTargetAddress(
                    f"{target} exists (another restore made it meanwhile?): restore into a new file"
                ) from None
            os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
