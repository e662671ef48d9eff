"""Live emotion estimates from the camera and microphone.

    python examples/webcam_demo.py                    # window with an overlay (q / Esc to quit)
    python examples/webcam_demo.py --headless         # live terminal view
    python examples/webcam_demo.py --synthetic --headless --duration 10   # no camera needed
    python examples/webcam_demo.py --headless --replay examples/media/grid_bbaf2n.mpg  # a recording

The overlay shows the face box, the top emotions of the running estimate as bars,
valence and arousal, the live transcript (committed words, then the partial ones
in grey) and the current latency (session time at delivery minus the window end).
``streamline webcam`` is the same demo with more options (modalities, JSON output,
metrics); this one waits 1.5 s rather than 2 s for a window's committed words.
"""

import argparse

from streamline.pipeline import PipelineSettings
from streamline.pipeline.live_view import run_webcam

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--headless", action="store_true", help="terminal view instead of a window")
parser.add_argument("--synthetic", action="store_true", help="a generated test pattern and tone instead of devices")
parser.add_argument("--replay", metavar="FILE", help="play a media file in real time instead of the devices")
parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
parser.add_argument("--camera", help="camera device, e.g. /dev/video0")
parser.add_argument("--microphone", help="microphone device, e.g. default or hw:1,0")
args = parser.parse_args()

# Estimates come 0.5 s apart; a window waits at most 1.5 s for its committed words.
settings = PipelineSettings(live_text_budget_s=1.5)
raise SystemExit(run_webcam(settings, headless=args.headless, synthetic=args.synthetic, replay=args.replay,
                            duration_s=args.duration, camera=args.camera, microphone=args.microphone))
