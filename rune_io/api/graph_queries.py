"""The GraphQL query text of the metadata API (:mod:`rune_io.api.graph` sends it).

The text is that of runeq 0.18.1 (field names, argument and variable types), minus its
aliases. Every list asks for its ``pageInfo`` cursor (``endCursor``, or
``codeNameEndCursor`` for project and cohort patients).
"""

from __future__ import annotations

_ORG_FIELDS = "id displayName created orgTags"
_DEVICE_FIELDS = "deviceShortId alias createdAt deviceType { id } disabled disabledAt updatedAt"
_STREAM_FIELDS = """
    id createdAt algorithm deviceId patientId minTime maxTime
    parameters { key value }
    streamType {
        id name description
        shape { dimensions {
            identifier dataType quantityName quantityAbbrev unitName unitAbbrev
        } }
    }
"""
_COHORT_FIELDS = "id title description createdAt updatedAt createdBy updatedBy"
_PROJECT_FIELDS = f"""
    id title status description type
    cohortList {{ cohorts {{ {_COHORT_FIELDS} }} }}
    createdAt updatedAt startedAt createdBy updatedBy
"""
_PATIENT_ACCESS = "patientAccessList { patientAccess { org { id } startTime endTime } }"

Q_USER = f"""
query getUser {{
    user {{ id created displayName email defaultMembership {{ org {{ {_ORG_FIELDS} }} }} }}
}}"""

Q_ORGS = f"""
query getOrgMemberships($cursor: Cursor) {{
    user {{ membershipList(cursor: $cursor) {{
        pageInfo {{ endCursor }}
        memberships {{ org {{ {_ORG_FIELDS} }} }}
    }} }}
}}"""

M_SET_ORG = f"""
mutation updateDefaultMembership($input: UpdateDefaultMembershipInput!) {{
    updateDefaultMembership(input: $input) {{
        user {{ defaultMembership {{ org {{ {_ORG_FIELDS} }} }} }}
    }}
}}"""

Q_PATIENT = f"""
query getPatient($patient_id: ID!, $cursor: Cursor) {{
    patient(id: $patient_id) {{
        id codeName createdAt
        deviceList(cursor: $cursor) {{ pageInfo {{ endCursor }} devices {{ {_DEVICE_FIELDS} }} }}
    }}
}}"""

Q_PATIENTS = f"""
query getPatientList($patient_cursor: Cursor, $device_cursor: Cursor) {{
    org {{ patientAccessList(cursor: $patient_cursor) {{
        pageInfo {{ endCursor }}
        patientAccess {{ patient {{
            id codeName createdAt
            deviceList(cursor: $device_cursor) {{
                pageInfo {{ endCursor }} devices {{ {_DEVICE_FIELDS} }}
            }}
        }} }}
    }} }}
}}"""

Q_PROJECT = f"""
query getProject($id: ID) {{ project(id: $id) {{ {_PROJECT_FIELDS} organizationId }} }}"""

Q_PROJECTS = f"""
query getProjects($cursor: DateTimeUUIDCursor) {{
    org {{ id projectList(cursor: $cursor) {{
        projects {{ {_PROJECT_FIELDS} organizationId }}
        pageInfo {{ endCursor }}
    }} }}
}}"""

Q_PROJECT_PATIENTS = f"""
query getProjectPatients($id: ID, $cursorInput: CursorInput) {{
    project(id: $id) {{
        organizationId
        projectPatientList(cursorInput: $cursorInput) {{
            projectPatients {{
                patient {{ id {_PATIENT_ACCESS} }}
                codeName createdAt updatedAt createdBy updatedBy
            }}
            pageInfo {{ codeNameEndCursor }}
        }}
    }}
}}"""

Q_COHORT_PATIENTS = f"""
query getCohortPatients($id: ID, $cursorInput: CursorInput) {{
    cohort(id: $id) {{
        id organizationId
        cohortPatientList(cursorInput: $cursorInput) {{
            cohortPatients {{
                patient {{ id {_PATIENT_ACCESS} }}
                codeName createdAt updatedAt createdBy updatedBy
            }}
            pageInfo {{ codeNameEndCursor }}
        }}
    }}
}}"""

Q_STREAM_TYPES = """
query getStreamTypes {
    streamTypeList { streamTypes {
        id name description
        shape { dimensions {
            identifier dataType quantityName quantityAbbrev unitName unitAbbrev
        } }
    } }
}"""

Q_STREAMS = f"""
query getStreamList($cursor: Cursor, $filters: StreamQueryFilters) {{
    streamList(filters: $filters, cursor: $cursor) {{
        pageInfo {{ endCursor }}
        streams {{ {_STREAM_FIELDS} }}
    }}
}}"""

Q_STREAMS_BY_IDS = f"""
query getStreamListByIds($stream_ids: [String]) {{
    streamListByIds(streamIds: $stream_ids) {{
        pageInfo {{ endCursor }}
        streams {{ {_STREAM_FIELDS} }}
    }}
}}"""

Q_EVENTS = """
query getEventList(
    $patient_id: ID!, $cursor: Cursor, $start_time: Float!, $end_time: Float!,
    $include_filters: [EventClassificationFilter]
) {
    patient(id: $patient_id) {
        eventList(
            startTime: $start_time, endTime: $end_time, cursor: $cursor,
            includeFilters: $include_filters
        ) {
            events {
                id displayName customDetail { displayName }
                duration { startTime endTime endTimeMax }
                payload classification { namespace category enum } tags { name }
                method createdAt updatedAt
            }
            pageInfo { endCursor }
        }
    }
}"""
