"""Live capture without a camera: FFmpeg's test pattern and a tone, through the live path.

    python examples/synthetic_devices.py
"""

import time

from streamline import synthetic

with synthetic(size=(320, 240), fps=15, duration_s=3.0) as source:
    source.video.subscribe(lambda f: print(f"frame at {f.pts_ns / 1e9:.3f} s"))
    source.audio.subscribe(lambda c: None)
    source.wait(10)
    time.sleep(0.1)
    print(source.stats["video"].as_dict())
