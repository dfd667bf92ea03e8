"""What one request does, without Gradio: validate, run, draw; the shared forward-pass batcher."""
