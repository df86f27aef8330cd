"""The contract every backup target keeps (``crm2_backup_targets``), as a test class to inherit.

In your plugin's tests, subclass :class:`TargetContract` and give it two fixtures::

    class TestLoyaltyTarget(TargetContract):
        @pytest.fixture
        def target(self, tmp_path):
            return LoyaltyTarget(...)  # with something to dump

        @pytest.fixture
        def restore_to(self, tmp_path):
            return str(tmp_path / "restored")  # a new address your restore accepts

Importing this module needs pytest (your ``test`` extra has it); the plugin never does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from crm2_backup.service.targets import NAME


class TargetContract:
    """Inherit it; provide ``target`` and ``restore_to`` fixtures. See the module docstring."""

    @pytest.fixture
    def artefact(self, target: Any, tmp_path: Path) -> Path:
        return tmp_path / "dumped" / f"{target.name}{target.extension}"

    async def _dump(self, target: Any, artefact: Path) -> Mapping[str, Any]:
        artefact.parent.mkdir(parents=True, exist_ok=True)
        facts = await target.dump(artefact)
        assert isinstance(facts, Mapping), facts
        json.dumps(dict(facts))  # recorded in the set's manifest
        assert artefact.is_file(), f"dump() wrote nothing at {artefact}"  # noqa: ASYNC240
        return facts

    def test_the_target_is_well_formed(self, target: Any) -> None:
        assert NAME.match(str(target.name)), f"{target.name!r} is not [a-z][a-z0-9_]*"
        assert str(target.extension).startswith("."), target.extension
        for method in ("dump", "restore", "drill"):
            assert callable(getattr(target, method, None)), f"no {method}()"

    async def test_a_drill_of_a_fresh_dump_passes(self, target: Any, artefact: Path) -> None:
        facts = await self._dump(target, artefact)

        figures = await target.drill(artefact, facts)

        assert isinstance(figures, Mapping), figures
        json.dumps(dict(figures))

    async def test_a_drill_of_an_emptied_artefact_raises(self, target: Any, artefact: Path) -> None:
        facts = await self._dump(target, artefact)
        artefact.write_bytes(b"")  # noqa: ASYNC240

        with pytest.raises(Exception):  # noqa: B017 - any error fails the drill
            await target.drill(artefact, facts)

    async def test_a_restore_writes_nothing_on_a_dry_run_and_never_overwrites(
        self, target: Any, artefact: Path, restore_to: str
    ) -> None:
        await self._dump(target, artefact)

        checked = await target.restore(artefact, restore_to, True)
        assert isinstance(checked, Mapping), checked
        assert not Path(restore_to).exists(), "a dry run wrote at its address"  # noqa: ASYNC240
        restored = await target.restore(artefact, restore_to, False)
        assert isinstance(restored, Mapping), restored
        with pytest.raises(Exception):  # noqa: B017 - refused, never overwritten
            await target.restore(artefact, restore_to, False)
