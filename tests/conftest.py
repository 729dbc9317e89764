"""Session-wide isolation, set before anything imports Prefect or botocore.

- ``PREFECT_HOME`` is a fresh temporary directory: results, the local database and
  settings of this run never touch the user's ``~/.prefect``.
- ``AWS_EC2_METADATA_DISABLED``: botocore never reaches for instance metadata (a
  network call beyond loopback) when a test has no AWS credentials on purpose.
"""

from __future__ import annotations

import os
import shutil
import tempfile

PREFECT_HOME = tempfile.mkdtemp(prefix="rune-lake-tests-prefect-")
os.environ["PREFECT_HOME"] = PREFECT_HOME
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest's hook signature
    shutil.rmtree(PREFECT_HOME, ignore_errors=True)
