#!/usr/bin/env python
# Copyright 2026 The ALHuBERT port authors. Licensed under the Apache License, Version 2.0.
"""Plot how similar a student's hidden states are to its teacher's, layer by layer (cosine similarity per frame).

    python examples/layer_similarity.py --teacher facebook/hubert-base-ls960 --student my-name/alhubert-small \
        --audio speech.wav --output similarity.png

Without --teacher/--student it runs offline on the tiny random demo teacher and a student initialised from it
(`init_student_from_teacher`): the picture then shows only what weight copying gives, not a distillation.
Left panel: mean cosine similarity of every student hidden state with every teacher hidden state. Right panel:
student layer k against teacher layer k (the distillation targets are a subset of these pairs).
"""

import logging
from dataclasses import dataclass, field

import matplotlib


matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoFeatureExtractor, AutoModel, HfArgumentParser, HubertModel  # noqa: E402

import alhubert  # noqa: E402,F401  (registers ALHuBERT with the Auto classes)
from alhubert.models.audio import load_audio  # noqa: E402
from alhubert.training.demo_teacher import demo_teacher_path  # noqa: E402
from alhubert.training.student_init import init_student_from_teacher  # noqa: E402


logger = logging.getLogger(__name__)


@dataclass
class SimilarityArguments:
    teacher: str | None = field(default=None, metadata={"help": "Teacher model (folder or Hub id); default: demo."})
    student: str | None = field(
        default=None, metadata={"help": "Student model (folder or Hub id); default: initialised from the teacher."}
    )
    num_hidden_groups: int = field(default=2, metadata={"help": "Distinct layers of the default student."})
    audio: list[str] = field(default_factory=list, metadata={"help": "Audio files; default: 4 s of random noise."})
    output: str = field(default="layer_similarity.png", metadata={"help": "Where to save the PNG plot."})


def hidden_states(model, feature_extractor, waveforms):
    """Every hidden state of `model` for each waveform, as a list of (layers + 1, frames, hidden) tensors."""
    states = []
    for waveform in waveforms:
        inputs = feature_extractor(waveform, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
        with torch.no_grad():
            states.append(torch.stack(model(**inputs, output_hidden_states=True).hidden_states)[:, 0])
    return states


def similarity_matrix(student_states, teacher_states) -> np.ndarray:
    """Mean over all frames of the cosine similarity of student state i and teacher state j."""
    totals, frames = 0.0, 0
    for student, teacher in zip(student_states, teacher_states):
        length = min(student.shape[1], teacher.shape[1])
        student = torch.nn.functional.normalize(student[:, :length], dim=-1)
        teacher = torch.nn.functional.normalize(teacher[:, :length], dim=-1)
        totals = totals + torch.einsum("ifd,jfd->ij", student, teacher).numpy()
        frames += length
    return totals / frames


def plot(matrix: np.ndarray, student_name: str, teacher_name: str, output: str):
    figure, (heatmap_axes, line_axes) = plt.subplots(1, 2, figsize=(12, 5))
    image = heatmap_axes.imshow(matrix, origin="lower", cmap="viridis", vmin=min(0.0, matrix.min()), vmax=1.0)
    heatmap_axes.set_xlabel("teacher hidden_states index")
    heatmap_axes.set_ylabel("student hidden_states index")
    heatmap_axes.set_title("Mean cosine similarity, all layer pairs")
    figure.colorbar(image, ax=heatmap_axes)
    shared = min(matrix.shape)
    line_axes.plot(range(shared), np.diag(matrix)[:shared], marker="o")
    line_axes.set_xticks(range(shared))
    line_axes.set_xlabel("hidden_states index k (0 = encoder input)")
    line_axes.set_ylabel("mean cosine similarity")
    line_axes.set_title("Student layer k vs teacher layer k")
    line_axes.set_ylim(min(0.0, matrix.min()), 1.05)
    line_axes.grid(True, alpha=0.3)
    figure.suptitle(f"Student: {student_name}\nTeacher: {teacher_name}", fontsize=10)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)


def main():
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    (args,) = HfArgumentParser(SimilarityArguments).parse_args_into_dataclasses()
    teacher_name = args.teacher or demo_teacher_path()
    teacher = HubertModel.from_pretrained(teacher_name).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(teacher_name)
    if args.student:
        student = AutoModel.from_pretrained(args.student).eval()
        student_name = args.student
    else:
        student = init_student_from_teacher(teacher, args.num_hidden_groups).eval()
        student_name = f"initialised from the teacher, {args.num_hidden_groups} distinct layers"
    if args.audio:
        waveforms = [load_audio(path, feature_extractor.sampling_rate) for path in args.audio]
    else:
        logger.warning("No --audio given: using 4 s of random noise.")
        waveforms = [np.random.default_rng(0).standard_normal(4 * feature_extractor.sampling_rate).astype(np.float32)]
    matrix = similarity_matrix(
        hidden_states(student, feature_extractor, waveforms), hidden_states(teacher, feature_extractor, waveforms)
    )
    for k, value in enumerate(np.diag(matrix)):
        logger.info("layer %d: cosine similarity %.4f", k, value)
    plot(matrix, student_name, teacher_name.split("/")[-1], args.output)
    logger.info("Saved %s", args.output)


if __name__ == "__main__":
    main()
