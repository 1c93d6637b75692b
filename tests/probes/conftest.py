"""The probe lab for tests: its own namespaces (prefix ipamtest), never the demo's.

Lab tests need root (namespaces, raw sockets) and Debian's nsd; without them
they skip saying so, except under CI (which runs as root), where they fail.
"""

from __future__ import annotations

import os

import pytest

from probes import lab as lab_module
from probes.netns import entered


def _need_lab():
    why = lab_module.can_run()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the probe lab tests: {why}")
        pytest.skip(why)


@pytest.fixture(scope="session")
def lab():
    """The demo profile, up for the whole session."""
    _need_lab()
    the_lab = lab_module.Lab("ipamtest")
    the_lab.up("demo")
    yield the_lab
    the_lab.down()


@pytest.fixture
def inside(lab):
    """Run the block inside the lab's probe namespace (only routes: into the lab)."""
    return lambda: entered(lab.probe_ns)


# Under pytest-xdist, every test that builds a lab carries LAB_GROUP: one worker
# runs them, one at a time, as a serial run does. Two labs up at once (the shared one and
# test_lab's rate-limited one) would share host-side names.
LAB_GROUP = pytest.mark.xdist_group("lab")
