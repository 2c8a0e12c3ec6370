"""Document text extraction: fetches an uploaded PDF from the URL in the event (the bucket's
presigned link) and pipes it through the bundled converter (`bin/converter`, a script in the
code directory), answering with page and word counts and a preview.

It shells out on every call by design: `sh -c "curl ... | ./bin/converter -"` forks sh, curl
and the converter's interpreter each time. Vulnerable on purpose: the URL is pasted into the
command line unquoted, so a request can add shell syntax (command injection) or curl options
(argument injection)."""

import json
import subprocess


def handler(event, context):
    document = event["document"]
    url = document["url"]
    done = subprocess.run(["sh", "-c", f"curl -sS -m 10 {url} | ./bin/converter -"],
                          capture_output=True, text=True, timeout=25)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        # Kept for debugging conversions: what the pipeline printed goes back to the caller.
        print(json.dumps({"msg": "converter output unreadable", "id": document.get("id"),
                          "exit": done.returncode}))
        return {"statusCode": 502, "body": json.dumps({"error": "conversion failed",
                                                       "output": done.stdout[-2048:],
                                                       "stderr": done.stderr[-1024:]})}
    if "error" in result:
        print(json.dumps({"msg": "rejected", "id": document.get("id"), "reason": result["error"]}))
        return {"statusCode": 422, "body": json.dumps({"id": document.get("id"), **result})}
    print(json.dumps({"msg": "converted", "id": document.get("id"), "pages": result["pages"],
                      "words": result["words"]}))
    return {"statusCode": 200, "body": json.dumps({"id": document.get("id"), **result})}
