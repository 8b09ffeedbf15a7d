"""Reference EKS token, made the way `aws eks get-token` makes it (botocore's STS presigner).

Usage: eks_get_token.py CLUSTER REGION ACCESS_KEY SECRET_KEY SESSION_TOKEN|- EPOCH_SECONDS
Prints the token. The clock is pinned so the Rust implementation can be compared byte for byte.
"""
import base64
import datetime
import sys

import botocore.auth
import botocore.session

cluster, region, access_key, secret_key, session_token, epoch = sys.argv[1:7]
fixed = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).replace(tzinfo=None)
botocore.auth.get_current_datetime = lambda *args, **kwargs: fixed

session = botocore.session.get_session()
session.set_credentials(access_key, secret_key, None if session_token == "-" else session_token)
sts = session.create_client(
    "sts", region_name=region, endpoint_url=f"https://sts.{region}.amazonaws.com"
)

# The same hook awscli's get-token registers: sign the cluster name as a header.
def add_cluster_header(request, **kwargs):
    request.headers["x-k8s-aws-id"] = cluster

sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
url = sts.generate_presigned_url(
    "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
)
print("k8s-aws-v1." + base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("="))
