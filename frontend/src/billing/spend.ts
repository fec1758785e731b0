// SPDX-License-Identifier: Apache-2.0
/** Turning spend rows into chart series (pure, tested on its own). */
import type { SpendRow } from "./types";

export interface DaySeries { day: string; [model: string]: number | string }

/** One point per day, one numeric field per model (amounts as numbers, for charts only). */
export function spendByDay(rows: SpendRow[]): { points: DaySeries[]; models: string[] } {
  const models = [...new Set(rows.map((r) => r.model ?? "—"))].sort();
  const byDay = new Map<string, DaySeries>();
  for (const row of rows) {
    const day = row.day ?? "—";
    const point = byDay.get(day) ?? { day };
    const model = row.model ?? "—";
    point[model] = (Number(point[model] ?? 0) || 0) + Number(row.amount);
    byDay.set(day, point);
  }
  const points = [...byDay.values()].sort((a, b) => String(a.day).localeCompare(String(b.day)));
  for (const point of points) for (const m of models) point[m] = point[m] ?? 0;
  return { points, models };
}

/** Minor units (what Stripe reports) as text in major units: 1234 USD -> "12.34". */
export function minorToText(value: number, exponent = 2): string {
  const sign = value < 0 ? "-" : "";
  const digits = String(Math.abs(value)).padStart(exponent + 1, "0");
  return exponent ? `${sign}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}` : `${sign}${digits}`;
}
