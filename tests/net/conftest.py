"""A moto S3 server on 127.0.0.1 with one public bucket, shared by the network tests."""

from __future__ import annotations

import json

import pytest

BUCKET = "test-bucket"


def public_read_policy(bucket: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        }],
    })


@pytest.fixture(scope="session")
def s3_server():
    pytest.importorskip("moto.server", reason="moto[server] is needed for the local S3 server")
    from biomedica.testing.servers import LocalS3Server

    with LocalS3Server() as server:
        admin = server.admin_client()
        admin.create_bucket(Bucket=BUCKET)
        admin.put_bucket_policy(Bucket=BUCKET, Policy=public_read_policy(BUCKET))
        yield server


@pytest.fixture(scope="session")
def bucket(s3_server) -> str:
    """Name of the public bucket on `s3_server`."""
    return BUCKET
