"""Lambda set-up and checks against a local moto server, for the response tests.

    moto_lambda.py ENDPOINT create NAME       creates the IAM role and the function NAME
    moto_lambda.py ENDPOINT concurrency NAME  prints {"ReservedConcurrentExecutions": n or null}

Credentials and region come from the environment (moto accepts any).
"""

import io
import json
import sys
import zipfile

import boto3

ROLE = "warden-test-role"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def _zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def create(endpoint, name):
    iam = boto3.client("iam", endpoint_url=endpoint)
    role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    fn = boto3.client("lambda", endpoint_url=endpoint).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
    )
    print(json.dumps({"FunctionArn": fn["FunctionArn"]}))


def concurrency(endpoint, name):
    got = boto3.client("lambda", endpoint_url=endpoint).get_function_concurrency(FunctionName=name)
    print(json.dumps({"ReservedConcurrentExecutions": got.get("ReservedConcurrentExecutions")}))


def main(argv):
    if len(argv) != 4 or argv[2] not in ("create", "concurrency"):
        sys.exit(__doc__)
    {"create": create, "concurrency": concurrency}[argv[2]](argv[1], argv[3])


if __name__ == "__main__":
    main(sys.argv)
