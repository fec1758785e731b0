// SPDX-License-Identifier: Apache-2.0
import { useQuery } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { Batch } from "../api/types";
import { EmptyState, ErrorMessage, Section, ago } from "../components/ui";

function Download({ id, label }: { id: string | null; label: string }) {
  if (!id) return <span className="muted">—</span>;
  return <a href={`/v1/files/${id}/content`} download>{label}</a>;
}

export function Batches() {
  const batches = useQuery({ queryKey: ["batches"], refetchInterval: 3000,
    queryFn: async () => items(await api<{ data: Batch[] }>("/v1/batches", { query: { limit: 50 } })) });
  return (
    <>
      <h1>Batches</h1>
      <Section title="Batch jobs">
        <ErrorMessage error={batches.error} />
        {batches.data && !batches.data.length ? (
          <EmptyState title="No batch yet">
            Upload a JSONL of requests with purpose <code>batch</code> and create a batch with
            the OpenAI SDK (<code>client.batches.create</code>).
          </EmptyState>
        ) : (
          <table>
            <thead><tr><th>Batch</th><th>Endpoint</th><th>Status</th><th>Progress</th>
              <th>Output</th><th>Errors</th><th>Created</th></tr></thead>
            <tbody>{batches.data?.map((b) => {
              const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
              const done = c.completed + c.failed;
              return (
                <tr key={b.id}><td>{b.id}</td><td>{b.endpoint}</td><td>{b.status}</td>
                  <td><progress max={c.total || 1} value={done} aria-label={`Progress of ${b.id}`} />{" "}
                    {done}/{c.total}{c.failed ? ` (${c.failed} failed)` : ""}</td>
                  <td><Download id={b.output_file_id} label="output" /></td>
                  <td><Download id={b.error_file_id} label="errors" /></td>
                  <td>{ago(b.created_at)}</td></tr>
              );
            })}</tbody>
          </table>
        )}
      </Section>
    </>
  );
}
