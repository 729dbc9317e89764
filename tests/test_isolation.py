"""The suite runs in its own Prefect home and never asks for EC2 instance metadata."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def test_prefect_home_is_a_temporary_directory_not_the_users():
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH

    home = Path(PREFECT_HOME.value()).resolve()
    assert home != (Path.home() / ".prefect").resolve()
    assert home.is_relative_to(Path(tempfile.gettempdir()).resolve()), home
    assert Path(PREFECT_LOCAL_STORAGE_PATH.value()).resolve().is_relative_to(home)


def test_botocore_never_reaches_for_instance_metadata():
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
