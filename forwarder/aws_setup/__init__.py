"""`workmail-forwarder aws setup|status`: WorkMail audit log delivery in AWS.

plan.py (names, ARNs, policies: pure), apply.py (read, compare, write), status.py,
permissions.py (AWS calls and the IAM action each needs), command.py (CLI wiring).
"""
