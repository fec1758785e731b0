// SPDX-License-Identifier: Apache-2.0
/** The organization's capacity quotas (GET /api/me), shown where a person uses them. */
import { useQuery } from "@tanstack/react-query";
import { ApiError, api, getOrganization } from "../api/client";
import type { Deployment, FineTuneJob, Me, Quotas } from "../api/types";

/** Fine-tuning jobs that count against `concurrent_fine_tunes` (the server's ACTIVE_STATUSES). */
export const ACTIVE_JOB_STATUSES = ["validating_files", "queued", "running"];

/** The quotas of the organization the console acts in; null until known. */
export function useQuotas(): Quotas | null {
  const me = useQuery({ queryKey: ["me", getOrganization()], queryFn: () => api<Me>("/api/me") });
  const quotas = me.data?.organization?.quotas;
  return quotas && typeof quotas.replicas === "number" ? quotas : null;
}

/**
 * Replicas the organization asks for: those of its active deployments. Public deployments
 * are the operator's and count for nobody (potluck/serving/quotas.py).
 */
export function replicasInUse(deployments: Deployment[]): number {
  return deployments.filter((d) => !d.public && d.state.toLowerCase() === "active")
    .reduce((sum, d) => sum + d.replicas, 0);
}

export function activeJobs(jobs: FineTuneJob[]): number {
  return jobs.filter((j) => ACTIVE_JOB_STATUSES.includes(j.status)).length;
}

/** A refusal for being over a quota: 403 naming the field, or 429 `quota_exceeded`. */
export function isQuotaRefusal(error: unknown): error is ApiError {
  return error instanceof ApiError && (error.code === "quota_exceeded"
    || (error.status === 403 && /quota/.test(error.message)));
}

/** "3 of 16 replicas in use", with a meter; says when the quota is reached. */
export function QuotaUse({ used, limit, noun, testId, extra }: {
  used: number; limit: number; noun: string; testId: string; extra?: string;
}) {
  const full = used >= limit;
  return (
    <p className={`quota${full ? " full" : ""}`} data-testid={testId}>
      <meter min={0} max={Math.max(limit, 1)} value={Math.min(used, limit)} aria-hidden="true"
        high={Math.max(limit - 0.5, 0)} optimum={0} />
      <span><strong>{used} of {limit}</strong> {noun}{full ? " — the organization's quota is reached" : ""}
        {extra ? ` · ${extra}` : ""} <span className="muted">(quota set by the server's operator)</span></span>
    </p>
  );
}
