from setuptools import find_packages, setup


TRAIN = [
    "datasets>=4.0,<6",
    "accelerate>=1.0,<2",
    "jiwer>=3,<5",  # WER/CER (alhubert.training.metrics) use jiwer 3's API
    "pyyaml>=6",
    "tensorboard>=2.14",
    # `alhubert kmeans-targets`: MFCC features and MiniBatchKMeans (HuBERT pre-training targets)
    "librosa>=0.11,<1",
    "scikit-learn>=1.9,<2",
]

setup(
    name="alhubert",
    version="0.1.0",
    description="ALHuBERT / DistilALHuBERT: parameter-sharing distilled HuBERT for Hugging Face Transformers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["alhubert", "alhubert.*"]),
    package_data={"alhubert": ["training/configs/*.yaml", "hub/*.md"]},
    install_requires=[
        "torch>=2.4",
        "transformers>=5.20,<6",
        "huggingface_hub>=1.0,<3",
        "safetensors>=0.4",
        "numpy>=1.24",
        "soundfile>=0.12.1",  # its wheels bundle libsndfile with MP3 support: WAV, FLAC, OGG, MP3 need nothing else
        "soxr>=0.3",  # the one resampler
        "typer>=0.12,<1",
    ],
    extras_require={
        # distillation and fine-tuning (`alhubert distill`, `alhubert finetune-ctc`, ...)
        "train": TRAIN,
        # the optional FFmpeg decoder for formats libsndfile lacks (M4A, AAC, ...): pick the torchcodec release that
        # matches your torch (https://github.com/pytorch/torchcodec#installing-torchcodec) and install FFmpeg
        "ffmpeg": ["torchcodec>=0.4,<1"],
        # `alhubert export onnx` (torch.onnx's dynamo exporter needs onnxscript); lower bounds = the versions tested
        "onnx": ["onnx>=1.23,<2", "onnxscript>=0.7,<1", "onnx_ir>=1.1,<2", "onnxruntime>=1.32,<2"],
        # the browser demo (spaces/alhubert, `make space`); lower bounds = the versions tested
        "space": ["gradio>=6.31,<7", "matplotlib>=3.7", "onnxruntime>=1.32,<2"],
        "dev": TRAIN + ["matplotlib>=3.7", "pytest>=8", "pytest-xdist>=3", "selenium>=4.51,<5", "ruff>=0.15,<0.16"],
    },
    entry_points={"console_scripts": ["alhubert=alhubert.cli:main"]},
)
