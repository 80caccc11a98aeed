"""What every bench shares: payloads built from the real seed, stats, the table they print, and storage to run on.

Storage comes two ways, as the app reaches it: `azurite()` is plain HTTP with a connection string (local
runs); `identity_stack()` is how production reaches storage (HTTPS, bearer tokens from the managed-identity
endpoint, no key in the app's environment), stood in for by tests/azurite.py, tests/tls.py and
tests/fake_identity.py. Benches that time the app run it in a child process with `child_env(...)`, so the
process measured holds exactly the settings it would hold in Azure.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.storage.clients import Storage
    from tests.support.azurite import Azurite
    from tests.support.fake_identity import FakeIdentity

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SEED = DATA / "zapier" / "example-seed-app.json"
PATH_KEYS = ("activityPathLatitude", "activityPathLongitude", "activityPathAltitude", "activityPathType")
QUICK = os.environ.get("BENCH_QUICK") == "1"  # the smoke test's tiny mode: few runs, small sizes
MODES = ("connection string", "identity")  # how the app reaches storage; production uses identity

# Settings through which a child could reach storage another way than the one a bench gives it.
_STORAGE_ENV_PREFIXES = ("AzureWebJobsStorage", "AZURE_", "IDENTITY_", "MSI_", "IMDS_")


def seed() -> dict[str, str]:
    """The real payload Zapier posted (../shared/data), or a synthetic one of the same shape when absent."""
    if SEED.exists():
        return json.loads(SEED.read_text(encoding="utf-8"))
    from bench.bench_convert import make_payload

    return make_payload(298)


def payload(points: int, *, start_shift: timedelta = timedelta(0)) -> dict[str, str]:
    """The seed's track repeated (times continuing, one pause/resume per lap) to `points` points.

    `start_shift` moves the start, so that repeated posts are distinct activities, not replays.
    """
    base = seed()
    cols = {k: base[k].split(",") for k in (*PATH_KEYS, "activityPathTimestamp")}
    hr_t = [float(x) for x in base["activityHeartRateTimestamp"].split(",")]
    hr_bpm = base["activityHeartRateBpm"].split(",")
    times = [float(x) for x in cols["activityPathTimestamp"]]
    lap = times[-1] + 30.0
    size = len(times)
    out: dict[str, list[str]] = {k: [] for k in cols}
    out_hr_t: list[str] = []
    out_hr_bpm: list[str] = []
    laps = -(-points // size)
    for n in range(laps):
        take = min(size, points - n * size)
        for key in PATH_KEYS:
            out[key].extend(cols[key][:take])
        out["activityPathTimestamp"].extend(f"{t + n * lap:.3f}" for t in times[:take])
        kinds = out["activityPathType"]
        if n:  # a lap after the first resumes; one before it paused
            kinds[-take] = "resume"
            kinds[-take - 1] = "pause"
        last = times[take - 1]
        for t, bpm in zip(hr_t, hr_bpm, strict=True):
            if t <= last:
                out_hr_t.append(f"{t + n * lap:.3f}")
                out_hr_bpm.append(bpm)
    out["activityPathType"][0] = "start"
    out["activityPathType"][-1] = "end"
    start = datetime.fromisoformat(base["activityStartTimeIso"]) + start_shift
    result = dict(base)
    result.update({k: ",".join(v) for k, v in out.items()})
    result["activityHeartRateTimestamp"] = ",".join(out_hr_t)
    result["activityHeartRateBpm"] = ",".join(out_hr_bpm)
    result["activityStartTimeIso"] = start.isoformat()
    return result


def median_p99(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Row:
    """One line of a figure's table: the figure, its budget and whether it was met (`ok` None: reported only)."""

    case: str
    median: str
    worst: str  # p99, or max for a handful of runs
    budget: str = "-"
    ok: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "-" if self.ok is None else ("PASS" if self.ok else "MISS")


def print_table(title: str, rows: Sequence[Row], *, value: str = "median", worst: str | None = "p99") -> None:
    """The table every bench prints: case, median, p99 (or max; `worst=None`: no such column), budget, PASS/MISS;
    then each row's note."""
    head = ("case", value, *([worst] if worst else []), "budget", "verdict")
    cells = [head] + [(r.case, r.median, *([r.worst] if worst else []), r.budget, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    print(title)
    print(f"  ({machine()})")
    for i, c in enumerate(cells):
        print("  " + "  ".join(v.ljust(w) if j == 0 else v.rjust(w)
                               for j, (v, w) in enumerate(zip(c, widths, strict=True))))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        if r.note:
            print(f"  * {r.case}: {r.note}")
    print(flush=True)


def machine() -> str:
    """Cores and load: on a shared machine other processes' load moves every timing, p99 most."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores; load average {one:.1f} (1 min), {five:.1f} (5 min) as this was printed"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def connection_storage(conn: str) -> Storage:
    from shared.storage.clients import Storage

    return Storage.from_connection_string(conn)


@contextmanager
def azurite() -> Iterator[Azurite]:
    """A real Azurite for the bench's duration (tests/azurite.py), in memory, plain HTTP."""
    from tests.support.azurite import Azurite

    server = Azurite().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class IdentityStack:
    """Storage as production reaches it: HTTPS Azurite taking bearer tokens, and a managed-identity endpoint."""

    azurite: Azurite
    identity: FakeIdentity
    ca_bundle: Path

    @property
    def env(self) -> dict[str, str]:
        """The app's storage settings as in Azure: service URIs, managed identity, token endpoint; no key."""
        from tests.support.fake_identity import FAKE_CLIENT_ID

        return {
            "AzureWebJobsStorage__blobServiceUri": self.azurite.blob_url,
            "AzureWebJobsStorage__queueServiceUri": self.azurite.queue_url,
            "AzureWebJobsStorage__tableServiceUri": self.azurite.table_url,
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": FAKE_CLIENT_ID,
            **self.identity.env(),
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
        }

    @property
    def setup_storage(self) -> Storage:
        """The bench's own way in, with the account key: only to create what infra/ creates in Azure."""
        return connection_storage(self.azurite.connection_string)


def provision(storage: Storage) -> None:
    """Every queue, table and container the app uses: in Azure the template makes them, and the app makes none."""
    from shared.storage import clients as store

    for name in (store.ACTIVITY_QUEUE, store.POISON_QUEUE):
        store.queue(storage, name)
    for name in (store.ACTIVITY_LOG_TABLE, store.CONNECTIONS_TABLE, store.OAUTH_STATE_TABLE, store.USERS_TABLE):
        store.table(storage, name)
    store.container(storage, store.PAYLOAD_CONTAINER)


@contextmanager
def identity_stack() -> Iterator[IdentityStack]:
    """HTTPS Azurite with `--oauth basic`, the fake managed-identity endpoint, and every resource provisioned.

    Azurite runs without its debug log (the tests keep one to catch Shared Key requests; writing every
    request to it would slow what is timed here). The app's environment holds no key, so it cannot sign
    with one; `child_env` checks that.
    """
    from tests.support.azurite import Azurite
    from tests.support.fake_identity import FAKE_CLIENT_ID, FakeIdentity
    from tests.support.tls import TestTLS

    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        tls = TestTLS.create(Path(tmp))
        server = Azurite(oauth=True, tls=tls)
        server.debug = False
        identity = FakeIdentity(client_id=FAKE_CLIENT_ID)
        previous = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = str(tls.ca_bundle)  # the bench's own setup speaks HTTPS too
        server.start()
        identity.start()
        try:
            stack = IdentityStack(server, identity, tls.ca_bundle)
            provision(stack.setup_storage)
            yield stack
        finally:
            identity.stop()
            server.stop()
            if previous is None:
                os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = previous


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any storage or identity setting, plus `settings`: what a child app gets.

    With identity settings, refuses to hand over anything that holds an account key.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STORAGE_ENV_PREFIXES)}
    env.update(settings)
    if "AzureWebJobsStorage" not in settings:
        from tests.support.azurite import ACCOUNT_KEY

        keyed = [k for k, v in env.items() if "accountkey=" in v.lower() or ACCOUNT_KEY in v]
        if keyed:
            raise RuntimeError(f"an identity-mode child would get an account key in {', '.join(keyed)}")
    return env


@contextmanager
def app_storage(mode: str) -> Iterator[tuple[dict[str, str], FakeIdentity | None]]:
    """(the app's storage settings, the identity endpoint when there is one) for one of MODES, while in use."""
    if mode == "identity":
        with identity_stack() as stack:
            yield stack.env, stack.identity
    else:
        with azurite() as server:
            yield {"AzureWebJobsStorage": server.connection_string}, None
