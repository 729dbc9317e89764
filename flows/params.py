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


def title(text: str) -> Any:
    """The annotation metadata that shows a parameter in the form as ``text``:
    ``Annotated[type_, title("...")]`` (a real type alias, so a type checker sees the type)."""
    return Field(json_schema_extra={"title": text})


Lake = Annotated[str, title("Lake")]
ChunkDays = Annotated[int, title("Chunk days")]
CredentialsBlock = Annotated[str, title("Credentials block")]
ApiLimit = Annotated[str, title("API limit")]
OrgId = Annotated[str, title("Org id")]
IncludeEvents = Annotated[bool, title("Include events")]
Projects = Annotated[list[str], title("Projects")]
Cohorts = Annotated[list[str], title("Cohorts")]
Patients = Annotated[list[str], title("Patients")]
Categories = Annotated[list[str], title("Categories")]
Measurements = Annotated[list[str], title("Measurements")]
DeviceTypes = Annotated[list[str], title("Device types")]
StreamIds = Annotated[list[str], title("Stream ids")]
LookbackDays = Annotated[int, title("Lookback days")]
Since = Annotated[str, title("Since")]
