# SPDX-License-Identifier: Apache-2.0
"""The inference core: one path for /v1 requests and batch lines (see ``core``).

A package (not a namespace directory) so that import-linter's contracts and setuptools'
package discovery see it like every other app.
"""
