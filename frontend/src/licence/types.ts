// SPDX-License-Identifier: Apache-2.0
/** GET /api/license (the enterprise edition's licence status; see /api/schema/). */

export interface LicenceFeature { key: string; title: string; enabled: boolean }

export interface LicenceStatus {
  installed: boolean;
  state: "none" | "invalid" | "active" | "expiring" | "grace" | "expired";
  warnings: string[];
  seats_used: number;
  seats: number | null;
  seats_limit: number | null;
  license_id: string | null;
  licensee: string | null;
  organization: string | null;
  features: LicenceFeature[];
  issued_at: string | null;
  expires_at: string | null;
  grace_days: number | null;
  grace_ends_at: string | null;
  installed_at: string | null;
  installed_by: string | null;
  installation_id: string;
  bound_to: string | null;
  days_left: number | null;
  expiry_notice: "30_days" | "7_days" | "grace" | "expired" | null;
  store_url: string | null;
  online_renewal: { enabled: boolean; checked_at: string | null; outcome: string | null };
}

/** POST /api/license/renew */
export interface RenewalOutcome {
  status: "renewed" | "current" | "ended" | "skipped" | "failed";
  detail: string;
  license_id: string | null;
}
