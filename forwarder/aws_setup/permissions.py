"""AWS calls of `aws setup`/`aws status`, and which IAM permission each one needs.

Every call goes through `call`, which turns a botocore ClientError into an AwsCallError
naming the service, the operation and, when AWS said "access denied", the IAM
actions the caller lacks: an operator fixes a policy from one line.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

# Where the IAM action is not "<service>:<operation>".
_ACTIONS = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "s3:PutBucketNotification",
}
# Permissions an operation needs besides its own action (LOGS.md 1: vended logs V2).
_ALSO = {
    ("logs", "PutDeliverySource"): ("workmail:AllowVendedLogDeliveryForResource",),
    ("logs", "CreateDelivery"): ("logs:GetDeliverySource", "logs:GetDeliveryDestination"),
}
_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
     "AWS.SimpleQueueService.AccessDenied", "UnauthorizedAccess", "Forbidden", "403"}
)  # fmt: skip


def iam_actions(service: str, operation: str) -> list[str]:
    """The IAM actions an API call needs, its own first."""
    own = _ACTIONS.get((service, operation), f"{service}:{operation}")
    return [own, *_ALSO.get((service, operation), ())]


class AwsCallError(Exception):
    def __init__(self, service: str, operation: str, exc: ClientError, resource: str = "") -> None:
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        self.service = service
        self.operation = operation
        self.code = str(error.get("Code", ""))
        self.query_code = str(error.get("QueryErrorCode", ""))
        self.message = _short(str(error.get("Message", "")) or str(exc))
        self.status = int(meta.get("HTTPStatusCode", 0) or 0)
        self.resource = resource
        super().__init__(self.describe())

    @property
    def access_denied(self) -> bool:
        return self.code in _DENIED_CODES or self.status == 403

    def describe(self) -> str:
        text = f"{self.service} {self.operation} failed: {self.code or self.status}: {self.message}"
        if self.access_denied:
            actions = iam_actions(self.service, self.operation)
            on = f" on {self.resource}" if self.resource else ""
            text += f"; missing IAM permission: {' and '.join(actions)}{on}"
        return text


def _short(message: str) -> str:
    # moto answers some JSON APIs with an XML error document: keep the readable part.
    if "<Message>" in message:
        message = message.split("<Message>", 1)[1].split("</Message>", 1)[0]
    return " ".join(message.split())[:500]


def call(client: Any, method: str, *, missing: tuple[str, ...] = (), resource: str = "",
         **kwargs: Any) -> Any:  # fmt: skip
    """`client.<method>(**kwargs)`; None when AWS answers with an error code in `missing`."""
    try:
        return getattr(client, method)(**kwargs)
    except ClientError as exc:
        service = str(client.meta.service_model.service_name)
        error = AwsCallError(service, exc.operation_name, exc, resource)
        if missing and (error.code in missing or error.query_code in missing):
            return None
        raise error from exc


def paginate(client: Any, method: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a nextToken-paged list call."""
    items: list[Any] = []
    while True:
        page = call(client, method, **kwargs)
        items.extend(page.get(key) or [])
        token = page.get("nextToken")
        if not token:
            return items
        kwargs["nextToken"] = token
