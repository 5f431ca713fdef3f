"""`qc up` runs `qc dashboard`: after the workers it shows, before distribution, ready when /healthz answers."""

from __future__ import annotations

from typing import cast

from qc.core import config
from qc.runtime.store import Store
from qc.runtime.supervisor import plan_stack

NO_STORE = cast(Store, None)  # the plan only closes over the store in its readiness checks, never called here


def test_the_dashboard_is_a_child_of_qc_up_with_a_readiness_check() -> None:
    for env in ({}, {"QC_IB_HOST": "10.0.0.7", "QC_ALPHA_VANTAGE_API_KEY": "k"}):
        children = plan_stack(config.resolve({}, env, {}, {}), NO_STORE).children
        names = [c.name for c in children]
        assert names.count("dashboard") == 1 and names.index("dashboard") > names.index("risk")
        assert "distribute" not in names or names[-1] == "distribute"
        dashboard = children[names.index("dashboard")]
        assert dashboard.argv[-2:] == ("qc", "dashboard") and dashboard.ready is not None
