"""The Rune API side: one HTTP session with a retry policy, cursor paging, the GraphQL
metadata API, the V2 stream reader (CSV pages → Arrow record batches) and the seed V1
endpoints.

- :mod:`~rune_io.api.http`, :mod:`~rune_io.api.retry`: the session, timeouts, retries.
- :mod:`~rune_io.api.paginators`: every cursor the API uses, driven by one loop.
- :mod:`~rune_io.api.graph`: orgs, patients, devices, streams, events (GraphQL); its query
  text in :mod:`~rune_io.api.graph_queries`, object parsing in :mod:`~rune_io.api.graph_records`.
- :mod:`~rune_io.api.streams` (the reader), :mod:`~rune_io.api.csv_page` (one page),
  :mod:`~rune_io.api.parallel_read` (worker threads), :mod:`~rune_io.api.arrow_schema`:
  stream data as Arrow.
- :mod:`~rune_io.api.v1`: the V1 endpoints.
- :mod:`~rune_io.api.models`: the metadata records; :mod:`~rune_io.api.client`: all of it
  behind one object.
"""
