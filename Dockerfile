# Docker Space (or any Docker host): the Gradio app on port 7860, CPU only.
#   docker build -t explainable-deepfake-detector .
#   docker run --rm -p 7860:7860 explainable-deepfake-detector      # then open http://localhost:7860
FROM python:3.11.11-slim-bookworm

# ffmpeg: browser-playable (H.264) previews of uploaded videos in any codec.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# Spaces run the container as uid 1000.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    MPLBACKEND=Agg
WORKDIR $HOME/app

# Dependencies first, in their own layer: code changes do not reinstall them.
# CPU wheels of torch/torchvision come from PyTorch's CPU index (no CUDA download).
COPY --chown=user requirements.txt .
RUN pip install --user --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY --chown=user . .

EXPOSE 7860
CMD ["python", "app.py"]
