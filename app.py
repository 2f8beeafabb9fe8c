"""vaelab's web app. The app itself is :mod:`vaelab.app` (``build()`` lays it out, one module
per tab); this file gives hosting the module-level ``demo`` it looks for.

Starts with no dataset and no network, from the shipped checkpoints; ``VAELAB_DATA`` adds MNIST's
images, ``VAELAB_CHECKPOINTS`` points it at another checkpoint folder.
"""

import torch

from vaelab.app import build, freeze_heap, launch_options

# One intra-op thread per request: the app decodes single images, where extra threads only add
# contention (on a shared 2-core machine the draw handler's p95 fell from ~170 ms to ~40 ms), and
# two requests can then run side by side.
torch.set_num_threads(1)

demo = build()
freeze_heap()  # the built app lives as long as the process: keep the collector from walking it

if __name__ == "__main__":
    demo.launch(**launch_options())
