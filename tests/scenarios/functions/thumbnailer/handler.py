"""Thumbnail service: takes an uploaded image, scales it down to each requested box size with a
box filter and returns the thumbnails' sizes and digests.

Images are not shipped in events, so the pixels are decoded from a deterministic pattern seeded
by the image id: CPU time and memory grow with width x height, as they do for a real decoder.
"""

import hashlib
import json


def decode(image_id, width, height):
    """Rows of grey pixels (one list per row, as a pure-Python decoder would hold them)."""
    state = int(hashlib.sha256(image_id.encode()).hexdigest()[:8], 16) | 1
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            row.append(((x + y) + (state >> 16)) & 0xFF)
        rows.append(row)
    return rows


def shrink(rows, box):
    """Box-filter downscale so that the longer side is `box` pixels."""
    height, width = len(rows), len(rows[0])
    step = max(1, max(width, height) // box)
    out = []
    for y in range(0, height - step + 1, step):
        line = bytearray()
        for x in range(0, width - step + 1, step):
            total = 0
            for dy in range(step):
                total += sum(rows[y + dy][x : x + step])
            line.append(total // (step * step))
        out.append(bytes(line))
    return out


def handler(event, context):
    image = event["image"]
    width, height = int(image["width"]), int(image["height"])
    if width <= 0 or height <= 0 or width * height > 4_000_000:
        return {"statusCode": 422, "body": json.dumps({"error": "unsupported dimensions"})}
    rows = decode(image["id"], width, height)
    thumbs = []
    for box in event.get("sizes", [128]):
        small = shrink(rows, int(box))
        digest = hashlib.sha256(b"".join(small)).hexdigest()
        thumbs.append({"box": box, "width": len(small[0]) if small else 0,
                       "height": len(small), "sha256": digest})
    print(json.dumps({"msg": "thumbnails", "id": image["id"], "pixels": width * height}))
    return {"statusCode": 200, "body": json.dumps({"id": image["id"], "thumbnails": thumbs})}
