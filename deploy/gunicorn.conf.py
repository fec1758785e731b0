# SPDX-License-Identifier: Apache-2.0
# Production gunicorn config: `gunicorn -c deploy/gunicorn.conf.py potluck.asgi:application`.
# Every setting reads the environment (POTLUCK_BIND, POTLUCK_WEB_WORKERS, ...).
from potluck.gunicorn_conf import *  # noqa: F403
