"""The hooks backup offers other plugins: ``crm2_backup_targets`` and ``crm2_backup_destinations``.

A target is any object with the attributes and methods of
:class:`crm2_backup.targets.base.BackupTarget` (duck-typed: a plugin that adds
one need not import crm2_backup). Documented in docs/plugins/hooks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm2_hookspecs import Crm2Context, hookspec


class BackupSpec:
    """Hook specifications added by the backup plugin (its ``manifest.hookspecs``)."""

    @hookspec
    def crm2_backup_targets(self, context: Crm2Context) -> Sequence[Any]:
        """Return the things this plugin wants backed up, restored and drilled.

        Each item is a target: ``name`` (unique, ``[a-z][a-z0-9_]*``), ``extension``
        (of the plaintext artefact), and three coroutines: ``dump(path)`` writes the
        artefact and returns facts captured with it (row counts, key counts …);
        ``restore(path, to, dry_run)`` puts it into ``to`` (an address the target
        understands); ``drill(path, facts)`` restores into a scratch place of its
        own, compares with ``facts``, removes the scratch place and returns figures
        (raising when anything differs). Implement with ``@hookimpl(optionalhook=True)``
        so the plugin starts without backup enabled.

        :param context: the running application.
        :returns: the targets.
        """
        raise NotImplementedError

    @hookspec
    def crm2_backup_destinations(self, context: Crm2Context) -> Sequence[Any]:
        """Return places completed sets can be copied to (``CRM2_BACKUP_DESTINATION`` names one).

        Each item is a destination: ``name`` (unique, ``[a-z][a-z0-9_]*`` optionally
        followed by ``:`` and a sub-name, e.g. ``documents:s3``; never ``local``, which
        is built in) and three coroutines taking ``name``, a relative
        ``<set location>/<file>``: ``put(name, path)`` stores the file at ``path``
        (atomically: a cut-off upload leaves nothing), ``get(name, path)`` writes it back
        to ``path`` (``FileNotFoundError`` when it is not there), ``delete(name)``
        (a missing one is not an error). Implement with ``@hookimpl(optionalhook=True)``.

        :param context: the running application.
        :returns: the destinations.
        """
        raise NotImplementedError
