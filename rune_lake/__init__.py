"""The installed home of the repository's ``flows/`` and ``tasks/`` folders.

In the repository the flows and the Prefect tasks sit at the top level (``flows/``,
``tasks/``), where they show the architecture. Installed as top-level packages they would
be ``site-packages/flows`` and ``site-packages/tasks``, and collide with any other
project's ``tasks``; so the distribution installs them as ``rune_lake.flows`` and
``rune_lake.tasks`` (``[tool.setuptools.package-dir]`` in ``pyproject.toml``), and all
code imports them by those names.
"""
