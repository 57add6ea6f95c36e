"""Compile the endpoint's two Java classes (jvm/lakehouse/bi) once per source version.

They implement Spark and Hive interfaces (a session extension, a password provider), so they are
built against the jars of the installed pyspark with the JDK's `javac`, into `.cache/bi-jvm/<hash>`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from jobs.config import PROJECT_ROOT

SOURCES = Path(__file__).parent / "jvm"
CACHE = PROJECT_ROOT / ".cache" / "bi-jvm"


class JdkMissing(RuntimeError):
    """`serve` needs a JDK (javac), not only a Java runtime."""


def compiled_classes() -> Path:
    """The folder of compiled classes for the current sources, compiling them if needed."""
    import pyspark

    sources = sorted(SOURCES.rglob("*.java"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    digest.update(pyspark.__version__.encode())
    target = CACHE / digest.hexdigest()[:16]
    if (target / "_ok").exists():
        return target
    javac = shutil.which("javac")
    if javac is None:
        raise JdkMissing("javac not found: `python -m jobs serve` needs a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)")
    jars = Path(pyspark.__file__).parent / "jars"
    # Compiled beside the target and renamed into place: two processes starting at once (two `serve`s,
    # parallel tests) each compile their own copy, and the first rename wins; the other copy is dropped.
    CACHE.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=CACHE))
    try:
        result = subprocess.run(
            [javac, "--release", "17", "-cp", f"{jars}/*", "-d", str(building), *map(str, sources)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"compiling {SOURCES} failed:\n{result.stderr}")
        (building / "_ok").touch()
        try:
            building.rename(target)
        except OSError:  # the target exists: another process renamed its copy first, or one was left half-built
            if not (target / "_ok").exists():
                shutil.rmtree(target)
                building.rename(target)
        return target
    finally:
        shutil.rmtree(building, ignore_errors=True)
