"""The kernel cache: keyed by the dataplane's source, shared safely by concurrent compiles.

numba keys its cache by the file that defines a kernel, not by the files whose functions the
kernel inlines; vrsim keys the whole kernel directory by a hash of every dataplane source
(:mod:`vrouter.dataplane.kernel_cache`), so editing any of them means compiling afresh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vrouter.dataplane import kernel_cache

PACKAGE_ROOT = Path(kernel_cache.__file__).resolve().parents[2]

WHERE = (  # where this process's kernels go once numba is loaded (kernels bound, none compiled)
    "import json, vrouter.dataplane.pipeline;"
    "from vrouter.dataplane.kernel import compile_kernels; compile_kernels();"
    "import numba.core.config as c;"
    "from vrouter.dataplane.kernel_cache import kernel_directory, kernels_ready;"
    "print(json.dumps([str(kernel_directory()), c.CACHE_DIR, kernels_ready()]))"
)


def _python(code: str, root: Path, cache: Path, **env: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "VRSIM_CACHE_DIR")}
    environment |= {"PYTHONPATH": str(root), "VRSIM_CACHE_DIR": str(cache)} | env
    return subprocess.Popen([sys.executable, "-c", code], cwd=root, env=environment, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _where(root: Path, cache: Path) -> tuple[str, str, bool]:
    out, err = _python(WHERE, root, cache).communicate(timeout=120)
    assert not err.strip() or "Warning" in err, err
    directory, numba_dir, ready = json.loads(out)
    return directory, numba_dir, ready


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """A copy of the packages, free to edit."""
    root = tmp_path / "src"
    for package in ("vrouter", "controlplane"):
        shutil.copytree(PACKAGE_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_a_changed_dataplane_source_gets_a_new_empty_kernel_directory(source_copy: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    directory, numba_dir, ready = _where(source_copy, cache)
    assert Path(directory).parent == cache and numba_dir == directory and not ready
    (Path(directory) / kernel_cache.READY_STAMP).write_text("{}")  # as if compiled
    assert _where(source_copy, cache) == (directory, directory, True)

    # a file process_batch inlines from, not the one that defines it: numba alone would miss it
    flow_table = source_copy / "vrouter" / "dataplane" / "flow_table.py"
    flow_table.write_text(flow_table.read_text() + "\n# changed\n")
    changed, changed_numba_dir, changed_ready = _where(source_copy, cache)
    assert changed != directory and changed_numba_dir == changed and not changed_ready
    assert Path(changed).parent == cache and not any(Path(changed).glob("*.nbi"))


def test_source_hash_covers_every_python_file_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    before = kernel_cache.source_hash((tmp_path,))
    (tmp_path / "notes.txt").write_text("not code")
    assert kernel_cache.source_hash((tmp_path,)) == before
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert kernel_cache.source_hash((tmp_path,)) != before
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    assert kernel_cache.source_hash((tmp_path,)) == before
    (tmp_path / "c.py").write_text("")
    assert kernel_cache.source_hash((tmp_path,)) != before


@pytest.mark.parametrize(("variable", "expected"), [("VRSIM_CACHE_DIR", "v"), ("NUMBA_CACHE_DIR", "n"), ("XDG_CACHE_HOME", "x/vrsim")])
def test_cache_location_follows_the_documented_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, expected: str) -> None:
    settings = {"VRSIM_CACHE_DIR": tmp_path / "v", "NUMBA_CACHE_DIR": tmp_path / "n", "XDG_CACHE_HOME": tmp_path / "x"}
    order = list(settings)
    for name in order:
        monkeypatch.delenv(name, raising=False)
    for name in order[order.index(variable) :]:
        monkeypatch.setenv(name, str(settings[name]))
    assert kernel_cache.base_directory() == tmp_path / expected


# A compile that does no compiling: it says so and waits for a line on stdin before it "ends".
FAKE_COMPILE = (
    "import sys, vrouter.warmup as w\n"
    "def compile_all():\n"
    "    print('compiling', flush=True)\n"
    "    sys.stdin.readline()\n"
    "    return 0.0\n"
    "w.compile_all = compile_all\n"
    "sys.exit(w.main())\n"
)


def test_concurrent_compiles_one_compiles_the_others_wait(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _python(FAKE_COMPILE, PACKAGE_ROOT, cache)
    assert first.stdout.readline().strip() == "compiling"  # it holds the lock now
    second = _python(FAKE_COMPILE, PACKAGE_ROOT, cache)
    probe = _python("from vrouter.dataplane.background_compile import compile_running; print(compile_running())", PACKAGE_ROOT, cache)
    assert probe.communicate(timeout=60)[0].strip() == "True"
    assert second.poll() is None  # waiting for the lock, not compiling beside the first
    first.stdin.write("\n")
    first.stdin.flush()
    assert first.wait(timeout=60) == 0
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0 and "compiling" not in out  # it found the kernels ready
    directory = _where(PACKAGE_ROOT, cache)
    assert directory[2], "the first compile's ready stamp"


def test_a_compile_that_dies_leaves_the_lock_to_the_next(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _python(FAKE_COMPILE, PACKAGE_ROOT, cache)
    assert first.stdout.readline().strip() == "compiling"
    second = _python(FAKE_COMPILE, PACKAGE_ROOT, cache)
    first.kill()
    first.wait(timeout=60)
    assert second.stdout.readline().strip() == "compiling"  # the lock went with the dead process
    second.stdin.write("\n")
    second.stdin.flush()
    assert second.wait(timeout=60) == 0
    assert _where(PACKAGE_ROOT, cache)[2]


def test_the_compile_process_compiles_this_source_whatever_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user in a clone of vrsim has another ``vrouter`` in the working directory (the source
    of another install); ``python -m`` would import that one and compile kernels that hash
    elsewhere, and the command would wait for kernels that never come."""
    from vrouter.dataplane.background_compile import compile_process

    decoy = tmp_path / "vrouter"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("")
    (decoy / "warmup.py").write_text("print('the decoy')\n")
    monkeypatch.chdir(tmp_path)
    args, cwd, env = compile_process()
    assert args[1:] == ["-m", "vrouter.warmup"]
    where = [args[0], "-c", "import vrouter.dataplane.kernel_cache as k; print(k.__file__)"]
    out = subprocess.run(where, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert Path(out.strip()) == Path(kernel_cache.__file__).resolve()
