"""GraphQL schema (SDL) of the Rune metadata API, as far as the contract describes it."""

from __future__ import annotations

from graphql import GraphQLSchema, build_schema

SDL = """
scalar Cursor
scalar DateTimeUUIDCursor

type Query {
  user: User
  org: Org
  patient(id: ID!): Patient
  streamList(filters: StreamQueryFilters, cursor: Cursor): StreamList
  streamListByIds(streamIds: [String]): StreamList
  streamTypeList(cursor: Cursor): StreamTypeList
  project(id: ID): Project
  cohort(id: ID): Cohort
}

type Mutation {
  updateDefaultMembership(input: UpdateDefaultMembershipInput!): UpdateDefaultMembershipPayload
}

input UpdateDefaultMembershipInput { orgId: String! }
type UpdateDefaultMembershipPayload { user: User }

type PageInfo {
  endCursor: Cursor
  codeNameEndCursor: String
}

type User {
  id: ID!
  displayName: String
  email: String
  created: Float
  defaultMembership: Membership
  membershipList(cursor: Cursor): MembershipList
}

type Membership { org: Org }
type MembershipList { memberships: [Membership] pageInfo: PageInfo }

type Org {
  id: ID!
  displayName: String
  created: Float
  orgTags: [String]
  patientAccessList(cursor: Cursor): PatientAccessList
  projectList(cursor: DateTimeUUIDCursor): ProjectList
}

type PatientAccess {
  patient: Patient
  org: Org
  startTime: Float
  endTime: Float
}
type PatientAccessList { patientAccess: [PatientAccess] pageInfo: PageInfo }

type DeviceType { id: ID! displayName: String }

type Device {
  id: ID!
  deviceShortId: String
  alias: String
  createdAt: Float
  updatedAt: Float
  disabled: Boolean
  disabledAt: Float
  deviceType: DeviceType
}
type DeviceList { devices: [Device] pageInfo: PageInfo }

input EventClassificationFilter { namespace: String category: String enum: String }

type Patient {
  id: ID!
  codeName: String
  createdAt: Float
  deviceList(cursor: Cursor): DeviceList
  eventList(startTime: Float!, endTime: Float!, cursor: Cursor,
            includeFilters: [EventClassificationFilter]): EventList
  patientAccessList(cursor: Cursor): PatientAccessList
}

type EventCustomDetail { displayName: String }
type EventDuration { startTime: Float endTime: Float endTimeMax: Float }
type EventClassification { namespace: String category: String enum: String }
type EventTag { name: String }
type Event {
  id: ID!
  displayName: String
  customDetail: EventCustomDetail
  duration: EventDuration
  payload: String
  classification: EventClassification
  tags: [EventTag]
  method: String
  createdAt: Float
  updatedAt: Float
}
type EventList { events: [Event] pageInfo: PageInfo }

input StreamParameterInput { key: String! value: String }
input StreamQueryFilters {
  patientId: String
  deviceId: String
  streamTypeId: String
  algorithm: String
  parameters: [StreamParameterInput]
}

type StreamParameter { key: String value: String }
type Dimension {
  identifier: String
  dataType: String
  quantityName: String
  quantityAbbrev: String
  unitName: String
  unitAbbrev: String
}
type StreamTypeShape { dimensions: [Dimension] }
type StreamType { id: ID! name: String description: String shape: StreamTypeShape }
type StreamTypeList { streamTypes: [StreamType] pageInfo: PageInfo }

type Stream {
  id: ID!
  createdAt: Float
  algorithm: String
  deviceId: String
  patientId: String
  minTime: Float
  maxTime: Float
  parameters: [StreamParameter]
  streamType: StreamType
}
type StreamList { streams: [Stream] pageInfo: PageInfo }

input CursorInput { codeNameCursor: String }

type Cohort {
  id: ID!
  title: String
  description: String
  organizationId: String
  createdAt: Float
  updatedAt: Float
  createdBy: String
  updatedBy: String
  cohortPatientList(cursorInput: CursorInput, cursor_input: CursorInput): ProjectPatientList
}
type CohortList { cohorts: [Cohort] pageInfo: PageInfo }

type ProjectPatient {
  patient: Patient
  codeName: String
  createdAt: Float
  updatedAt: Float
  createdBy: String
  updatedBy: String
}
type ProjectPatientList {
  projectPatients: [ProjectPatient]
  cohortPatients: [ProjectPatient]
  pageInfo: PageInfo
}

type Project {
  id: ID!
  title: String
  status: String
  description: String
  type: String
  organizationId: String
  createdAt: Float
  updatedAt: Float
  startedAt: Float
  createdBy: String
  updatedBy: String
  cohortList: CohortList
  projectPatientList(cursorInput: CursorInput, cursor_input: CursorInput): ProjectPatientList
}
type ProjectList { projects: [Project] pageInfo: PageInfo }
"""


def build() -> GraphQLSchema:
    """The schema without resolvers (see :mod:`.graphql_resolvers`)."""
    return build_schema(SDL)
