"""scripts/run-local (`make run`) finding or installing Azure Functions Core Tools, run with fake tools.

Each test copies the script into an empty folder (its own `.tools/`) and runs it with a PATH holding only
the few commands it needs and fakes for `npm` (and `func`, `azurite`): the real `npm install` of
azure-functions-core-tools@4 downloads its binary from Microsoft's CDN, which these machines cannot reach,
and fails exactly the way the `cdn` fake below replays.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run-local"
NEEDED = ["bash", "env", "dirname", "grep", "sed", "head", "tail", "rm", "mkdir", "cp", "cat", "sleep", "ln"]

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in NEEDED), reason="needs bash and coreutils"
)

# What npm prints when the package's postinstall cannot reach the CDN (seen here, npm 11, Node 20).
CDN_FAILURE = """\
npm error code 1
npm error path {prefix}/node_modules/azure-functions-core-tools
npm error command failed
npm error command sh -c node lib/install.js
npm error attempting to GET "https://cdn.functions.azure.com/public/4.0.296705/Azure.Functions.Cli.linux-x64.4.13.2.zip"
npm error Error: getaddrinfo ENOTFOUND cdn.functions.azure.com
npm error A complete log of this run can be found in: /root/.npm/_logs/debug-0.log
"""

REGISTRY_FAILURE = """\
npm error code ENOTFOUND
npm error syscall getaddrinfo
npm error errno ENOTFOUND
npm error network request to https://registry.npmjs.org/azure-functions-core-tools failed
"""

# The fake npm: logs its arguments; `install` behaves as $FAKE_NPM says, `uninstall` succeeds.
FAKE_NPM = r"""#!/usr/bin/env bash
echo "$*" >>"$NPM_CALLS"
prefix=.
args=("$@")
for i in "${!args[@]}"; do
  if [ "${args[$i]}" = "--prefix" ]; then prefix=${args[$((i + 1))]}; fi
done
if [ "$1" = "uninstall" ]; then  # takes it out of package.json, as npm does
  sed -i 's/"azure-functions-core-tools": *"[^"]*", *//' "$prefix/package.json"
  exit 0
fi
bin="$prefix/node_modules/.bin"
case "$FAKE_NPM" in
  cdn)  # npm rolls the package back but leaves its command links behind
    mkdir -p "$bin"
    for name in func azfun azurefunctions; do ln -sf ../azure-functions-core-tools/lib/main.js "$bin/$name"; done
    sed "s#{prefix}#$prefix#" "$CDN_FAILURE_TEXT" >&2
    exit 1 ;;
  registry)
    cat "$REGISTRY_FAILURE_TEXT" >&2
    exit 1 ;;
  ok)
    mkdir -p "$bin" "$prefix/node_modules/azure-functions-core-tools/lib"
    cp "$FAKE_FUNC" "$prefix/node_modules/azure-functions-core-tools/lib/main.js"
    ln -sf ../azure-functions-core-tools/lib/main.js "$bin/func"
    echo "added 18 packages in 1s"
    exit 0 ;;
  *)
    echo "npm should not have been called" >&2
    exit 99 ;;
esac
"""

FAKE_FUNC = """#!/usr/bin/env bash
case "$1" in
  --version) echo 4.13.2 ;;
  start) echo "fake func start in $PWD" ;;
  *) exit 2 ;;
esac
"""

# npm's wrapper whose binary never arrived: `func --version` tries the download again, and fails.
HALF_INSTALLED_FUNC = """#!/usr/bin/env bash
echo 'Azure Functions Core Tools binary not found. Running first-time setup...'
echo 'attempting to GET "https://cdn.functions.azure.com/public/4.0.296705/Azure.Functions.Cli.linux-x64.4.13.2.zip"'
echo 'Error: getaddrinfo ENOTFOUND cdn.functions.azure.com' >&2
exit 1
"""

BY_HAND = [
    "npm i -g azure-functions-core-tools@4 --unsafe-perm true",
    "sudo apt-get install azure-functions-core-tools-4",
    "Microsoft's package repository",
    "brew tap azure/functions && brew install azure-functions-core-tools@4",
    "winget install Microsoft.Azure.FunctionsCoreTools",
    "https://learn.microsoft.com/azure/azure-functions/functions-run-local",
]


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


class Sandbox:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "app"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool in NEEDED:
            (self.bin / tool).symlink_to(shutil.which(tool) or tool)
        executable(self.root / "scripts" / "run-local", SCRIPT.read_text())
        self.calls = tmp_path / "npm-calls.txt"
        self.calls.touch()
        self.env = {
            "PATH": str(self.bin),  # no func, and npm only as the fake
            "HOME": str(tmp_path),
            "NPM_CALLS": str(self.calls),
            "CDN_FAILURE_TEXT": str(executable(tmp_path / "cdn.txt", CDN_FAILURE)),
            "REGISTRY_FAILURE_TEXT": str(executable(tmp_path / "registry.txt", REGISTRY_FAILURE)),
            "FAKE_FUNC": str(executable(tmp_path / "fake-func", FAKE_FUNC)),
            "FAKE_NPM": "none",
        }
        executable(self.bin / "npm", FAKE_NPM)

    @property
    def tools_bin(self) -> Path:
        return self.root / ".tools" / "node_modules" / ".bin"

    def run(self, *args: str, npm: str = "none") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.root / "scripts" / "run-local"), *args],
            cwd=self.root,
            env={**self.env, "FAKE_NPM": npm},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def npm_calls(self) -> list[str]:
        return self.calls.read_text().splitlines()


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def assert_no_core_tools_left(box: Sandbox) -> None:
    for name in ["func", "azfun", "azurefunctions"]:
        assert not os.path.lexists(box.tools_bin / name), f"{name} left behind"  # no dangling link either
    assert not (box.root / ".tools" / "node_modules" / "azure-functions-core-tools").exists()


def test_cdn_failure_says_so_and_how_to_install_by_hand(box: Sandbox) -> None:
    done = box.run(npm="cdn")
    assert done.returncode != 0
    assert "installing azure-functions-core-tools@4 from npm into .tools/" in done.stdout
    err = done.stderr
    assert "Azure Functions Core Tools (`func`) is not installed" in err
    assert "could not download the `func` binary" in err and "cdn.functions.azure.com" in err
    assert "ENOTFOUND" in err  # npm's own words, not only ours
    for line in BY_HAND:
        assert line in err
    assert box.npm_calls() == ["install --no-audit --no-fund --prefix .tools azure-functions-core-tools@4"]
    assert_no_core_tools_left(box)  # the next `make run` does not mistake a dangling `func` for a working one
    assert not (box.root / ".azurite").exists() and not (box.root / "local.settings.json").exists()


def test_a_half_installed_func_is_not_trusted_and_the_install_is_tried_again(box: Sandbox) -> None:
    executable(box.root / ".tools" / "node_modules" / "azure-functions-core-tools" / "lib" / "main.js",
               HALF_INSTALLED_FUNC)
    box.tools_bin.mkdir(parents=True)
    (box.tools_bin / "func").symlink_to("../azure-functions-core-tools/lib/main.js")
    (box.root / ".tools" / "package.json").write_text(
        json.dumps({"dependencies": {"azure-functions-core-tools": "^4.13.2", "azurite": "^3.35.0"}})
    )
    done = box.run("--core-tools-only", npm="cdn")
    assert done.returncode != 0
    assert "could not download the `func` binary" in done.stderr
    # Taken out of .tools/package.json too, or the Makefile's next Azurite install would try it again.
    assert box.npm_calls() == [
        "uninstall --silent --no-audit --no-fund --prefix .tools azure-functions-core-tools",
        "install --no-audit --no-fund --prefix .tools azure-functions-core-tools@4",
    ]
    assert_no_core_tools_left(box)

    again = box.run("--core-tools-only", npm="cdn")
    assert again.returncode != 0 and "could not download the `func` binary" in again.stderr
    assert box.npm_calls()[-1] == "install --no-audit --no-fund --prefix .tools azure-functions-core-tools@4"


def test_another_npm_failure_is_not_blamed_on_the_cdn(box: Sandbox) -> None:
    done = box.run(npm="registry")
    assert done.returncode != 0
    assert "`npm install --prefix .tools azure-functions-core-tools@4` failed (exit 1)" in done.stderr
    assert "registry.npmjs.org" in done.stderr
    assert "cdn.functions.azure.com" not in done.stderr
    for line in BY_HAND:
        assert line in done.stderr


def test_without_npm_it_says_so(box: Sandbox) -> None:
    (box.bin / "npm").unlink()
    done = box.run()
    assert done.returncode != 0
    assert "npm is not installed either" in done.stderr
    assert "winget install Microsoft.Azure.FunctionsCoreTools" in done.stderr


def test_a_working_func_on_path_is_used_and_npm_is_not_called(box: Sandbox) -> None:
    executable(box.bin / "func", FAKE_FUNC)
    done = box.run("--core-tools-only")
    assert done.returncode == 0, done.stderr
    assert "Azure Functions Core Tools 4.13.2: func" in done.stdout
    assert box.npm_calls() == []


def test_installs_core_tools_into_tools_prints_the_local_urls_then_starts(box: Sandbox) -> None:
    (box.bin / "python").symlink_to(os.path.realpath(sys.executable))  # reads LocalHttpPort
    executable(box.tools_bin / "azurite", "#!/usr/bin/env bash\nexec sleep 60\n")
    (box.root / ".venv" / "bin").mkdir(parents=True)
    (box.root / ".venv" / "bin" / "activate").write_text("")
    settings = {"IsEncrypted": False, "Values": {}, "Host": {"LocalHttpPort": 7072}}
    (box.root / "local.settings.json.example").write_text(json.dumps(settings))

    done = box.run(npm="ok")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Installed Azure Functions Core Tools 4.13.2 (.tools/node_modules/.bin/func)." in out
    assert "Azurite started" in out
    urls = out.index("http://localhost:7072/api/runkeeper")
    assert "http://localhost:7072/api/activities" in out
    assert "http://localhost:7072/api/strava/connect?key=<SYNC_API_KEY>" in out
    assert urls < out.index(f"fake func start in {box.root}")  # the address comes before `func start`
    assert (box.root / "local.settings.json").exists()
