"""The programs bench_e2e.py runs as ``python -c``: a user's runeq scripts, the raw
download, the emulator in its own process (``motion_hours`` is not a flag of its CLI)."""

RUNEQ_COHORT = """
import sys, os
from runeq import initialize
from runeq.resources.patient import get_all_patients
from runeq.resources.stream_metadata import get_patient_stream_metadata
url, out, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
initialize(stream_url=url, graph_url=url, access_token_id=os.environ["RUNE_ACCESS_TOKEN_ID"],
           access_token_secret=os.environ["RUNE_ACCESS_TOKEN_SECRET"])
rows = 0
for patient in get_all_patients():
    for meta in get_patient_stream_metadata(patient.id):
        df = meta.get_stream_dataframe(start_time=start, end_time=end)
        df.to_parquet(os.path.join(out, meta.id + ".parquet"))
        rows += len(df)
print(rows)
"""

RUNEQ_STREAM = """
import sys, os
from runeq import initialize
from runeq.resources.stream_metadata import get_stream_metadata
url, out, sid, start, end = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
initialize(stream_url=url, graph_url=url, access_token_id=os.environ["RUNE_ACCESS_TOKEN_ID"],
           access_token_secret=os.environ["RUNE_ACCESS_TOKEN_SECRET"])
df = get_stream_metadata(sid).get_stream_dataframe(start_time=start, end_time=end)
df.to_parquet(os.path.join(out, sid + ".parquet"))
print(len(df))
"""

RAW = """
import sys, os, threading
from concurrent.futures import ThreadPoolExecutor
import requests
url, threads, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ids = sys.argv[5:]
local = threading.local()
def session():
    if not hasattr(local, "s"):
        local.s = requests.Session()
        local.s.headers.update({
            "X-Rune-User-Access-Token-Id": os.environ["RUNE_ACCESS_TOKEN_ID"],
            "X-Rune-User-Access-Token-Secret": os.environ["RUNE_ACCESS_TOKEN_SECRET"]})
    return local.s
def chain(sid):
    params = {"start_time_ns": lo, "end_time_ns": hi, "format": "csv",
              "timestamp": "unixns", "translate_enums": "True"}
    n = 0
    while True:
        r = session().get(f"{url}/v2/streams/{sid}", params=params, timeout=(10, 300))
        r.raise_for_status()
        n += max(r.content.count(b"\\n") - 1, 0)
        token = r.headers.get("X-Rune-Next-Page-Token")
        if not token:
            return n
        params["page_token"] = token
with ThreadPoolExecutor(threads) as pool:
    print(sum(pool.map(chain, ids)))
"""


EMULATOR = """
import sys, time
from datetime import datetime
from rune_emulator import EmulatorConfig, running_emulator
patients, days, page, motion, now = sys.argv[1:6]
cfg = EmulatorConfig(seed=0, patients=int(patients), days=int(days), page_size=int(page),
                     motion_hours=float(motion), now=datetime.fromisoformat(now))
with running_emulator(cfg) as emu:
    print(emu.url, flush=True)
    while True:
        time.sleep(3600)
"""
