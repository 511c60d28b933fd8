"""Training, evaluation and publishing of detectors (python -m deepfake train | evaluate | push)."""
