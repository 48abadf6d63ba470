"""Imports the Space's modules (spaces/alhubert/app.py, space_analysis.py) the way the Space runs them: as top-level
modules from their own folder. Also the demo corpus clip the Space tests upload."""

import os
import sys
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parent.parent
SPACE_DIR = REPO_ROOT / "spaces" / "alhubert"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: set before anything imports Gradio
if str(SPACE_DIR) not in sys.path:
    sys.path.insert(0, str(SPACE_DIR))

import space_analysis  # noqa: E402


DEMO_CLIP = sorted((REPO_ROOT / "data" / "demo_corpus" / "dev-clean-demo").rglob("*.flac"))[0]

__all__ = ["DEMO_CLIP", "REPO_ROOT", "SPACE_DIR", "space_analysis"]
