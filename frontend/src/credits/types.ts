// SPDX-License-Identifier: Apache-2.0
/** What /api/credits/... answers (enterprise contribution credits). */

export interface CreditGrant {
  id: number; repository: string; number: number; title: string; url: string;
  labels: string[]; login: string; amount: number; status: string; reason: string;
  merged_at: string; vests_at: string | null; vested_at: string | null;
}

export interface LedgerEntry {
  transaction: number; kind: string; amount: number; memo: string; posted_at: string;
}

export interface Wallet {
  unit: string; currency: string; balance: number; balance_value: string; vesting: number;
  awaiting_approval: number; organization: { slug: string; name: string } | null;
  linked_accounts: { forge: string; login: string; linked_by: string; linked_at: string | null }[];
  grants: CreditGrant[]; history: LedgerEntry[]; how_to_earn: string;
  repositories: { forge: string; full_name: string; base_credits: number;
    label_weights: Record<string, string>; hold_days: number; monthly_cap: number }[];
}

export interface Pool {
  currency: string; minor_unit_exponent: number; balance: number;
  distributions: { period_start: string; period_end: string; pool: number; distributed: number;
    residue: number; credits_vested: number; people: number }[];
}

export interface LeaderRow { accounts: string[]; credits: number; patches: number }
