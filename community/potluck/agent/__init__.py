# SPDX-License-Identifier: Apache-2.0
"""The node agent: the process on each host that composes the apps' node-side loops.

It sits above the apps it composes (nodes' heartbeat, serving's replica reconcile loop,
fine-tuning's trainer reconcile loop, the usage journal's recovery); none of them
imports it. ``potluck agent`` runs it (see ``worker.run``).
"""
