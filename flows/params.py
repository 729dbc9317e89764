"""How the flows' parameters look in the Prefect UI's Run > Custom run form.

Prefect titles a parameter with its raw name and takes its description from the flow
docstring's ``Args:``; these annotations give each one a title in sentence case. Optional
text is ``str`` with an empty default (a plain text box; ``str | None`` renders as a
type switch showing ``Property is type "None"``), optional lists are ``list[str]``
with an empty default.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field


def titled(type_: Any, title: str) -> Any:
    """``type_`` shown in the form as ``title``."""
    return Annotated[type_, Field(json_schema_extra={"title": title})]


Lake = titled(str, "Lake")
ChunkDays = titled(int, "Chunk days")
CredentialsBlock = titled(str, "Credentials block")
ApiLimit = titled(str, "API limit")
OrgId = titled(str, "Org id")
IncludeEvents = titled(bool, "Include events")
Projects = titled(list[str], "Projects")
Cohorts = titled(list[str], "Cohorts")
Patients = titled(list[str], "Patients")
Categories = titled(list[str], "Categories")
Measurements = titled(list[str], "Measurements")
DeviceTypes = titled(list[str], "Device types")
StreamIds = titled(list[str], "Stream ids")
LookbackDays = titled(int, "Lookback days")
Since = titled(str, "Since")
