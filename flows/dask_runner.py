"""``RuneDaskTaskRunner``: prefect-dask's runner, plus what rune-lake needs of it.

Kept apart from :mod:`rune_lake.flows.runners` so that only Dask runs import ``distributed``.
"""

from __future__ import annotations

from prefect.settings import get_current_settings
from prefect_dask import DaskTaskRunner

from rune_lake.flows.runners import DaskNeedsPrefectAPI


class RuneDaskTaskRunner(DaskTaskRunner):
    """A ``DaskTaskRunner`` that refuses to start without a real Prefect API URL, and
    gives that URL (and API auth, if any) to the ``LocalCluster`` workers it spawns.

    The workers inherit the rest of the parent's environment at spawn (``RUNE_*``
    settings, ``AWS_*`` for an S3 lake), plus the settings overrides of the command that
    made the runner (``cluster_kwargs["env"]``, see
    :func:`rune_lake.flows.runners.dask_task_runner`). Workers of an existing cluster
    (``address``) are configured by whoever started them.
    """

    @property
    def client(self):
        if self._client is None:
            self._prepare_workers()
        return super().client

    def _prepare_workers(self) -> None:
        api = get_current_settings().api
        if not api.url:
            raise DaskNeedsPrefectAPI()
        if self.address or self._cluster is not None:
            return
        env = {"PREFECT_API_URL": api.url}
        if api.key is not None:
            env["PREFECT_API_KEY"] = api.key.get_secret_value()
        if api.auth_string is not None:
            env["PREFECT_API_AUTH_STRING"] = api.auth_string.get_secret_value()
        self.cluster_kwargs = {
            **self.cluster_kwargs,
            "env": {**self.cluster_kwargs.get("env", {}), **env},
        }
