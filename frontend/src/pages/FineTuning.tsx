// SPDX-License-Identifier: Apache-2.0
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis }
  from "recharts";
import { api, items } from "../api/client";
import type { FileObject, FineTuneEvent, FineTuneJob, Model } from "../api/types";
import { Busy, EmptyState, ErrorMessage, Section, ago, formatBytes } from "../components/ui";

const FINISHED = ["succeeded", "failed", "cancelled"];
const PAUSABLE = ["queued", "running"];

export function lossPoints(events: FineTuneEvent[]): { step: number; loss: number }[] {
  return events
    .filter((e) => e.type === "metrics" && e.data && typeof e.data.train_loss === "number")
    .map((e) => ({ step: Number(e.data!.step ?? 0), loss: e.data!.train_loss }))
    .sort((a, b) => a.step - b.step);
}

function UploadForm() {
  const client = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const upload = useMutation({
    mutationFn: (chosen: File) => {
      const form = new FormData();
      form.append("purpose", "fine-tune");
      form.append("file", chosen);
      return api<FileObject>("/v1/files", { method: "POST", form });
    },
    onSuccess: () => client.invalidateQueries({ queryKey: ["files"] }),
  });
  return (
    <form className="inline-form" aria-label="Upload a dataset" onSubmit={(e) => {
      e.preventDefault();
      if (file) upload.mutate(file);
    }}>
      <label htmlFor="dataset">Dataset (JSONL, one {"{\"messages\": [...]}"} per line)</label>
      <input id="dataset" type="file" accept=".jsonl,application/jsonl"
        onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
      <button type="submit" disabled={!file || upload.isPending}>
        {upload.isPending ? <Busy label="Uploading and validating" /> : "Upload"}</button>
      {upload.isSuccess ? <p role="status">Uploaded {upload.data.filename}: {upload.data.status}.</p> : null}
      {upload.error ? <p role="alert" className="error" data-testid="upload-error">
        {upload.error.message} — fix that line and upload again.</p> : null}
    </form>
  );
}

function CreateJobForm({ onCreated }: { onCreated: (job: FineTuneJob) => void }) {
  const client = useQueryClient();
  const files = useQuery({ queryKey: ["files"],
    queryFn: async () => items(await api<{ data: FileObject[] }>("/v1/files",
      { query: { purpose: "fine-tune" } })) });
  const models = useQuery({ queryKey: ["models"],
    queryFn: async () => items(await api<{ results: Model[] }>("/api/models")) });
  const [model, setModel] = useState("");
  const [training, setTraining] = useState("");
  const [suffix, setSuffix] = useState("");
  const [epochs, setEpochs] = useState(3);
  const [batch, setBatch] = useState(4);
  const [lr, setLr] = useState(1);
  const bases = models.data?.filter((m) => m.kind !== "adapter") ?? [];
  const fileId = training || files.data?.[0]?.id || "";
  const create = useMutation({
    mutationFn: () => api<FineTuneJob>("/v1/fine_tuning/jobs", { method: "POST", body: {
      model: model || bases[0]?.name, training_file: fileId, ...(suffix ? { suffix } : {}),
      hyperparameters: { n_epochs: epochs, batch_size: batch, learning_rate_multiplier: lr } } }),
    onSuccess: async (job) => {
      await client.invalidateQueries({ queryKey: ["jobs"] });
      onCreated(job);
    },
  });
  if (files.data && !files.data.length) {
    return <EmptyState title="No dataset yet">Upload a JSONL dataset above to fine-tune on it.</EmptyState>;
  }
  const submit = (e: FormEvent) => { e.preventDefault(); create.mutate(); };
  return (
    <form className="grid-form" aria-label="Create a fine-tuning job" onSubmit={submit}>
      <label htmlFor="ft-model">Base model</label>
      <select id="ft-model" value={model || bases[0]?.name || ""} onChange={(e) => setModel(e.target.value)}>
        {bases.map((m) => <option key={m.id} value={m.name}>{m.name}</option>)}
      </select>
      <label htmlFor="ft-file">Training file</label>
      <select id="ft-file" value={fileId} onChange={(e) => setTraining(e.target.value)}>
        {files.data?.map((f) => <option key={f.id} value={f.id}>{f.filename} ({formatBytes(f.bytes)})</option>)}
      </select>
      <label htmlFor="ft-suffix">Suffix</label>
      <input id="ft-suffix" value={suffix} onChange={(e) => setSuffix(e.target.value)} maxLength={40} />
      <label htmlFor="ft-epochs">Epochs</label>
      <input id="ft-epochs" type="number" min={1} value={epochs} onChange={(e) => setEpochs(Number(e.target.value))} />
      <label htmlFor="ft-batch">Batch size</label>
      <input id="ft-batch" type="number" min={1} value={batch} onChange={(e) => setBatch(Number(e.target.value))} />
      <label htmlFor="ft-lr">Learning rate multiplier</label>
      <input id="ft-lr" type="number" min={0.01} step="any" value={lr} onChange={(e) => setLr(Number(e.target.value))} />
      <button type="submit" disabled={create.isPending || !fileId}>
        {create.isPending ? <Busy label="Creating" /> : "Start fine-tuning"}</button>
      <ErrorMessage error={create.error} />
    </form>
  );
}

function JobDetail({ job }: { job: FineTuneJob }) {
  const client = useQueryClient();
  const open = !FINISHED.includes(job.status);
  const training = open && job.status !== "paused";
  // Keyed on the status too: the events that closed a phase are fetched once it changes.
  const events = useQuery({ queryKey: ["events", job.id, job.status],
    refetchInterval: training ? 2000 : false,
    queryFn: async () => items(await api<{ data: FineTuneEvent[] }>(
      `/v1/fine_tuning/jobs/${job.id}/events`, { query: { limit: 100 } })) });
  // One mutation for the job's actions: cancel, pause (a running trainer checkpoints first)
  // and resume (queued again, from the last checkpoint).
  const act = useMutation({
    mutationFn: (action: "cancel" | "pause" | "resume") =>
      api<FineTuneJob>(`/v1/fine_tuning/jobs/${job.id}/${action}`, { method: "POST" }),
    onSettled: () => client.invalidateQueries({ queryKey: ["jobs"] }),
  });
  const points = lossPoints(events.data ?? []);
  return (
    <Section title={`Job ${job.id}`} actions={open ? (
      <span className="actions">
        {PAUSABLE.includes(job.status) ? (
          <button type="button" onClick={() => act.mutate("pause")} disabled={act.isPending}>
            Pause</button>
        ) : null}
        {job.status === "paused" ? (
          <button type="button" onClick={() => act.mutate("resume")} disabled={act.isPending}>
            Resume</button>
        ) : null}
        <button type="button" onClick={() => act.mutate("cancel")} disabled={act.isPending}>
          Cancel</button>
      </span>
    ) : null}>
      <p>Status: <strong data-testid="job-status">{job.status}</strong>
        {training ? <> <Busy label="Training" /></> : null}
        {job.fine_tuned_model ? <> · model <code>{job.fine_tuned_model}</code></> : null}</p>
      {job.error?.message ? <p className="error" role="alert">{job.error.message}</p> : null}
      {job.status === "succeeded" && job.fine_tuned_model ? (
        <Link className="button" to={`/playground?model=${encodeURIComponent(job.fine_tuned_model)}`}>
          Try it in the Playground</Link>
      ) : null}
      <ErrorMessage error={act.error ?? events.error} />
      <h3>Training loss</h3>
      {points.length ? (
        <div className="chart" data-testid="loss-chart" data-points={points.length}>
          <ResponsiveContainer width="100%" height={240}>
            <LineChart data={points}>
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="step" label={{ value: "step", position: "insideBottom", offset: -2 }} />
              <YAxis />
              <Tooltip />
              <Line type="monotone" dataKey="loss" stroke="#1d4ed8" dot={false} isAnimationActive={false} />
            </LineChart>
          </ResponsiveContainer>
        </div>
      ) : <p className="muted">The loss appears here once training reports its first steps.</p>}
      <h3>Events</h3>
      <ol className="events" data-testid="event-log">
        {events.data?.map((e) => (
          <li key={e.id} className={`level-${e.level}`}>{ago(e.created_at)} — {e.message}</li>
        ))}
      </ol>
    </Section>
  );
}

export function FineTuning() {
  const [selected, setSelected] = useState<string | null>(null);
  const jobs = useQuery({ queryKey: ["jobs"], refetchInterval: 2000,
    queryFn: async () => items(await api<{ data: FineTuneJob[] }>("/v1/fine_tuning/jobs",
      { query: { limit: 50 } })) });
  const current = jobs.data?.find((j) => j.id === selected) ?? null;
  return (
    <>
      <h1>Fine-tuning</h1>
      <Section title="Upload a dataset"><UploadForm /></Section>
      <Section title="New job"><CreateJobForm onCreated={(job) => setSelected(job.id)} /></Section>
      <Section title="Jobs">
        <ErrorMessage error={jobs.error} />
        {jobs.data && !jobs.data.length ? (
          <EmptyState title="No fine-tuning job yet">Upload a dataset, then start a job above.</EmptyState>
        ) : (
          <table>
            <thead><tr><th>Job</th><th>Base</th><th>Status</th><th>Model</th><th>Created</th></tr></thead>
            <tbody>{jobs.data?.map((j) => (
              <tr key={j.id}><td><button type="button" className="link" onClick={() => setSelected(j.id)}>
                {j.id}</button></td><td>{j.model}</td><td>{j.status}</td>
                <td>{j.fine_tuned_model ?? "—"}</td><td>{ago(j.created_at)}</td></tr>
            ))}</tbody>
          </table>
        )}
      </Section>
      {current ? <JobDetail job={current} /> : null}
    </>
  );
}
