"""Reads back, with boto3, what Warden sent to the local AWS API server (and prepares it).

Usage: aws_client.py COMMAND [ARGS]; prints one JSON document. The endpoint, region and
credentials come from the environment (AWS_ENDPOINT_URL and friends).
"""

import json
import sys
from datetime import datetime, timedelta, timezone

import boto3


def client(name):
    return boto3.client(name)


def metrics(namespace):
    """Every metric in the namespace, with the sum and sample count of its last hour."""
    cw = client("cloudwatch")
    out = []
    seen = set()
    now = datetime.now(timezone.utc)
    for page in cw.get_paginator("list_metrics").paginate(Namespace=namespace):
        for m in page["Metrics"]:
            # moto lists a metric once per PutMetricData call; CloudWatch lists it once.
            key = (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
            if key in seen:
                continue
            seen.add(key)
            stats = cw.get_metric_statistics(
                Namespace=namespace,
                MetricName=m["MetricName"],
                Dimensions=m["Dimensions"],
                StartTime=now - timedelta(hours=1),
                EndTime=now + timedelta(minutes=5),
                Period=3600,
                Statistics=["Sum", "SampleCount", "Maximum"],
            )
            points = stats["Datapoints"]
            out.append(
                {
                    "name": m["MetricName"],
                    "dimensions": {d["Name"]: d["Value"] for d in m["Dimensions"]},
                    "sum": sum(p["Sum"] for p in points),
                    "samples": sum(p["SampleCount"] for p in points),
                    "max": max((p["Maximum"] for p in points), default=None),
                }
            )
    return out


def securityhub_enable():
    client("securityhub").enable_security_hub()
    return {"enabled": True}


def securityhub_findings():
    return client("securityhub").get_findings(MaxResults=100)["Findings"]


def events_setup(bus):
    """A rule on `bus` for Warden's findings, delivering to a new SQS queue."""
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="warden-findings")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = client("events")
    if bus != "default":
        events.create_event_bus(Name=bus)
    events.put_rule(
        Name="warden-findings",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["warden"], "detail-type": ["Warden Finding"]}),
    )
    events.put_targets(Rule="warden-findings", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return {"queue_url": url}


def events_read(url):
    sqs = client("sqs")
    got = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return got
        for m in msgs:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def logs_put(group, stream, path):
    """Puts every line of `path` into a log stream, as Lambda puts a function's stdout."""
    logs = client("logs")
    for create in (lambda: logs.create_log_group(logGroupName=group),
                   lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream)):
        try:
            create()
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
    with open(path) as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    events = [{"timestamp": now - len(lines) + i, "message": line} for i, line in enumerate(lines)]
    for start in range(0, len(events), 1000):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=events[start:start + 1000])
    return {"events": len(events)}


def s3_bucket(bucket):
    """A versioned bucket, as the template creates for the fleet's profiles."""
    s3 = client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return {"bucket": bucket}


def s3_put(bucket, key, path, sha256=""):
    """Puts a file as an object, with the metadata sha256 when given."""
    with open(path, "rb") as f:
        body = f.read()
    extra = {"Metadata": {"sha256": sha256}} if sha256 else {}
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return {"bytes": len(body)}


def s3_get(bucket, key):
    """An object's body (text), metadata and how many versions it has."""
    s3 = client("s3")
    got = s3.get_object(Bucket=bucket, Key=key)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return {"body": got["Body"].read().decode(), "metadata": got.get("Metadata", {}),
            "versions": len([v for v in versions if v["Key"] == key])}


COMMANDS = {
    "s3-bucket": s3_bucket,
    "s3-put": s3_put,
    "s3-get": s3_get,
    "metrics": metrics,
    "securityhub-enable": securityhub_enable,
    "securityhub-findings": securityhub_findings,
    "events-setup": events_setup,
    "events-read": events_read,
    "logs-put": logs_put,
}


def main():
    command, args = sys.argv[1], sys.argv[2:]
    print(json.dumps(COMMANDS[command](*args), default=str))


if __name__ == "__main__":
    main()
