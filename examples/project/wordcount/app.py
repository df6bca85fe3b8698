"""wordcount, a function of the example project (examples/project).

{"text": "to be or not to be"} -> {"words": 6, "distinct": 4, "top": ["to", "be"]}
"""

import collections
import os


def handler(event, context):
    text = (event or {}).get("text", "")
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    words = [w for w in words if w]
    counts = collections.Counter(words)
    return {
        "words": len(words),
        "distinct": len(counts),
        "top": [w for w, _ in counts.most_common(3)],
        "stage": os.environ.get("STAGE", ""),
    }
