"""Every refusal S3 gives a multipart completion is a named 4xx."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from serval import errors
from serval.adapters import clients, storage


@pytest.fixture
def s3() -> Iterator[Stubber]:
    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        clients.override("s3", client)
        yield stub
    clients.reset()


@pytest.mark.parametrize(
    ("s3_code", "http_status", "refusal"),
    [
        ("NoSuchUpload", 404, errors.UploadNotFound),
        ("InvalidPart", 400, errors.UploadRefused),
        ("InvalidPartOrder", 400, errors.UploadRefused),
        ("EntityTooSmall", 400, errors.UploadRefused),
        ("AccessDenied", 403, errors.UploadRefused),
        ("SlowDown", 503, errors.Throttled),
        ("InternalError", 500, errors.Throttled),
    ],
)
def test_s3_refusals_of_a_completion_are_named_errors(
    s3: Stubber, s3_code: str, http_status: int, refusal: type[errors.ServalError]
) -> None:
    # Given S3 refusing a completion with s3_code
    s3.add_client_error("complete_multipart_upload", service_error_code=s3_code, http_status_code=http_status)
    # When the upload is completed
    with pytest.raises(refusal) as raised:
        storage.complete_multipart(
            "bucket", "projects/p/a.mp4", "upload-1", [{"etag": "e", "part_number": 1}]
        )
    # Then the error names S3's code and the upload
    assert raised.value.details == {"key": "projects/p/a.mp4", "upload_id": "upload-1", "s3_error": s3_code}
