// SPDX-License-Identifier: Apache-2.0
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "react-router-dom";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis }
  from "recharts";
import { ApiError, api, items } from "../api/client";
import type { FileObject, FineTuneEvent, FineTuneJob, LossCurve, Model } from "../api/types";
import { Busy, DataTable, EmptyState, ErrorMessage, Loadable, Loading, Section, ago, duration,
  formatBytes, modelLabel, useConfirm } from "../components/ui";
import { QuotaUse, activeJobs, isQuotaRefusal, useQuotas } from "../components/quota";

const FINISHED = ["succeeded", "failed", "cancelled"];
const PAUSABLE = ["queued", "running"];
/** What each open state means to the person waiting on it. */
export const STATUS_TEXT: Record<string, string> = {
  validating_files: "Checking the dataset",
  queued: "Waiting for a training slot",
  running: "Training",
};

/** File ids in the server's messages, named by their file names where known. */
export function nameFiles(message: string, files: FileObject[] | undefined): string {
  if (!files?.length) return message;
  return message.replace(/\bfile-[A-Za-z0-9_-]+/g,
    (id) => { const f = files.find((x) => x.id === id); return f ? `${f.filename} (${id})` : id; });
}

/** The upload's refusal, with "fix that line" only when it names a line. */
export function uploadAdvice(message: string): string {
  return /\bline \d+/i.test(message) ? `${message} — fix that line and upload again.`
    : `${message} — fix the file and upload again.`;
}

function useFiles(purpose: string) {
  return useQuery({ queryKey: ["files", purpose],
    queryFn: async () => items(await api<{ data: FileObject[] }>("/v1/files",
      { query: { purpose } })) });
}

export function UploadForm({ purpose, label, onUploaded }: {
  purpose: "fine-tune" | "batch"; label: string; onUploaded?: (file: FileObject) => void;
}) {
  const client = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const id = `upload-${purpose}`;
  const upload = useMutation({
    mutationFn: (chosen: File) => {
      const form = new FormData();
      form.append("purpose", purpose);
      form.append("file", chosen);
      return api<FileObject>("/v1/files", { method: "POST", form });
    },
    onSuccess: async (made) => {
      await client.invalidateQueries({ queryKey: ["files", purpose] });
      onUploaded?.(made);
    },
  });
  return (
    <form className="inline-form" aria-label={`Upload a ${purpose} file`} onSubmit={(e) => {
      e.preventDefault();
      if (file) upload.mutate(file);
    }}>
      <div className="grow"><label htmlFor={id}>{label}</label>
        <input id={id} type="file" accept=".jsonl,application/jsonl"
          onChange={(e) => { setFile(e.target.files?.[0] ?? null); upload.reset(); }} /></div>
      <button type="submit" disabled={!file || upload.isPending}>
        {upload.isPending ? <Busy label="Uploading and validating" /> : "Upload"}</button>
      {upload.isSuccess ? <p role="status" className="full">Uploaded {upload.data.filename}: {upload.data.status}.</p> : null}
      {upload.error ? <p role="alert" className="error full" data-testid="upload-error">
        {uploadAdvice(upload.error.message)}</p> : null}
    </form>
  );
}

function CreateJobForm({ onCreated }: { onCreated: (job: FineTuneJob) => void }) {
  const client = useQueryClient();
  const files = useFiles("fine-tune");
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
  const submit = (e: FormEvent) => { e.preventDefault(); create.mutate(); };
  return (
    <Loadable query={files} label="datasets" isEmpty={(f) => !f.length} empty={
      <EmptyState title="No dataset yet">Upload a JSONL dataset above to fine-tune on it.</EmptyState>}>
      {(list) => (
        <form className="grid-form" aria-label="Create a fine-tuning job" onSubmit={submit}>
          <label htmlFor="ft-model">Base model</label>
          <select id="ft-model" value={model || bases[0]?.name || ""} onChange={(e) => setModel(e.target.value)}>
            {bases.map((m) => <option key={m.id} value={m.name}>{m.name}</option>)}
          </select>
          <label htmlFor="ft-file">Training file</label>
          <select id="ft-file" value={fileId} onChange={(e) => setTraining(e.target.value)}>
            {list.map((f) => <option key={f.id} value={f.id}>{f.filename} ({formatBytes(f.bytes)}, {ago(f.created_at)})</option>)}
          </select>
          <label htmlFor="ft-suffix">Suffix</label>
          <input id="ft-suffix" value={suffix} onChange={(e) => setSuffix(e.target.value)} maxLength={40}
            placeholder="names the tuned model" />
          <label htmlFor="ft-epochs">Epochs</label>
          <input id="ft-epochs" type="number" min={1} value={epochs} onChange={(e) => setEpochs(Number(e.target.value))} />
          <label htmlFor="ft-batch">Batch size</label>
          <input id="ft-batch" type="number" min={1} value={batch} onChange={(e) => setBatch(Number(e.target.value))} />
          <label htmlFor="ft-lr">Learning rate multiplier</label>
          <input id="ft-lr" type="number" min={0.01} step="any" value={lr} onChange={(e) => setLr(Number(e.target.value))} />
          <span />
          <button type="submit" disabled={create.isPending || !fileId}
            aria-describedby={isQuotaRefusal(create.error) ? "ft-quota-refusal" : undefined}>
            {create.isPending ? <Busy label="Creating" /> : "Start fine-tuning"}</button>
          {isQuotaRefusal(create.error) ? (
            <p role="alert" className="error" id="ft-quota-refusal" data-testid="quota-refusal">
              {create.error.message} — a slot frees up when a job finishes, or when you pause
              or cancel one.</p>
          ) : <ErrorMessage error={create.error} />}
        </form>
      )}
    </Loadable>
  );
}

/** Step n of N, a bar, and the time left the trainer estimates. */
export function Progress({ job, curve }: { job: FineTuneJob; curve?: LossCurve }) {
  const latest = curve?.latest;
  const total = latest?.total_steps;
  if (!latest || !total) return null;
  const step = Math.min(latest.step ?? 0, total);
  const running = job.status === "running";
  const left = running && typeof latest.eta_seconds === "number" ? latest.eta_seconds : null;
  return (
    <div className="progress" data-testid="job-progress">
      <progress max={total} value={step} aria-label="Training progress" />
      <span>Step {step} of {total}{latest.epoch ? ` · epoch ${Math.max(1, Math.ceil(latest.epoch))}` : ""}
        {left !== null ? ` · about ${duration(left)} left` : ""}</span>
    </div>
  );
}

export function LossChart({ curve }: { curve?: LossCurve }) {
  const points = curve?.points ?? [];
  if (!points.length) {
    return <p className="muted">The loss appears here once training reports its first steps.</p>;
  }
  const hasValid = points.some((p) => p.valid_loss !== null);
  return (
    <div className="chart" data-testid="loss-chart" data-points={points.length}
      data-first-step={points[0].step} data-last-step={points[points.length - 1].step}>
      <ResponsiveContainer width="100%" height={240}>
        <LineChart data={points} margin={{ top: 8, right: 16, bottom: 16, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="step" type="number" domain={["dataMin", "dataMax"]} allowDecimals={false}
            label={{ value: "step", position: "insideBottom", offset: -8 }} />
          <YAxis />
          <Tooltip />
          {hasValid ? <Legend verticalAlign="top" /> : null}
          <Line type="monotone" dataKey="train_loss" name="training loss" stroke="#1d4ed8"
            dot={false} isAnimationActive={false} />
          {hasValid ? <Line type="monotone" dataKey="valid_loss" name="validation loss"
            stroke="#d97706" connectNulls isAnimationActive={false} /> : null}
        </LineChart>
      </ResponsiveContainer>
      {curve && curve.bucket_steps > 1 ? <p className="muted small">Each point is the mean
        of {curve.bucket_steps} steps ({curve.steps_recorded} steps in all).</p> : null}
    </div>
  );
}

function JobDetail({ jobId, files }: { jobId: string; files?: FileObject[] }) {
  const client = useQueryClient();
  const [confirm, dialog] = useConfirm();
  const heading = useRef<HTMLHeadingElement>(null);
  const job = useQuery({ queryKey: ["job", jobId],
    refetchInterval: (q) => (q.state.data && FINISHED.includes(q.state.data.status) ? false : 2000),
    queryFn: () => api<FineTuneJob>(`/v1/fine_tuning/jobs/${jobId}`) });
  const status = job.data?.status ?? "";
  const open = Boolean(job.data) && !FINISHED.includes(status);
  const training = open && status !== "paused";
  // Keyed on the status too: what closed a phase is fetched once it changes.
  const events = useQuery({ queryKey: ["events", jobId, status], enabled: Boolean(job.data),
    refetchInterval: training ? 2000 : false,
    queryFn: async () => api<{ data: FineTuneEvent[]; has_more: boolean }>(
      `/v1/fine_tuning/jobs/${jobId}/events`, { query: { limit: 100 } }) });
  // The whole run's curve, not the last page of events.
  const curve = useQuery({ queryKey: ["curve", jobId, status], enabled: Boolean(job.data),
    refetchInterval: training ? 2000 : false,
    queryFn: () => api<LossCurve>(`/api/fine-tuning/jobs/${jobId}/metrics`) });
  // One mutation for the job's actions: cancel, pause (a running trainer checkpoints first)
  // and resume (queued again, from the last checkpoint).
  const act = useMutation({
    mutationFn: (action: "cancel" | "pause" | "resume") =>
      api<FineTuneJob>(`/v1/fine_tuning/jobs/${jobId}/${action}`, { method: "POST" }),
    onSuccess: (updated) => client.setQueryData(["job", jobId], updated),
    onSettled: () => client.invalidateQueries({ queryKey: ["jobs"] }),
  });
  useEffect(() => {
    heading.current?.scrollIntoView?.({ block: "start" });
    heading.current?.focus();
  }, [jobId]);

  if (job.isError && job.error instanceof ApiError && job.error.status === 404) {
    return (
      <section className="card" aria-label="Job" id="job-detail">
        <header className="card-head"><h2 ref={heading} tabIndex={-1}>Job not found</h2></header>
        <EmptyState title={`No fine-tuning job ${jobId} in this organization`}>
          Choose one from the list above.</EmptyState>
      </section>
    );
  }
  const j = job.data;
  const done = curve.data?.latest?.step ?? 0;
  const title = j ? `Job ${j.user_provided_suffix ? `${j.user_provided_suffix} · ` : ""}${j.id}` : `Job ${jobId}`;
  return (
    <section className="card" aria-label="Job" id="job-detail">
      {dialog}
      <header className="card-head">
        <h2 ref={heading} tabIndex={-1}>{title}</h2>
        {open ? (
          <span className="actions">
            {PAUSABLE.includes(status) ? (
              <button type="button" className="secondary" onClick={() => act.mutate("pause")}
                disabled={act.isPending}>Pause</button>
            ) : null}
            {status === "paused" ? (
              <button type="button" onClick={() => act.mutate("resume")} disabled={act.isPending}>
                Resume</button>
            ) : null}
            <button type="button" className="danger" disabled={act.isPending} onClick={async () => {
              const lost = done ? `${done} step${done === 1 ? "" : "s"} of training done so far are lost`
                : "Training has not reported a step yet";
              if (await confirm({ title: "Cancel this fine-tuning job?", action: "Cancel the job",
                body: <p>{lost}; the job cannot be resumed. (Pause keeps the work: it checkpoints
                  and can resume later.)</p> })) act.mutate("cancel");
            }}>Cancel</button>
          </span>
        ) : null}
      </header>
      {job.isPending ? <Loading label="job" /> : null}
      <ErrorMessage error={job.error} retry={() => { void job.refetch(); }} />
      {j ? (
        <>
          <p>Status: <strong data-testid="job-status">{j.status}</strong>
            {STATUS_TEXT[j.status] ? <> — <Busy label={STATUS_TEXT[j.status]} /></> : null}
            {j.status === "paused" ? " — resume to continue from its last checkpoint." : null}</p>
          <p className="muted">Base <code>{j.model}</code> · trained on {nameFiles(j.training_file, files)}
            {" "}· created {ago(j.created_at)}</p>
          {j.fine_tuned_model ? <p>Model <code title={j.fine_tuned_model}>{j.fine_tuned_model}</code></p> : null}
          <Progress job={j} curve={curve.data} />
          {j.error?.message ? <p className="error" role="alert">{j.error.message}</p> : null}
          {j.status === "succeeded" && j.fine_tuned_model ? (
            <Link className="button" to={`/playground?model=${encodeURIComponent(j.fine_tuned_model)}`}>
              Try it in the Playground</Link>
          ) : null}
          <ErrorMessage error={act.error} />
          <h3>Training loss</h3>
          {curve.isPending ? <Loading label="loss curve" /> : null}
          <ErrorMessage error={curve.error} />
          <LossChart curve={curve.data} />
          <h3>Events <span className="muted small">(newest first{events.data?.has_more ? ", the latest 100" : ""})</span></h3>
          {events.isPending ? <Loading label="events" /> : null}
          <ErrorMessage error={events.error} />
          <ul className="events" data-testid="event-log">
            {events.data?.data.map((e) => (
              <li key={e.id} className={`level-${e.level}`}>
                <span className="muted">{ago(e.created_at)}</span> {nameFiles(e.message, files)}</li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

export function FineTuning() {
  const { jobId } = useParams();
  const navigate = useNavigate();
  const files = useFiles("fine-tune");
  const jobs = useQuery({ queryKey: ["jobs"], refetchInterval: 3000,
    queryFn: async () => items(await api<{ data: FineTuneJob[] }>("/v1/fine_tuning/jobs",
      { query: { limit: 50 } })) });
  const fileName = (id: string) => files.data?.find((f) => f.id === id)?.filename ?? id;
  const quotas = useQuotas();
  return (
    <>
      <h1>Fine-tuning</h1>
      <Section title="Upload a dataset">
        <UploadForm purpose="fine-tune"
          label={'Dataset (JSONL, one {"messages": [...]} per line)'} />
      </Section>
      <Section title="New job">
        {quotas && jobs.data ? (
          <QuotaUse used={activeJobs(jobs.data)} limit={quotas.concurrent_fine_tunes}
            noun="fine-tuning jobs at once (checking, queued or training)" testId="fine-tune-quota" />
        ) : null}
        <CreateJobForm onCreated={(job) => navigate(`/fine-tuning/${job.id}`)} />
      </Section>
      <Section title="Jobs">
        <Loadable query={jobs} label="jobs" isEmpty={(list) => !list.length} empty={
          <EmptyState title="No fine-tuning job yet">Upload a dataset, then start a job above.</EmptyState>}>
          {(list) => (
            <DataTable rows={list} rowKey={(j) => j.id} columns={[
              { label: "Job", render: (j) => (
                <Link to={`/fine-tuning/${j.id}`} aria-current={j.id === jobId ? "true" : undefined}>
                  {j.user_provided_suffix ?? "(no suffix)"} <span className="mono small">{j.id}</span></Link>) },
              { label: "Base", render: (j) => j.model },
              { label: "Training file", render: (j) => fileName(j.training_file) },
              { label: "Status", render: (j) => j.status },
              { label: "Model", render: (j) => (j.fine_tuned_model
                ? <span title={j.fine_tuned_model}>{modelLabel(j.fine_tuned_model)}</span> : "—") },
              { label: "Created", render: (j) => ago(j.created_at) },
            ]} />
          )}
        </Loadable>
      </Section>
      {jobId ? <JobDetail key={jobId} jobId={jobId} files={files.data} /> : null}
    </>
  );
}
