// SPDX-License-Identifier: Apache-2.0
/** Shapes of the endpoints the console reads (see /api/schema/). */

export interface OrgRole { id: string; slug: string; name: string; role: string }

export interface Session {
  authenticated: boolean;
  user: { id: number; email: string; username: string; is_superuser: boolean } | null;
  organizations: OrgRole[];
  logout_url: string;
}

export interface Provider { key: string; title: string; start_url: string }

export interface Node {
  name: string; hostname: string; state: string; cpu_count: number | null;
  cpu_isa: string[] | string; memory_bytes: number | null; gpus: unknown; engine: string;
  started_at: string | null; last_heartbeat: string | null;
}

export interface Deployment {
  id: string; model: string; model_id: string; public: boolean; replicas: number;
  state: string; replica_counts: Record<string, number>; created_at: string;
}

export interface Replica {
  id: string; deployment: string; model: string; node: string; state: string;
  restarts: number; reason: string | null; ready_at: string | null;
}

export interface Model {
  id: string; name: string; kind: string; base: string | null; public: boolean;
  source: string; path: string; architecture: string; context_length: number | null;
  size_bytes: number | null; created_at: string;
}

export interface ApiKey {
  id: string; name: string; prefix: string; scopes: string[]; created_by: string | null;
  created_at: string; expires_at: string | null; last_used_at: string | null;
  revoked_at: string | null; is_active: boolean; key?: string;
}

export interface Member { id: string; email: string; role: string; created_at: string }

export interface UsageRow {
  day?: string; model?: string; key?: string | null; key_name?: string | null;
  requests: number; prompt_tokens: number; completion_tokens: number; total_tokens: number;
  errors: number; latency_p50_ms: number; latency_p95_ms: number; latency_p99_ms: number;
}

export interface UsageReport { start: string; end: string; group_by: string[]; rows: UsageRow[] }

export interface Panel { key: string; title: string; api_path: string; description: string }
export interface Extensions { panels: Panel[]; features: { key: string; title: string }[] }

export interface FileObject {
  id: string; filename: string; bytes: number; purpose: string; status: string;
  created_at: number;
}

export interface FineTuneJob {
  id: string; model: string; status: string; fine_tuned_model: string | null;
  training_file: string; created_at: number; finished_at: number | null;
  error: { message?: string } | null; trained_tokens: number | null;
  user_provided_suffix?: string | null; estimated_finish?: number | null;
}

/** GET /api/fine-tuning/jobs/<id>/metrics: the whole curve, bucketed when long. */
export interface LossCurve {
  job_id: string; status: string; estimated_finish: number | null;
  steps_recorded: number; bucket_steps: number;
  latest: Record<string, number> | null;
  points: { step: number; train_loss: number; valid_loss: number | null }[];
}

export interface FineTuneEvent {
  id: string; created_at: number; level: string; message: string; type: string;
  data: Record<string, number> | null;
}

export interface Batch {
  id: string; endpoint: string; status: string; input_file_id: string;
  output_file_id: string | null; error_file_id: string | null; created_at: number;
  request_counts: { total: number; completed: number; failed: number } | null;
  errors?: { data: { message: string; line?: number | null }[] } | null;
}

/** An organization's capacity quotas (the operator sets them: `potluck orgs quota`). */
export interface Quotas { replicas: number; gpus: number; concurrent_fine_tunes: number }

export interface Organization { id: string; slug: string; name: string; quotas: Quotas; created_at: string }

/** GET /api/me: the organization the console acts in, and what the caller may do there. */
export interface Me {
  organization: Organization; user: string | null; api_key: string | null; role: string | null;
  capabilities: string[];
}

export type InvitationStatus = "pending" | "accepted" | "declined" | "revoked" | "expired";

/** An organization's invitation (GET /api/invitations). */
export interface Invitation {
  id: string; email: string; role: string; status: InvitationStatus; invited_by: string | null;
  created_at: string; expires_at: string; accepted_at: string | null;
  declined_at: string | null; revoked_at: string | null;
}

/** The answer to an invitation (POST /api/invitations): how its email went. */
export interface SentInvitation extends Invitation { delivery: "sent" | "not_configured" | "failed" }

export interface OrganizationRef { id: string; slug: string; name: string }

/** GET /api/invitations/token?token=: what an emailed link is for. */
export interface TokenInvitation {
  organization: OrganizationRef; email: string; role: string; invited_by: string | null;
  expires_at: string; has_account: boolean;
}

/** GET /api/invitations/received: a pending invitation to the signed-in person. */
export interface ReceivedInvitation {
  id: string; organization: OrganizationRef; email: string; role: string;
  invited_by: string | null; created_at: string; expires_at: string;
}

/** An accepted invitation: the organization joined, as what. */
export interface Joined { organization: OrganizationRef; role: string; email: string }
