# SPDX-License-Identifier: Apache-2.0
"""A test plug-in: policies that refuse, rewrite, redact and record every hook call.

What they do is chosen by markers in the request's text, so a test says plainly what it
asks for: ``forbidden`` (refused, 403 ``test_forbidden``), ``rewrite-me`` (replaced by
``rewritten`` before the replica sees it), ``explode-request`` / ``explode-response`` /
``explode-stream`` (the fail-closed guard raises in that hook), ``check-me`` (the
non-streamed answer gets ``"potluck_checked": true``), ``transform`` (a streamed answer
has ``secret`` redacted, even when split across events, and ends with a ``" [checked]"``
event). Each ``on_finish`` is appended to the Redis list ``FINISHED_KEY`` as JSON.
"""
