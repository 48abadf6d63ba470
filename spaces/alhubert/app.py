# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Try ALHuBERT in the browser: record or upload speech, see how similar the layer applications are, watch elastic
depth trade layers for time, transcribe (CTC) or classify, and compare the ONNX export with PyTorch.

    python spaces/alhubert/app.py                       # the `make demo` student (built first if missing)
    python spaces/alhubert/app.py --model outputs/my-ctc-model --port 7860
    python spaces/alhubert/app.py --model alhubert/alhubert-small

On the Hub the Space runs `app.py` without arguments and loads the first model of its README's `models:` list.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import space_analysis as analysis


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine when run locally


HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEMO_SCRIPT = REPO_ROOT / "scripts" / "demo.py"
DEMO_STUDENT = REPO_ROOT / "outputs" / "demo-student"  # where scripts/demo.py writes by default


def default_model(build: bool = True) -> str:
    """`$ALHUBERT_SPACE_MODEL`; in a checkout of the project, the `make demo` student (built when missing); on the
    Hub, the first of the README's `models:`."""
    if os.environ.get("ALHUBERT_SPACE_MODEL"):
        return os.environ["ALHUBERT_SPACE_MODEL"]
    if DEMO_SCRIPT.is_file():
        if not (DEMO_STUDENT / "config.json").is_file() and build:
            print(f"No demo student in {DEMO_STUDENT}: building it with scripts/demo.py (offline, a few seconds).")
            try:
                subprocess.run([sys.executable, str(DEMO_SCRIPT), "--output_dir", str(DEMO_STUDENT)], check=True)
            except subprocess.CalledProcessError:
                sys.exit("error: building the demo student failed (see above); run `make demo`, or pass --model.")
        return str(DEMO_STUDENT)
    models = analysis.space_models(HERE / "README.md")
    if not models:
        sys.exit("error: no model given; pass --model (a folder or Hub id) or list one under models: in README.md.")
    return models[0]


INTRODUCTION = """# ALHuBERT: what do the shared layers do?
ALHuBERT applies a few distinct transformer layers many times (ALBERT-style weight sharing). Record or upload up
to {limit} s of speech (WAV, FLAC, OGG, MP3; resampled to 16 kHz) and press **Analyse**. The first picture compares
every pair of layer applications (tick colours: the distinct layer that made each one); the second shows the first
principal components of the chosen hidden state over time. Fewer layer applications run faster: every
run's time is listed below."""


def build_demo(loaded: analysis.LoadedModel):
    """The Gradio page for `loaded` (Gradio is imported here so that the logic stays testable without it)."""
    import gradio as gr

    config = loaded.config
    depth_max = config.num_hidden_layers
    sessions = {}  # ONNX Runtime sessions, made on first use

    def run(audio, depth, layer, measure, backend, history):
        try:
            result = analysis.analyse(loaded, audio, depth, layer, measure, backend, sessions)
        except analysis.SpaceInputError as error:
            raise gr.Error(str(error)) from None
        except Exception as error:  # never a traceback on the page
            raise gr.Error(
                f"The model failed on this clip ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200] if str(error) else ''})."
            ) from None
        for notice in result.notices:
            gr.Warning(notice)
        history = (history or []) + [
            {
                "run": len(history or []) + 1,
                "backend": result.backend,
                "depth": result.depth,
                "ms": 1000 * result.seconds,
            }
        ]
        onnx_text = (
            ""
            if result.onnx_cosine is None
            else f"Cosine of the {result.backend} output to PyTorch's: **{result.onnx_cosine:.5f}**"
        )
        return (
            result.similarity,
            result.features,
            analysis.timing_table(history),
            result.transcript or "",
            result.labels or {},
            onnx_text,
            "\n\n".join(result.notices),
            history,
        )

    with gr.Blocks(title="ALHuBERT") as demo:
        gr.Markdown(INTRODUCTION.format(limit=analysis.MAX_SECONDS))
        gr.Markdown(analysis.describe(loaded), elem_id="model-description")
        history = gr.State([])
        with gr.Row():
            with gr.Column(scale=1):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech", elem_id="audio")
                depth = gr.Slider(
                    1, depth_max, value=depth_max, step=1, label="Layer applications (elastic depth)", elem_id="depth"
                )
                layer = gr.Slider(
                    0,
                    depth_max,
                    value=depth_max,
                    step=1,
                    label="Hidden state for the features picture (0 = encoder input)",
                    elem_id="layer",
                )
                measure = gr.Radio(list(analysis.SIMILARITIES), value="linear CKA", label="Similarity")
                backend = gr.Radio(
                    [analysis.PYTORCH, *loaded.onnx_files],
                    value=analysis.PYTORCH,
                    label="Backend",
                    visible=bool(loaded.onnx_files),
                )
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
            with gr.Column(scale=2):
                transcript = gr.Textbox(
                    label="Transcript (greedy CTC, all layer applications)",
                    visible=loaded.kind == "ctc",
                    elem_id="transcript",
                    interactive=False,
                )
                labels = gr.Label(
                    label="Top labels (all layer applications)",
                    visible=loaded.kind == "classification",
                    elem_id="labels",
                )
                notices = gr.Markdown(elem_id="notices")
                similarity = gr.Image(
                    label="Similarity of the layer applications",
                    type="numpy",
                    height=500,
                    elem_id="similarity",
                    interactive=False,
                )
                features = gr.Image(
                    label="Features over time (principal components)",
                    type="numpy",
                    height=280,
                    elem_id="features",
                    interactive=False,
                )
                onnx_text = gr.Markdown(elem_id="onnx")
                timing = gr.Markdown(elem_id="timing")
        button.click(
            run,
            [audio, depth, layer, measure, backend, history],
            [similarity, features, timing, transcript, labels, onnx_text, notices, history],
            api_name="analyse",
        )
    return demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        help="Model folder or Hub id (default: the `make demo` student, or on the Hub the README's models:).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="Address to serve on (default 127.0.0.1; the Hub sets GRADIO_SERVER_NAME).",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    args = parser.parse_args(argv)
    source = args.model or default_model()
    try:
        loaded = analysis.load_model(source)
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"error: cannot load the model {source!r}: {str(error).splitlines()[0]}")
    print(f"Serving {source} on http://{args.host}:{args.port}")
    build_demo(loaded).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
