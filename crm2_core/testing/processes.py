"""Stopping a process a test started (``crm2 worker``, ``crm2 serve``) the way a process
manager does: SIGTERM, then SIGKILL after a grace period.

Started with ``asyncio.create_subprocess_exec`` and stopped with an awaited wait, so the
test's event loop keeps running meanwhile: a process on its way out may need what that
loop serves, such as a TCP proxy it reaches its broker through, or the SQLite write lock
a transaction of the test's app holds (a blocking ``Popen.wait`` there stalled the
process until SQLite's 30 s busy timeout)::

    process = await asyncio.create_subprocess_exec(crm2, "worker", env=env)
    try:
        ...  # the test
    except BaseException:
        await stop_process(process)
        raise
    assert await stop_process(process), "the worker did not stop within 30 s of SIGTERM"
"""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def stop_process(process: asyncio.subprocess.Process, within: float = 30) -> bool:
    """SIGTERM, then SIGKILL if it has not exited ``within`` seconds later; False then.

    Before the SIGKILL, a SIGUSR1: ``crm2 worker`` prints every thread's stack to its
    stderr on it (the test's captured output then shows where it hung).
    """
    if process.returncode is not None:
        return True
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        process.send_signal(signal.SIGUSR1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 1)
        if process.returncode is None:
            process.kill()
            await process.wait()
        return False
    return True
