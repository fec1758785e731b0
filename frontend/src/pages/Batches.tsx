// SPDX-License-Identifier: Apache-2.0
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, items } from "../api/client";
import type { Batch, FileObject } from "../api/types";
import { Busy, DataTable, EmptyState, ErrorMessage, FieldError, Loadable, Section, ago,
  fieldError, formatBytes } from "../components/ui";
import { UploadForm } from "./FineTuning";

/** The endpoints a batch line may call (OpenAI's Batch API, as the gateway serves them). */
export const BATCH_ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

function Download({ id, label }: { id: string | null; label: string }) {
  if (!id) return <span className="muted">—</span>;
  return <a href={`/v1/files/${id}/content`} download>{label}</a>;
}

/** A batch from an uploaded file (purpose "batch"), for one endpoint, in 24 hours. */
export function CreateBatchForm() {
  const client = useQueryClient();
  const files = useQuery({ queryKey: ["files", "batch"],
    queryFn: async () => items(await api<{ data: FileObject[] }>("/v1/files",
      { query: { purpose: "batch" } })) });
  const [chosen, setChosen] = useState("");
  const [endpoint, setEndpoint] = useState(BATCH_ENDPOINTS[0]);
  const fileId = chosen || files.data?.[0]?.id || "";
  const create = useMutation({
    mutationFn: () => api<Batch>("/v1/batches", { method: "POST", body: {
      input_file_id: fileId, endpoint, completion_window: "24h" } }),
    onSuccess: () => client.invalidateQueries({ queryKey: ["batches"] }),
  });
  const submit = (e: FormEvent) => { e.preventDefault(); create.mutate(); };
  const err = create.error;
  const known = ["input_file_id", "endpoint"].some((f) => fieldError(err, f));
  return (
    <>
      <UploadForm purpose="batch" label={'Requests file (JSONL, one {"custom_id", "method", "url", "body"} per line)'}
        onUploaded={(f) => setChosen(f.id)} />
      <Loadable query={files} label="batch files" isEmpty={(f) => !f.length} empty={
        <EmptyState title="No requests file yet">Upload one above: each line is one request,
          as OpenAI's Batch API takes them.</EmptyState>}>
        {(list) => (
          <form className="grid-form" aria-label="Create a batch" onSubmit={submit}>
            <label htmlFor="batch-file">Input file</label>
            <select id="batch-file" value={fileId} onChange={(e) => setChosen(e.target.value)}>
              {list.map((f) => <option key={f.id} value={f.id}>{f.filename} ({formatBytes(f.bytes)}, {ago(f.created_at)})</option>)}
            </select>
            <FieldError id="batch-file-error" message={fieldError(err, "input_file_id")} />
            <label htmlFor="batch-endpoint">Endpoint</label>
            <select id="batch-endpoint" value={endpoint} onChange={(e) => setEndpoint(e.target.value)}>
              {BATCH_ENDPOINTS.map((e) => <option key={e} value={e}>{e}</option>)}
            </select>
            <FieldError id="batch-endpoint-error" message={fieldError(err, "endpoint")} />
            <span />
            <button type="submit" disabled={create.isPending || !fileId}>
              {create.isPending ? <Busy label="Creating" /> : "Create batch"}</button>
            {create.isSuccess ? <p role="status" className="full">Batch {create.data.id} created: {create.data.status}.</p> : null}
            {err && !known ? <ErrorMessage error={err} /> : null}
          </form>
        )}
      </Loadable>
    </>
  );
}

export function Batches() {
  const batches = useQuery({ queryKey: ["batches"], refetchInterval: 3000,
    queryFn: async () => items(await api<{ data: Batch[] }>("/v1/batches", { query: { limit: 50 } })) });
  const files = useQuery({ queryKey: ["files", "batch"],
    queryFn: async () => items(await api<{ data: FileObject[] }>("/v1/files",
      { query: { purpose: "batch" } })) });
  const fileName = (id: string) => files.data?.find((f) => f.id === id)?.filename ?? id;
  return (
    <>
      <h1>Batches</h1>
      <Section title="New batch"><CreateBatchForm /></Section>
      <Section title="Batch jobs">
        <Loadable query={batches} label="batches" isEmpty={(b) => !b.length} empty={
          <EmptyState title="No batch yet">
            Create one above from a requests file, or with the OpenAI SDK
            (<code>client.batches.create</code>).
          </EmptyState>}>
          {(list) => (
            <DataTable rows={list} rowKey={(b) => b.id} columns={[
              { label: "Batch", render: (b) => <span className="mono small">{b.id}</span> },
              { label: "Input", render: (b) => fileName(b.input_file_id) },
              { label: "Endpoint", render: (b) => b.endpoint },
              { label: "Status", render: (b) => <span data-testid="batch-status">{b.status}</span> },
              { label: "Progress", render: (b) => {
                const c = b.request_counts ?? { total: 0, completed: 0, failed: 0 };
                const done = c.completed + c.failed;
                return <><progress max={c.total || 1} value={done} aria-label={`Progress of ${b.id}`} />{" "}
                  {done}/{c.total}{c.failed ? ` (${c.failed} failed)` : ""}
                  {b.errors?.data.length ? <span className="error"> — {b.errors.data[0].message}</span> : null}</>;
              } },
              { label: "Output", render: (b) => <Download id={b.output_file_id} label="output" /> },
              { label: "Errors", render: (b) => <Download id={b.error_file_id} label="errors" /> },
              { label: "Created", render: (b) => ago(b.created_at) },
            ]} />
          )}
        </Loadable>
      </Section>
    </>
  );
}
