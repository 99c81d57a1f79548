"""Smoke test of the frozen Vigil: the bundle in dist/vigil/ and, optionally, its .deb.

Runs the frozen binary the way IT would, with no Python on PATH, a throw-away
home and user data directory, and (as root) no network at all:

1. ``vigil --version``
2. ``vigil run --demo --headless --seconds 10 --stats-json F``: exit 0, F holds
   JSON with ``beds == 8``; the time from launch to the "window shown" log line
   is measured, and the store file appears in the user data directory.
3. ``vigil analyze <bundled record 119> --out DIR`` when the build has it
   (``vigil --help`` lists it or ``vigil analyze --help`` answers); it must then
   write its output.
4. ``vigil --bundle-check``: torch, captum, safetensors, wfdb, SciPy, SQLite,
   bleak's BlueZ backend and Qt/pyqtgraph offscreen, all from the bundle.
5. The install folder is unchanged afterwards (data goes to the user's folder).
6. With ``--deb``: ``dpkg -i``, ``/usr/bin/vigil --version``, a short demo run of
   the installed copy (``/opt/vigil`` stays unchanged), ``dpkg -r vigil``.

Any non-zero exit, empty stats, or one of :data:`FORBIDDEN_MARKERS` in a
command's output fails the test.  Uses the standard library only.

Usage::

    python packaging/smoke_test.py [--dist dist/vigil] [--deb dist/vigil_X_amd64.deb]
                                   [--report out.json] [--max-window-s 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

#: Output that means the frozen app is broken even when it exits 0.
FORBIDDEN_MARKERS: Final = (
    "Traceback",
    "ImportError",
    "ModuleNotFoundError",
    "Fatal Python error",
)
#: Beds in the built-in demo ward.
DEMO_BEDS: Final = 8
#: The log line Vigil writes when its main window is up (app/run.py).
WINDOW_SHOWN_MARKER: Final = '"window shown"'
RUN_SECONDS: Final = 10
#: Generous per-command limits: the build machine is shared and may be busy.
TIMEOUT_S: Final = 240
#: Licence and attribution files the bundle must carry (globs under _internal/).
BUNDLED_NOTICES: Final = (
    "resources/demo/ATTRIBUTION.md",
    "licenses/THIRD-PARTY.txt",
    "licenses/Python/LICENSE.txt",
    "licenses/PySide6*/LGPL-3",
    "licenses/torch/*",
)
#: The bundled record `analyze` is run on (MIT-BIH 119), relative to the resources folder.
ANALYZE_RECORD: Final = Path("demo") / "119"


def scan_output(text: str) -> list[str]:
    """Lines of ``text`` that contain a forbidden marker (empty list: clean)."""
    return [line for line in text.splitlines() if any(m in line for m in FORBIDDEN_MARKERS)]


def lists_subcommand(help_text: str, name: str) -> bool:
    """Whether ``vigil --help`` output offers subcommand ``name``."""
    for line in help_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("{") and name in stripped.strip("{}").split(","):
            return True
        if stripped.split(" ", 1)[0] == name:
            return True
    return False


def tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path → (size, mtime_ns) of every file and folder under ``root``."""
    snap: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            snap[str(p.relative_to(root))] = (
                st.st_size if name in filenames else 0,
                st.st_mtime_ns,
            )
    return snap


def tree_changes(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> list[str]:
    """Paths added, removed or modified between two snapshots."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return [f"+{p}" for p in added] + [f"-{p}" for p in removed] + [f"~{p}" for p in changed]


def disk_usage_mb(root: Path) -> float:
    """Disk space used by ``root`` in MiB (like ``du -s``; hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = (Path(dirpath) / name).lstat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return round(total / 2**20, 1)


@dataclass
class Result:
    """What one command did."""

    name: str
    argv: list[str]
    returncode: int
    seconds: float
    output: str
    stdout: str = ""
    extra: dict = field(default_factory=dict)


class SmokeTest:
    """Runs the checks and collects failures and measurements."""

    def __init__(self, workdir: Path, isolate_network: bool) -> None:
        self.workdir = workdir
        self.failures: list[str] = []
        self.report: dict = {"steps": []}
        self.home = workdir / "home"
        self.data_home = workdir / "data"
        for d in (self.home, self.data_home, workdir / "config", workdir / "cache"):
            d.mkdir(parents=True, exist_ok=True)
        self.prefix = ["unshare", "--net", "--"] if isolate_network else []
        self.report["network"] = "none (unshare --net)" if isolate_network else "host network"

    def env(self) -> dict[str, str]:
        """A clean environment: no Python, no display, a throw-away home."""
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.data_home),
            "XDG_CONFIG_HOME": str(self.workdir / "config"),
            "XDG_CACHE_HOME": str(self.workdir / "cache"),
            "LANG": "C.UTF-8",
            "QT_QPA_PLATFORM": "offscreen",
            "OMP_NUM_THREADS": "1",
            "DEBIAN_FRONTEND": "noninteractive",
        }

    def fail(self, message: str) -> None:
        self.failures.append(message)
        sys.stderr.write(f"smoke: FAIL {message}\n")

    def run(self, name: str, argv: list[str], *, watch_window: bool = False) -> Result:
        """Run one command, scan its output, record it; fails on non-zero exit."""
        t0 = time.monotonic()
        proc = subprocess.Popen(
            self.prefix + argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=self.env(),
            text=True,
            errors="replace",
        )
        window_at: list[float] = []
        err_lines: list[str] = []

        def read_stderr() -> None:
            for line in proc.stderr:
                if watch_window and not window_at and WINDOW_SHOWN_MARKER in line:
                    window_at.append(time.monotonic() - t0)
                err_lines.append(line)

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            stdout = proc.stdout.read()
            proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.fail(f"{name}: no exit within {TIMEOUT_S} s")
            stdout = ""
        reader.join(timeout=10)
        seconds = round(time.monotonic() - t0, 2)
        output = stdout + "".join(err_lines)
        result = Result(name, argv, proc.returncode, seconds, output, stdout)
        if window_at:
            result.extra["launch_to_window_s"] = round(window_at[0], 2)
        step = {
            "step": name,
            "argv": argv,
            "returncode": proc.returncode,
            "seconds": seconds,
            "warning_lines": sum("Warning:" in line for line in output.splitlines()),
        }
        step.update(result.extra)
        self.report["steps"].append(step)
        sys.stderr.write(f"smoke: {name}: exit {proc.returncode} in {seconds} s\n")
        if proc.returncode != 0:
            self.fail(f"{name}: exit status {proc.returncode}\n{output[-3000:]}")
        bad = scan_output(output)
        if bad:
            self.fail(f"{name}: forbidden output:\n" + "\n".join(bad[:20]))
        return result

    # -- the checks ------------------------------------------------------------------
    def check_bundle(self, binary: Path, version: str | None, max_window_s: float | None) -> None:
        """Steps 1-5 on one copy of the frozen app."""
        install_dir = binary.resolve().parent
        before = tree_snapshot(install_dir)
        internal = install_dir / "_internal"
        for pattern in BUNDLED_NOTICES:
            if not any(internal.glob(pattern)):
                self.fail(f"bundle: nothing matches _internal/{pattern} (licences, attributions)")
        r = self.run("version", [str(binary), "--version"])
        if version and f"vigil {version}" not in r.output:
            self.fail(f"version: expected 'vigil {version}', got {r.output.strip()!r}")
        help_text = self.run("help", [str(binary), "--help"]).output

        stats_path = self.workdir / "stats.json"
        r = self.run(
            "run-demo",
            [
                str(binary),
                "run",
                "--demo",
                "--headless",
                "--seconds",
                str(RUN_SECONDS),
                "--stats-json",
                str(stats_path),
            ],
            watch_window=True,
        )
        self.check_stats(stats_path, r, max_window_s)
        stores = sorted((self.data_home / "vigil").glob("vigil.sqlite*"))
        self.report["store_in_user_data_dir"] = [str(p.relative_to(self.data_home)) for p in stores]
        if not stores:
            self.fail(
                f"run-demo: no vigil.sqlite* in {self.data_home / 'vigil'}"
                " (data must go to the user data directory)"
            )

        if self.offers_subcommand(binary, help_text, "analyze"):
            record = install_dir / "_internal" / "resources" / ANALYZE_RECORD
            out_dir = self.workdir / "analyze"
            self.run("analyze", [str(binary), "analyze", str(record), "--out", str(out_dir)])
            if not out_dir.is_dir() or not any(out_dir.iterdir()):
                self.fail(f"analyze: wrote nothing to {out_dir}")
        else:
            self.report["analyze"] = (
                "not in this build (neither `vigil --help` nor `vigil analyze --help` offers it)"
            )
            sys.stderr.write("smoke: analyze: not in this build, skipped\n")

        r = self.run("bundle-check", [str(binary), "--bundle-check"])
        try:
            checks = json.loads(r.stdout)
            self.report["bundle_check"] = {c["check"]: c["seconds"] for c in checks["checks"]}
            if not checks.get("ok"):
                self.fail(
                    "bundle-check: " + json.dumps([c for c in checks["checks"] if not c["ok"]])
                )
        except (ValueError, KeyError, TypeError):
            self.fail(f"bundle-check: no JSON report: {r.stdout[:500]!r}")

        changes = tree_changes(before, tree_snapshot(install_dir))
        if changes:
            self.fail(f"the app wrote into its install folder {install_dir}: {changes[:20]}")

    def offers_subcommand(self, binary: Path, help_text: str, name: str) -> bool:
        """Whether this build has subcommand ``name``: listed in --help, or its own --help works.

        The probe is not a test step: a build without the subcommand fails it.
        """
        if lists_subcommand(help_text, name):
            return True
        probe = subprocess.run(
            [*self.prefix, str(binary), name, "--help"],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=TIMEOUT_S,
        )
        return probe.returncode == 0 and f"usage: vigil {name}" in probe.stdout

    def check_stats(self, stats_path: Path, r: Result, max_window_s: float | None) -> None:
        if not stats_path.is_file() or stats_path.stat().st_size == 0:
            self.fail(f"run-demo: stats file {stats_path} missing or empty")
            return
        try:
            stats = json.loads(stats_path.read_text())
        except ValueError as exc:
            self.fail(f"run-demo: stats file is not JSON: {exc}")
            return
        if not stats:
            self.fail("run-demo: stats JSON is empty")
            return
        if stats.get("beds") != DEMO_BEDS:
            self.fail(f"run-demo: beds = {stats.get('beds')!r}, expected {DEMO_BEDS}")
        samples = stats.get("samples", {})
        self.report["run_demo"] = {
            "startup_s": stats.get("startup_s"),
            "launch_to_window_s": r.extra.get("launch_to_window_s"),
            "fps_median": stats.get("fps", {}).get("median"),
            "samples_received": samples.get("received"),
            "samples_dropped": samples.get("dropped"),
            "peak_rss_mb": stats.get("peak_rss_mb"),
        }
        if not samples.get("received"):
            self.fail("run-demo: no samples received")
        window_s = r.extra.get("launch_to_window_s")
        if window_s is None:
            self.fail("run-demo: the 'window shown' log line never appeared")
        elif max_window_s is not None and window_s > max_window_s:
            self.fail(f"run-demo: window up {window_s} s after launch (limit {max_window_s} s)")

    def install_deb(self, deb: Path) -> None:
        """``dpkg -i``, after apt has brought any Depends this machine lacks."""
        missing = _missing_depends(deb)
        self.report["depends_installed_by_apt"] = missing
        if missing:
            # Like IT's `apt install ./vigil_*.deb`: the system libraries come from Debian.
            self.prefix, saved = [], self.prefix  # apt needs the network (package mirror)
            try:
                self.run("apt-update", ["apt-get", "update", "-qq"])
                self.run(
                    "apt-install-depends",
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                )
            finally:
                self.prefix = saved
        self.run("dpkg-install", ["dpkg", "-i", str(deb)])

    def check_deb(self, deb: Path, version: str | None) -> None:
        """Step 6: install, run, remove."""
        contents = subprocess.run(
            ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
        ).stdout
        for needed in (
            "./opt/vigil/vigil",
            "./usr/bin/vigil",
            "./usr/share/applications/vigil.desktop",
            "./usr/share/icons/hicolor/scalable/apps/vigil.svg",
            "./usr/share/doc/vigil/copyright",
        ):
            if needed not in contents:
                self.fail(f"deb: {needed} missing from the package")
        self.install_deb(deb)
        try:
            binary = Path("/usr/bin/vigil")
            r = self.run("installed-version", [str(binary), "--version"])
            if version and f"vigil {version}" not in r.output:
                self.fail(f"installed-version: got {r.output.strip()!r}")
            before = tree_snapshot(Path("/opt/vigil"))
            stats_path = self.workdir / "installed-stats.json"
            self.run(
                "installed-run-demo",
                [
                    str(binary),
                    "run",
                    "--demo",
                    "--headless",
                    "--seconds",
                    "3",
                    "--stats-json",
                    str(stats_path),
                ],
                watch_window=True,
            )
            changes = tree_changes(before, tree_snapshot(Path("/opt/vigil")))
            if changes:
                self.fail(f"the installed app wrote into /opt/vigil: {changes[:20]}")
            if not stats_path.is_file():
                self.fail("installed-run-demo: no stats file")
        finally:
            self.run("dpkg-remove", ["dpkg", "-r", "vigil"])
        for leftover in (Path("/opt/vigil"), Path("/usr/bin/vigil")):
            if leftover.exists() or leftover.is_symlink():
                self.fail(f"dpkg-remove: {leftover} is still there")


def _missing_depends(deb: Path) -> list[str]:
    """Packages named in the .deb's Depends that are not installed here."""
    depends = subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Depends"], capture_output=True, text=True, check=True
    ).stdout
    missing = []
    for clause in depends.split(","):
        name = clause.split("(")[0].split("|")[0].strip()
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True
        ).stdout
        if name and "install ok installed" not in status:
            missing.append(name)
    return missing


def _network_isolation_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    """Run the smoke test; exit status 0 when everything passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--dist", type=Path, default=root / "dist" / "vigil")
    parser.add_argument("--deb", type=Path, help="also install, run and remove this .deb (root)")
    parser.add_argument("--version", dest="expect_version", help="expected version string")
    parser.add_argument("--report", type=Path, help="write measurements as JSON here")
    parser.add_argument("--max-window-s", type=float, help="fail if the window takes longer")
    args = parser.parse_args(argv)

    binary = args.dist / "vigil"
    if not binary.is_file():
        sys.stderr.write(f"smoke: {binary} not found: build first (bash packaging/build.sh)\n")
        return 2
    if args.deb and os.geteuid() != 0:
        sys.stderr.write("smoke: installing the .deb needs root\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="vigil-smoke-") as tmp:
        smoke = SmokeTest(Path(tmp), isolate_network=_network_isolation_works())
        smoke.report["dist_mb"] = disk_usage_mb(args.dist)
        smoke.check_bundle(binary, args.expect_version, args.max_window_s)
        if args.deb:
            smoke.report["deb_mb"] = round(args.deb.stat().st_size / 2**20, 1)
            smoke.check_deb(args.deb, args.expect_version)
    smoke.report["failures"] = smoke.failures
    smoke.report["ok"] = not smoke.failures
    text = json.dumps(smoke.report, indent=2)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    sys.stderr.write(
        "smoke: PASSED\n" if not smoke.failures else f"smoke: {len(smoke.failures)} FAILED\n"
    )
    return 0 if not smoke.failures else 1


if __name__ == "__main__":
    sys.exit(main())
