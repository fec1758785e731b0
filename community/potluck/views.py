# SPDX-License-Identifier: Apache-2.0
"""The landing page until the console (frontend/) is built."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from potluck import __version__


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "potluck/home.html", {"version": __version__})
