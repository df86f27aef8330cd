"""The hooks the documents plugin offers to other plugins (listed in its manifest).

Documented in docs/plugins/hooks.md ("Hooks of the documents plugin"); a test
keeps that page and these specs in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crm2_hookspecs import Crm2Context, hookspec

if TYPE_CHECKING:
    from crm2_documents.storage.base import StorageBackend


class DocumentsSpec:
    @hookspec
    def crm2_documents_storage_backends(
        self, context: Crm2Context
    ) -> Sequence[StorageBackend] | None:
        """Storage backends this plugin offers to the documents plugin.

        Called once when the application (or a worker, or the CLI) is assembled.
        Read your settings, build your backends (no I/O: connect lazily) and
        return them; ``CRM2_DOCUMENTS_BACKEND`` then chooses one by ``name``.
        Two backends with one name stop start-up. Your plugin declares
        ``depends=("documents",)``.

        :param context: the application being assembled.
        :returns: :class:`crm2_documents.storage.StorageBackend` instances, or
            ``None`` for none.
        """
