// CSV (or JSON lines) import: the file goes up as it is; the answer is streamed (one line per
// batch), so the page shows the progress and every rejected line with its reason.
import { useState, type FormEvent } from "react";
import { API_BASE, ApiError, token } from "../../api/client";
import type { components } from "../../api/types/products";
import { Problem, Table, useAction, useTitle } from "../common";
import { Staff } from "./Staff";

type Progress = components["schemas"]["ImportResult"];
type Rejected = components["schemas"]["ImportError_"];

export function AdminImport() {
  useTitle("Back office: import");
  return (
    <Staff title="Import products">
      <ImportForm />
    </Staff>
  );
}

async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
    }
  }
  if (buffered.trim()) yield buffered;
}

function ImportForm() {
  const [progress, setProgress] = useState<Progress | null>(null);
  const [rejected, setRejected] = useState<Rejected[]>([]);
  const { busy, error, run } = useAction();

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const file = new FormData(event.currentTarget).get("file") as File;
    setProgress(null);
    setRejected([]);
    void run(async () => {
      const type = file.name.endsWith(".jsonl") || file.name.endsWith(".ndjson") ? "application/x-ndjson" : "text/csv";
      const response = await fetch(`${API_BASE}/products/import`, {
        method: "POST",
        body: file,
        headers: {
          "Content-Type": type,
          Accept: "application/x-ndjson",
          Authorization: `Bearer ${token() ?? ""}`,
        },
      });
      if (!response.ok || !response.body) {
        const body = await response.json().catch(() => null);
        throw new ApiError(
          response.status,
          body?.error?.code ?? "error",
          body?.error?.message ?? `The shop answered ${response.status}.`,
          body?.error?.details ?? null,
        );
      }
      for await (const line of lines(response.body)) {
        const batch = JSON.parse(line) as Progress;
        setProgress(batch);
        // A batch line carries its own rejected rows; the last line (done) all of them.
        if (batch.done) setRejected(batch.errors);
        else if (batch.errors.length) setRejected((all) => [...all, ...batch.errors]);
      }
    });
  }

  return (
    <>
      <p>
        A CSV file with the header <code>sku,name,description,category,price,currency,quantity,active,imageUrl</code>{" "}
        (or JSON lines with the same fields). A product whose SKU exists is updated. Each line is
        imported or rejected on its own.
      </p>
      <form className="inline" onSubmit={submit}>
        <div className="field">
          <label htmlFor="import-file">File</label>
          <input id="import-file" name="file" type="file" accept=".csv,.jsonl,.ndjson,text/csv" required />
        </div>
        <button type="submit" disabled={busy}>
          Import
        </button>
      </form>
      <Problem error={error} />
      {progress && (
        <div aria-live="polite" role="status">
          <progress aria-label="Import progress" max={1} value={progress.done ? 1 : undefined} />
          <p>
            {progress.done ? "Done: " : "Importing… "}
            {progress.received} lines read, {progress.created} created, {progress.updated} updated,{" "}
            {progress.rejected} rejected.
          </p>
        </div>
      )}
      {progress?.errorsTruncated && <p>Only the first {rejected.length} rejected lines are listed.</p>}
      {rejected.length > 0 && (
        <Table caption="Rejected lines" columns={["Line", "SKU", "Why"]}>
            {rejected.map((row) => (
              <tr key={row.line}>
                <td>{row.line}</td>
                <td>{row.sku ?? ""}</td>
                <td>{row.reason}</td>
              </tr>
            ))}
        </Table>
      )}
    </>
  );
}
