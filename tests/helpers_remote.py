"""Run Python in a subprocess where the `alhubert` package cannot be imported (as for a Hub user)."""

import os
import subprocess
import sys
import textwrap


BLOCK_ALHUBERT = textwrap.dedent(
    """
    import sys
    class _NoAlhubert:
        def find_spec(self, name, path=None, target=None):
            if name == "alhubert" or name.startswith("alhubert."):
                raise ModuleNotFoundError("alhubert is blocked in this test", name=name)
            return None
    sys.meta_path.insert(0, _NoAlhubert())
    try:
        import alhubert
        raise SystemExit("alhubert is importable")
    except ModuleNotFoundError:
        pass
    """
)


def run_without_package(code: str, cwd, timeout=300) -> str:
    """Run `code` after making `alhubert` unimportable; return stdout, raise with stderr on failure."""
    env = {**os.environ, "HF_MODULES_CACHE": str(cwd / "hf_modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_ALHUBERT + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
