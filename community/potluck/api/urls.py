# SPDX-License-Identifier: Apache-2.0
"""The management API's routes; extensions add theirs through ``extensions.api_routes``."""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from potluck import extensions
from potluck.accounts.api import (
    ApiKeyViewSet,
    ExtensionsView,
    MembersViewSet,
    MeView,
    OrganizationViewSet,
)
from potluck.accounts.invitations_api import (
    InvitationViewSet,
    ReceivedAnswerView,
    ReceivedInvitationsView,
    TokenAcceptView,
    TokenDeclineView,
    TokenInvitationView,
)
from potluck.accounts.playground_api import PlaygroundKeyView
from potluck.accounts.session_api import SessionProvidersView, SessionView
from potluck.finetune.metrics_api import JobMetricsView
from potluck.nodes.api import NodeViewSet
from potluck.registry.api import ModelViewSet
from potluck.serving.api import DeploymentViewSet, ReplicaViewSet
from potluck.usage.api import UsageViewSet

router = DefaultRouter()
# Accept both /api/models and /api/models/: clients should not depend on a redirect.
router.trailing_slash = "/?"
router.register("orgs", OrganizationViewSet, basename="org")
router.register("members", MembersViewSet, basename="member")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("keys", ApiKeyViewSet, basename="apikey")
router.register("models", ModelViewSet, basename="model")
router.register("nodes", NodeViewSet, basename="node")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("replicas", ReplicaViewSet, basename="replica")

urlpatterns = [
    path("me", MeView.as_view(), name="me"),
    re_path(r"^session/?$", SessionView.as_view(), name="session"),
    re_path(r"^session/providers/?$", SessionProvidersView.as_view(), name="session-providers"),
    path("extensions", ExtensionsView.as_view(), name="extensions"),
    # Before the router's /invitations/{id}: these are the invited person's routes.
    re_path(r"^invitations/received/?$", ReceivedInvitationsView.as_view(),
            name="invitations-received"),
    re_path(r"^invitations/received/(?P<pk>[^/]+)/accept/?$",
            ReceivedAnswerView.as_view(answer="accept"), name="invitation-accept"),
    re_path(r"^invitations/received/(?P<pk>[^/]+)/decline/?$",
            ReceivedAnswerView.as_view(answer="decline"), name="invitation-decline"),
    re_path(r"^invitations/token/?$", TokenInvitationView.as_view(), name="invitation-token"),
    re_path(r"^invitations/accept/?$", TokenAcceptView.as_view(),
            name="invitation-token-accept"),
    re_path(r"^invitations/decline/?$", TokenDeclineView.as_view(),
            name="invitation-token-decline"),
    path("usage", UsageViewSet.as_view({"get": "report"}), name="usage"),
    re_path(r"^fine-tuning/jobs/(?P<job_id>[\w-]+)/metrics/?$", JobMetricsView.as_view(),
            name="ft-job-metrics"),
    # Before the router: "playground" is not a key id.
    re_path(r"^keys/playground/?$", PlaygroundKeyView.as_view(), name="playground-key"),
    *router.urls,
]
for routes in extensions.api_routes:
    urlpatterns += routes()
