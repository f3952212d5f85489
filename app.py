"""The srgan demo as a Hugging Face Space (Gradio SDK): what `srgan demo` serves, on the Space's host, port.

A Space runs this file; its requirements.txt installs the package with the demo and hub extras, e.g.
`srgan[demo,hub] @ git+https://...`. Models given as SRGAN_DEMO_MODELS (comma-separated: files, folders,
hf://ORG/REPO) are offered besides the five shipped variants. Locally: `python app.py` (or `srgan demo`).
"""

from __future__ import annotations

import os

from srgan.demo import DEMO_MAX_PIXELS, MAX_FILE_SIZE, build_demo

models = [m.strip() for m in os.environ.get("SRGAN_DEMO_MODELS", "").split(",") if m.strip()]
demo = build_demo(models, max_pixels=int(os.environ.get("SRGAN_DEMO_MAX_PIXELS", DEMO_MAX_PIXELS)))

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), max_file_size=MAX_FILE_SIZE,
                show_error=True)  # fmt: skip
